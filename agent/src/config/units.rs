//! The value types a config writes as strings with a unit: rates
//! ("50MiB/s"), durations ("10s") and the backend's name, read with the
//! error messages an operator sees.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::shown;

/// A rate in bytes per second, written like "50MiB/s".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub u64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = |why: &str| {
            serde::de::Error::custom(format!(
                "{} is not a rate like \"50MiB/s\": {why}",
                shown(&s)
            ))
        };
        let Some(size) = s.trim().strip_suffix("/s") else {
            return Err(bad("it must end in /s"));
        };
        let bytes = parse_size(size.trim()).map_err(|e| bad(&e))?;
        if bytes == 0 {
            return Err(bad("a threshold of zero would always fire"));
        }
        Ok(Rate(bytes))
    }
}

/// The byte-size units of rates, lowercase: the SI ones powers of 1000,
/// the IEC ones of 1024, with or without their `B`.
const SIZE_UNITS: [(&str, u64); 14] = [
    ("b", 1),
    ("k", 1000),
    ("m", 1000_u64.pow(2)),
    ("g", 1000_u64.pow(3)),
    ("t", 1000_u64.pow(4)),
    ("p", 1000_u64.pow(5)),
    ("e", 1000_u64.pow(6)),
    ("ki", 1 << 10),
    ("mi", 1 << 20),
    ("gi", 1 << 30),
    ("ti", 1 << 40),
    ("pi", 1 << 50),
    ("ei", 1 << 60),
    ("", 1),
];

/// "1.5 GiB" in bytes, exactly (a fraction of a byte is dropped), or why
/// not: a number past u64 is an error, never a saturated u64::MAX.
fn parse_size(s: &str) -> Result<u64, String> {
    const LARGEST: &str =
        "it is more than 18446744073709551615B/s (16EiB/s), the largest rate netio compares";
    let digits = s.find(|c: char| !(c.is_ascii_digit() || c == '.'));
    let (number, unit) = s.split_at(digits.unwrap_or(s.len()));
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err("it must start with a number".into());
    }
    let unit = unit.trim_start().to_ascii_lowercase();
    let factor = SIZE_UNITS
        .iter()
        .find(|(u, _)| *u == unit || (!u.is_empty() && unit.strip_suffix('b') == Some(u)))
        .map(|(_, f)| *f)
        .ok_or_else(|| format!("unknown unit {}", shown(&unit)))?;
    let (whole, fraction) = (
        whole.trim_start_matches('0'),
        fraction.trim_end_matches('0'),
    );
    if fraction.len() > 18 {
        return Err("more than 18 decimal places".into());
    }
    let number = |d: &str| match d {
        "" => Some(0),
        d => d.parse::<u128>().ok(),
    };
    let scale = 10u128.pow(fraction.len() as u32);
    number(whole)
        .and_then(|w| w.checked_mul(scale)?.checked_add(number(fraction)?))
        .and_then(|n| n.checked_mul(u128::from(factor)))
        .and_then(|n| u64::try_from(n / scale).ok())
        .ok_or_else(|| LARGEST.to_string())
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
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "{} is not a duration like \"10s\": {e}",
                super::shown(&s)
            ))
        })
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }
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
        let v = toml::Value::String(s.into());
        Rate::deserialize(v).map(|r| r.0).map_err(|e| e.to_string())
    }

    #[test]
    fn rates_are_read_exactly_in_every_unit() {
        for (text, bytes) in [
            ("1500000B/s", 1_500_000),
            ("1500000/s", 1_500_000),
            ("50MB/s", 50_000_000),
            ("800 KB/s", 800_000),
            ("1k/s", 1000),
            ("1.5 GiB/s", 3 << 29),
            ("1.4 MiB/s", 1_468_006),
            ("3gib/s", 3 << 30),
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

    #[test]
    fn rates_past_u64_are_refused_not_saturated() {
        for text in [
            "100000EiB/s",
            "16EiB/s",
            "18446744073709551616B/s",
            "18.446744073709551616EB/s",
            "99999999999999999999999999999999999999999999 B/s",
        ] {
            let e = rate(text).unwrap_err();
            assert!(
                e.contains("more than 18446744073709551615B/s"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn malformed_rates_say_why() {
        for (text, why) in [
            ("50MiB", "end in /s"),
            ("fast/s", "start with a number"),
            ("-5MiB/s", "start with a number"),
            ("./s", "start with a number"),
            ("1.2.3MB/s", "start with a number"),
            ("5 XB/s", "unknown unit \"xb\""),
            ("1e3/s", "unknown unit"),
            ("0MiB/s", "zero"),
            ("0.0000001B/s", "zero"),
            ("1.0000000000000000001KiB/s", "18 decimal places"),
        ] {
            let e = rate(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
