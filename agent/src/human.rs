//! Numbers as a person reads them, for MESSAGE and the text output: sizes
//! ("25.9 MiB"), rates ("2.6 MiB/s", or "84 Mbit/s" for a limit written in
//! bits) and durations ("4 s", "1 min 30 s"). The fields keep the raw
//! integers; these words only ever stand beside them. A value shown without
//! a decimal is exact, one with a decimal is rounded to it.

/// How a rate is shown: in bytes or in bits, by powers of 1024 (KiB, MiB)
/// or of 1000 (kB, MB; kbit, Mbit). A threshold keeps the scale its
/// config was written in, so its records speak the config's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scale {
    pub bits: bool,
    /// Powers of 1000 rather than 1024.
    pub si: bool,
}

impl Scale {
    /// KiB, MiB, ...: how traffic is shown.
    pub const BINARY: Scale = Scale {
        bits: false,
        si: false,
    };
}

const IEC: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const SI: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];

/// `n` counted things (`unit` B or bit) in the largest prefix of `scale`
/// that leaves at least 1: exact as a whole number, else to one decimal.
fn scaled(n: u128, scale: Scale, unit: &str) -> String {
    let (base, prefixes): (u128, _) = if scale.si { (1000, SI) } else { (1024, IEC) };
    let mut e = 0;
    while e + 1 < prefixes.len() && n >= base.pow(e as u32 + 1) {
        e += 1;
    }
    let size = base.pow(e as u32);
    if n.is_multiple_of(size) {
        return format!("{} {}{unit}", n / size, prefixes[e]);
    }
    let mut tenths = (n * 10 + size / 2) / size;
    if tenths >= base * 10 && e + 1 < prefixes.len() {
        // Rounded up into the next prefix: 1023.96 KiB is 1.0 MiB.
        e += 1;
        tenths = (n * 10 + size * base / 2) / (size * base);
    }
    format!("{}.{} {}{unit}", tenths / 10, tenths % 10, prefixes[e])
}

/// A size in bytes: "880 B", "25.9 MiB".
pub fn bytes(n: u64) -> String {
    scaled(n.into(), Scale::BINARY, "B")
}

/// A rate given in bytes per second, in `scale`: "2.6 MiB/s", "84 Mbit/s".
pub fn rate(bytes_per_sec: u64, scale: Scale) -> String {
    let (n, unit) = if scale.bits {
        (u128::from(bytes_per_sec) * 8, "bit")
    } else {
        (bytes_per_sec.into(), "B")
    };
    format!("{}/s", scaled(n, scale, unit))
}

/// A duration in milliseconds: "250 ms", "4 s", "3.5 s", "2 min 30 s",
/// "1 h 5 min"; seconds to a tenth, minutes to a second, hours to a minute.
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let tenths = (ms + 50) / 100;
    if tenths < 600 {
        return match tenths % 10 {
            0 => format!("{} s", tenths / 10),
            t => format!("{}.{t} s", tenths / 10),
        };
    }
    let secs = (ms + 500) / 1000;
    if secs < 3600 {
        return match secs % 60 {
            0 => format!("{} min", secs / 60),
            s => format!("{} min {s} s", secs / 60),
        };
    }
    let mins = (ms + 30_000) / 60_000;
    match mins % 60 {
        0 => format!("{} h", mins / 60),
        m => format!("{} h {m} min", mins / 60),
    }
}

/// "1 process", "2 processes": a count and its noun, singular or plural.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_exact_without_a_decimal_and_rounded_with_one() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(880), "880 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(5120), "5 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(27_163_648), "25.9 MiB");
        assert_eq!(bytes(1024 * 1024 - 1), "1.0 MiB", "rounded up a prefix");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn rates_speak_the_scale_they_are_given() {
        let si_bits = Scale {
            bits: true,
            si: true,
        };
        let si_bytes = Scale {
            bits: false,
            si: true,
        };
        assert_eq!(rate(1 << 20, Scale::BINARY), "1 MiB/s");
        assert_eq!(rate(11_010_048, Scale::BINARY), "10.5 MiB/s");
        assert_eq!(rate(1_000_000, si_bits), "8 Mbit/s");
        assert_eq!(rate(10_500_000, si_bits), "84 Mbit/s");
        assert_eq!(rate(1_000_000, si_bytes), "1 MB/s");
        assert_eq!(rate(1_500, si_bytes), "1.5 kB/s");
        assert_eq!(rate(12, si_bits), "96 bit/s");
    }

    #[test]
    fn durations_read_in_the_unit_that_suits_them() {
        assert_eq!(duration_ms(250), "250 ms");
        assert_eq!(duration_ms(1000), "1 s");
        assert_eq!(
            duration_ms(3999),
            "4 s",
            "a measured interval a little short"
        );
        assert_eq!(duration_ms(3500), "3.5 s");
        assert_eq!(duration_ms(59_990), "1 min");
        assert_eq!(duration_ms(150_000), "2 min 30 s");
        assert_eq!(duration_ms(3_600_000), "1 h");
        assert_eq!(duration_ms(3_900_000), "1 h 5 min");
    }

    #[test]
    fn counts_take_the_plural_past_one() {
        assert_eq!(count(1, "process", "processes"), "1 process");
        assert_eq!(count(0, "peer", "peers"), "0 peers");
        assert_eq!(count(3, "peer", "peers"), "3 peers");
    }
}
