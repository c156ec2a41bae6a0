//! JSON output (`--output json`): one JSON object per line, netio's field
//! names and the time it was written (`NETIO_TIMESTAMP`) or, with
//! `json_schema = "ecs"`, Elastic Common Schema names (sink/ecs.rs,
//! docs/siem.md).

use std::io::{self, Write};
use std::time::SystemTime;

use serde_json::Value as Json;

use crate::record::{field, Record, Value};
use crate::sink::time::rfc3339_utc;
use crate::sink::{ecs, Sink};

/// One JSON object per line. Numbers are JSON numbers; the journal renders
/// the same fields as decimal strings.
pub struct JsonSink<W: Write> {
    out: W,
    ecs: bool,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W) -> Self {
        JsonSink { out, ecs: false }
    }

    pub fn ecs(out: W) -> Self {
        JsonSink { out, ecs: true }
    }
}

/// A field's value in JSON: both schemas type values the same way.
pub fn json_value(value: &Value) -> Json {
    match value {
        Value::Str(s) => Json::String(s.clone()),
        Value::Num(n) => Json::from(*n),
    }
}

/// The record as one JSON object under netio's field names, with the time
/// `at` it is written as `NETIO_TIMESTAMP`. Also the journal sink's
/// fallback line, which has no journal to stamp it.
pub fn to_json(record: &Record, at: SystemTime) -> String {
    let mut map = serde_json::Map::new();
    map.insert(field::TIMESTAMP.into(), Json::String(rfc3339_utc(at)));
    for (name, value) in &record.fields {
        map.insert((*name).to_string(), json_value(value));
    }
    Json::Object(map).to_string()
}

impl<W: Write> Sink for JsonSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let now = SystemTime::now();
        let line = if self.ecs {
            ecs::to_ecs_json(record, now)
        } else {
            to_json(record, now)
        };
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn every_line_carries_the_time_it_was_written_in_rfc3339_utc() {
        let mut sink = JsonSink::new(Vec::new());
        let before = SystemTime::now();
        sink.write(&Record::stopping("1.0")).unwrap();
        let after = SystemTime::now();
        let line: Json = serde_json::from_slice(&sink.out).unwrap();
        let stamp = line[field::TIMESTAMP].as_str().unwrap();
        assert!(stamp.ends_with('Z'), "{stamp}: UTC");
        let at = humantime::parse_rfc3339(stamp).unwrap();
        // Microseconds: the stamp may be up to 1 µs before `before`.
        assert!(
            at + Duration::from_micros(1) >= before && at <= after,
            "{stamp}"
        );
        let fixed = to_json(
            &Record::stopping("1.0"),
            UNIX_EPOCH + Duration::from_secs(86400),
        );
        assert!(
            fixed.contains(r#""NETIO_TIMESTAMP":"1970-01-02T00:00:00.000000Z""#),
            "{fixed}"
        );
    }
}
