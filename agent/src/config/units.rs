//! The value types a config writes as strings with a unit: rates
//! ("50MiB/s"), durations ("10s") and the backend's name, read with the
//! error messages an operator sees.

use std::fmt;
use std::time::Duration;

use netio_probes::BackendChoice;
use serde::{Deserialize, Deserializer};

/// A rate in bytes per second, written like "50MiB/s".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub u64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = |why: &str| {
            serde::de::Error::custom(format!("{s:?} is not a rate like \"50MiB/s\": {why}"))
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

pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration like \"10s\": {e}")))
}

pub(super) fn backend<'de, D: Deserializer<'de>>(d: D) -> Result<BackendChoice, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}
