//! JSON output (`--output json`): one JSON object per line, netio's field
//! names or, with `json_schema = "ecs"`, Elastic Common Schema names
//! (sink/ecs.rs, docs/siem.md).

use std::io::{self, Write};
use std::time::SystemTime;

use serde_json::Value as Json;

use crate::record::{Record, Value};
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

/// The record as one JSON object under netio's field names. Also the
/// journal sink's fallback line.
pub fn to_json(record: &Record) -> String {
    let mut map = serde_json::Map::new();
    for (name, value) in &record.fields {
        map.insert((*name).to_string(), json_value(value));
    }
    Json::Object(map).to_string()
}

impl<W: Write> Sink for JsonSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let line = if self.ecs {
            ecs::to_ecs_json(record, SystemTime::now())
        } else {
            to_json(record)
        };
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
