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
        let bytes: bytesize::ByteSize = size.trim().parse().map_err(|e: String| bad(&e))?;
        if bytes.as_u64() == 0 {
            return Err(bad("a threshold of zero would always fire"));
        }
        Ok(Rate(bytes.as_u64()))
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
