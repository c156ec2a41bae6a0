//! The value types a config writes as strings with a unit: rates
//! ("50MiB/s", "400Mbit/s"), durations ("10s") and the backend's name,
//! read with the error messages an operator sees. A message ends in the
//! right form of the value where one can be told; `KEY` stands for the
//! key, which only the error's place in the file names (error.rs).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{shown, KEY};
use crate::human::Scale;

/// A rate in bytes per second, written like "50MiB/s", and the scale it
/// was written in (bits or bytes, powers of 1000 or 1024), in which
/// threshold records show it.
#[derive(Debug, Clone, Copy, Eq)]
pub struct Rate(pub u64, pub Scale);

/// The same rate however it was spelt: "1MiB/s" is "1048576B/s".
impl PartialEq for Rate {
    fn eq(&self, other: &Rate) -> bool {
        self.0 == other.0
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = parse_rate(&s).map_err(serde::de::Error::custom)?;
        Ok(Rate(bytes, scale_of(&s)))
    }
}

/// The scale a valid rate was written in: bits for `bit`, powers of 1000
/// for an SI prefix; plain bytes ("1048576B/s") are shown in KiB, MiB.
fn scale_of(s: &str) -> Scale {
    let size = s.trim().trim_end_matches("/s");
    let spelt = size.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    match unit(spelt.trim_start()) {
        Unit::Known { factor, counts } => Scale {
            bits: counts == Counts::Bits,
            si: factor > 1 && !factor.is_power_of_two(),
        },
        _ => Scale::BINARY,
    }
}

/// The prefixes of rate units, lowercase: the SI ones powers of 1000, the
/// IEC ones of 1024; each with its name and how a unit spells it.
const PREFIXES: [(&str, u64, &str, &str); 13] = [
    ("", 1, "", ""),
    ("k", 1000, "kilo", "K"),
    ("m", 1000_u64.pow(2), "mega", "M"),
    ("g", 1000_u64.pow(3), "giga", "G"),
    ("t", 1000_u64.pow(4), "tera", "T"),
    ("p", 1000_u64.pow(5), "peta", "P"),
    ("e", 1000_u64.pow(6), "exa", "E"),
    ("ki", 1 << 10, "kibi", "Ki"),
    ("mi", 1 << 20, "mebi", "Mi"),
    ("gi", 1 << 30, "gibi", "Gi"),
    ("ti", 1 << 40, "tebi", "Ti"),
    ("pi", 1 << 50, "pebi", "Pi"),
    ("ei", 1 << 60, "exbi", "Ei"),
];

/// What a rate's unit counts after its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counts {
    Bytes,
    Bits,
}

/// A rate's unit: `B`, `KiB`, `M` (bytes), `Mbit`, `kbit` (bits); the
/// prefix in any case, `B` only upper case, `bit` in any case. A lower
/// case `b` alone is refused: a network engineer's `Mb` is megabits, but
/// many write it for megabytes, and the two differ eightfold.
enum Unit {
    Known { factor: u64, counts: Counts },
    Ambiguous(&'static (&'static str, u64, &'static str, &'static str)),
    Unknown,
}

fn unit(written: &str) -> Unit {
    let lower = written.to_ascii_lowercase();
    let (prefix, counts) = if let Some(p) = lower.strip_suffix("bit") {
        (p, Some(Counts::Bits))
    } else if let Some(p) = written.strip_suffix('B') {
        (&lower[..p.len()], Some(Counts::Bytes))
    } else if let Some(p) = written.strip_suffix('b') {
        (&lower[..p.len()], None)
    } else {
        (lower.as_str(), Some(Counts::Bytes))
    };
    match (PREFIXES.iter().find(|(p, ..)| *p == prefix), counts) {
        (Some(&(_, factor, ..)), Some(counts)) => Unit::Known { factor, counts },
        (Some(p), None) => Unit::Ambiguous(p),
        (None, _) => Unit::Unknown,
    }
}

/// "50MiB/s" or "400 Mbit/s" in bytes per second, exactly (a fraction of
/// a byte is dropped), or why not, with the right form where there is
/// one. A number past u64 is an error, never a saturated u64::MAX.
pub(super) fn parse_rate(s: &str) -> Result<u64, String> {
    let shown_s = shown(s);
    let t = s.trim();
    if let Some(rest) = t.strip_prefix('-') {
        return Err(format!(
            "{shown_s} is negative, and a rate cannot be: write {KEY} = {}",
            shown(rest.trim_start())
        ));
    }
    let Some(size) = t.strip_suffix("/s") else {
        return Err(not_per_second(t, &shown_s));
    };
    let digits = size.find(|c: char| !(c.is_ascii_digit() || c == '.'));
    let (number, rest) = size.split_at(digits.unwrap_or(size.len()));
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(format!(
            "{shown_s} does not start with a number: write a rate like {KEY} = \"50MiB/s\""
        ));
    }
    let spelt = rest.trim_start();
    let (factor, counts) = match unit(spelt) {
        Unit::Known { factor, counts } => (factor, counts),
        Unit::Ambiguous(&(prefix, _, name, upper)) => {
            let space = &rest[..rest.len() - spelt.len()];
            // A kilobit is "kbit", as network gear writes it.
            let bits = if prefix == "k" { "k" } else { upper };
            return Err(format!(
                "{shown_s} is ambiguous: a lowercase b is a bit to some and a byte to \
                 others: write {KEY} = \"{number}{space}{bits}bit/s\" for {name}bits, or \
                 \"{number}{space}{upper}B/s\" for {name}bytes"
            ));
        }
        Unit::Unknown => {
            return Err(format!(
                "{shown_s} has an unknown unit {}: use B, KB, MB, GB, TB (powers of 1000), \
                 KiB, MiB, GiB, TiB (of 1024), or kbit, Mbit, Gbit for bits, like \
                 {KEY} = \"50MiB/s\"",
                shown(spelt)
            ))
        }
    };
    let (whole, fraction) = (
        whole.trim_start_matches('0'),
        fraction.trim_end_matches('0'),
    );
    if fraction.len() > 18 {
        return Err(format!("{shown_s} has more than 18 decimal places"));
    }
    let number = |d: &str| match d {
        "" => Some(0),
        d => d.parse::<u128>().ok(),
    };
    let scale = 10u128.pow(fraction.len() as u32);
    let per_byte = match counts {
        Counts::Bytes => 1,
        Counts::Bits => 8,
    };
    let bytes = number(whole)
        .and_then(|w| w.checked_mul(scale)?.checked_add(number(fraction)?))
        .and_then(|n| n.checked_mul(u128::from(factor)))
        .and_then(|n| u64::try_from(n / (scale * per_byte)).ok())
        .ok_or_else(|| {
            format!(
                "{shown_s} is more than 18446744073709551615B/s (16EiB/s), the largest rate \
                 netio compares"
            )
        })?;
    if bytes == 0 {
        return Err(format!(
            "{shown_s} is less than a byte per second, and a threshold of zero would always \
             fire"
        ));
    }
    Ok(bytes)
}

/// Why a rate without "/s" is not one: per second is the only time, and
/// "Mbps" is the bit rate "Mbit/s".
fn not_per_second(t: &str, shown_s: &str) -> String {
    let bits = t.strip_suffix("bps").map(|n| format!("{n}bit/s"));
    let bytes = t.strip_suffix("Bps").map(|n| format!("{n}B/s"));
    match bits.or(bytes) {
        Some(right) => format!(
            "{shown_s} does not end in /s: write {KEY} = {}",
            shown(&right)
        ),
        None if t.contains('/') => format!(
            "{shown_s} is not per second: write a rate per second, like {KEY} = \"50MiB/s\""
        ),
        None => format!(
            "{shown_s} does not end in /s: write {KEY} = {}",
            shown(&format!("{t}/s"))
        ),
    }
}

/// As `Display` prints it, so `check-config` shows the rate netio compares.
impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Printed exactly, so that `check-config` output reads back as the same
/// rate: in the largest binary unit that divides it, else in bytes.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ];
        for (unit, size) in UNITS {
            if self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}/s", self.0 / size);
            }
        }
        write!(f, "{}B/s", self.0)
    }
}

/// `with` for a duration: read as humantime reads it ("1m 30s"), written
/// as humantime writes it, which reads back the same.
pub(super) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }
}

/// "1m 30s" as a duration, or why not in words rather than humantime's
/// byte offsets, with the right form where there is one.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    use humantime::DurationError as E;
    let shown_s = shown(s);
    let t = s.trim();
    if let Some(rest) = t.strip_prefix('-') {
        return Err(format!(
            "{shown_s} is negative, and a duration cannot be: write {KEY} = {}",
            shown(rest.trim_start())
        ));
    }
    humantime::parse_duration(t).map_err(|e| match e {
        E::UnknownUnit { unit, value, .. } if unit.is_empty() => {
            format!("{shown_s} has no unit: write {KEY} = \"{value}s\" (or ms, m, h, d)")
        }
        E::UnknownUnit { unit, .. } => format!(
            "{shown_s} has an unknown unit {}: use ms, s, m, h or d, like {KEY} = \"10s\"",
            shown(&unit)
        ),
        E::NumberOverflow => format!("{shown_s} is longer than netio can count"),
        E::Empty => format!("{shown_s} is empty: write a duration like {KEY} = \"10s\""),
        E::InvalidCharacter(_) | E::NumberExpected(_) => {
            format!("{shown_s} is not a duration: write a number and a unit, like {KEY} = \"10s\"")
        }
    })
}

/// `with` for the backend: by the names `--backend` takes.
pub(super) mod backend {
    use netio_probes::BackendChoice;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BackendChoice, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(b: &BackendChoice, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> Result<u64, String> {
        parse_rate(s).map_err(|e| e.replace(KEY, "sent"))
    }

    #[test]
    fn a_rate_keeps_the_scale_it_was_written_in() {
        let si = |bits| Scale { bits, si: true };
        let binary_bits = Scale {
            bits: true,
            si: false,
        };
        for (text, scale) in [
            ("1MiB/s", Scale::BINARY),
            ("1048576B/s", Scale::BINARY),
            ("1048576/s", Scale::BINARY),
            ("1.5 MB/s", si(false)),
            ("50M/s", si(false)),
            ("8Mbit/s", si(true)),
            ("400 kbit/s", si(true)),
            ("1Mibit/s", binary_bits),
        ] {
            assert_eq!(scale_of(text), scale, "{text}");
        }
        let r: Rate = serde::Deserialize::deserialize(toml::Value::from("8Mbit/s")).unwrap();
        assert_eq!(
            r,
            Rate(1_000_000, Scale::BINARY),
            "equal in bytes, whatever the scale"
        );
        assert_eq!(r.1, si(true));
    }

    #[test]
    fn rates_are_read_exactly_in_every_unit() {
        for (text, bytes) in [
            ("1500000B/s", 1_500_000),
            ("1500000/s", 1_500_000),
            ("50MB/s", 50_000_000),
            ("800 KB/s", 800_000),
            ("800 kB/s", 800_000),
            ("1k/s", 1000),
            ("1.5 GiB/s", 3 << 29),
            ("1.4 MiB/s", 1_468_006),
            ("3giB/s", 3 << 30),
            ("2Ti/s", 2 << 40),
            ("0.5 KiB/s", 512),
            (".5KiB/s", 512),
            ("7./s", 7),
            ("000001.100000KB/s", 1100),
            ("1 PB/s", 10u64.pow(15)),
            ("15 EiB/s", 15 << 60),
            ("18446744073709551615B/s", u64::MAX),
            ("18.446744073709551615 EB/s", u64::MAX),
        ] {
            assert_eq!(rate(text), Ok(bytes), "{text}");
        }
    }

    /// Bits, spelt `bit`, are eight to the byte: exact where the bits make
    /// whole bytes, the fraction of a byte dropped as for bytes.
    #[test]
    fn rates_in_bits_are_converted_to_bytes_exactly() {
        for (text, bytes) in [
            ("50Mbit/s", 6_250_000),
            ("50 Mbit/s", 6_250_000),
            ("400 mbit/s", 50_000_000),
            ("1 Gbit/s", 125_000_000),
            ("10GBIT/s", 1_250_000_000),
            ("1.5 Gbit/s", 187_500_000),
            ("8kbit/s", 1000),
            ("1 Kbit/s", 125),
            ("1.5 kbit/s", 187),
            ("100bit/s", 12),
            ("1 Kibit/s", 128),
            ("8 Mibit/s", 1 << 20),
            ("147573952589676412920bit/s", u64::MAX),
        ] {
            assert_eq!(rate(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn rates_past_u64_are_refused_not_saturated() {
        for text in [
            "100000EiB/s",
            "16EiB/s",
            "18446744073709551616B/s",
            "18.446744073709551616EB/s",
            "147573952589676412928bit/s",
            "99999999999999999999999999999999999999999999 B/s",
        ] {
            assert_eq!(
                rate(text),
                Err(format!(
                    "{text:?} is more than 18446744073709551615B/s (16EiB/s), the largest rate \
                     netio compares"
                )),
                "{text}"
            );
        }
    }

    /// A lowercase `b` after a prefix is megabits to a network engineer
    /// and megabytes to many others: refused, with both right forms.
    #[test]
    fn a_lowercase_b_is_refused_as_ambiguous_with_both_right_forms() {
        for (text, bits, bytes, name) in [
            ("50 Mb/s", "50 Mbit/s", "50 MB/s", "mega"),
            ("50mb/s", "50Mbit/s", "50MB/s", "mega"),
            ("1kb/s", "1kbit/s", "1KB/s", "kilo"),
            ("3gib/s", "3Gibit/s", "3GiB/s", "gibi"),
            ("1500b/s", "1500bit/s", "1500B/s", ""),
        ] {
            assert_eq!(
                rate(text),
                Err(format!(
                    "{text:?} is ambiguous: a lowercase b is a bit to some and a byte to \
                     others: write sent = {bits:?} for {name}bits, or {bytes:?} for {name}bytes"
                ))
            );
        }
    }

    #[test]
    fn malformed_rates_say_why_and_the_right_form() {
        for (text, why) in [
            (
                "-5MiB/s",
                "is negative, and a rate cannot be: write sent = \"5MiB/s\"",
            ),
            (
                "- 5 MiB/s",
                "is negative, and a rate cannot be: write sent = \"5 MiB/s\"",
            ),
            ("50MiB", "does not end in /s: write sent = \"50MiB/s\""),
            ("50Mbps", "does not end in /s: write sent = \"50Mbit/s\""),
            ("50MBps", "does not end in /s: write sent = \"50MB/s\""),
            (
                "1MiB/min",
                "is not per second: write a rate per second, like sent = \"50MiB/s\"",
            ),
            (
                "fast/s",
                "does not start with a number: write a rate like sent = \"50MiB/s\"",
            ),
            (
                "1.2.3MB/s",
                "does not start with a number: write a rate like sent = \"50MiB/s\"",
            ),
            (
                "./s",
                "does not start with a number: write a rate like sent = \"50MiB/s\"",
            ),
            (
                "5 XB/s",
                "has an unknown unit \"XB\": use B, KB, MB, GB, TB (powers of 1000), KiB, \
                 MiB, GiB, TiB (of 1024), or kbit, Mbit, Gbit for bits, like sent = \"50MiB/s\"",
            ),
            (
                "0MiB/s",
                "is less than a byte per second, and a threshold of zero would always fire",
            ),
            (
                "0.0000001B/s",
                "is less than a byte per second, and a threshold of zero would always fire",
            ),
            (
                "1bit/s",
                "is less than a byte per second, and a threshold of zero would always fire",
            ),
            (
                "1.0000000000000000001KiB/s",
                "has more than 18 decimal places",
            ),
        ] {
            assert_eq!(rate(text), Err(format!("{text:?} {why}")), "{text}");
        }
        let e = parse_rate("1e3/s").unwrap_err();
        assert!(e.contains("unknown unit \"e3\""), "{e}");
    }

    #[test]
    fn malformed_durations_say_why_in_words_and_the_right_form() {
        let duration = |s: &str| parse_duration(s).map_err(|e| e.replace(KEY, "interval"));
        assert_eq!(duration("1m 30s"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(duration("1.5s"), Ok(std::time::Duration::from_millis(1500)));
        for (text, why) in [
            (
                "-10s",
                "is negative, and a duration cannot be: write interval = \"10s\"",
            ),
            (
                "10",
                "has no unit: write interval = \"10s\" (or ms, m, h, d)",
            ),
            (
                "10 parsecs",
                "has an unknown unit \"parsecs\": use ms, s, m, h or d, like interval = \"10s\"",
            ),
            (
                "soon",
                "is not a duration: write a number and a unit, like interval = \"10s\"",
            ),
            ("", "is empty: write a duration like interval = \"10s\""),
            ("99999999999999999999s", "is longer than netio can count"),
        ] {
            assert_eq!(duration(text), Err(format!("{text:?} {why}")), "{text}");
        }
    }
}
