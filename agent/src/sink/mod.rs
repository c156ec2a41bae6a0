//! Where records go. Each sink renders the one `Record` type; none adds or
//! renames a field.

pub mod ecs;
pub mod syslog;
pub mod text;

// Not chosen by main.rs yet (selecting a sink is its owner's): until it
// is, only the tests use it.
pub mod journal;

use std::io::{self, Write};

use crate::record::{Record, Value};

/// The word for a syslog PRIORITY that the text and ECS outputs show.
pub fn level(priority: u8) -> &'static str {
    match priority {
        0..=3 => "error",
        4 => "warning",
        5 => "notice",
        _ => "info",
    }
}

pub trait Sink {
    fn write(&mut self, record: &Record) -> io::Result<()>;
    /// Called once per interval, after its records.
    fn flush(&mut self) -> io::Result<()>;
}

/// One JSON object per line. Numbers are JSON numbers; the journal renders
/// the same fields as decimal strings. With `ecs`, the fields carry their
/// Elastic Common Schema names instead (docs/siem.md).
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

pub fn to_json(record: &Record) -> String {
    let mut map = serde_json::Map::new();
    for (name, value) in &record.fields {
        let v = match value {
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Num(n) => serde_json::Value::from(*n),
        };
        map.insert((*name).to_string(), v);
    }
    serde_json::Value::Object(map).to_string()
}

impl<W: Write> Sink for JsonSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let line = if self.ecs {
            ecs::to_ecs_json(record, std::time::SystemTime::now())
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

/// Several sinks at once (the main output and each syslog destination):
/// every record goes to each, and one failing does not keep it from the
/// others.
pub struct Fanout(pub Vec<Box<dyn Sink>>);

impl Sink for Fanout {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let mut result = Ok(());
        for s in &mut self.0 {
            if let Err(e) = s.write(record) {
                result = result.and(Err(e));
            }
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for s in &mut self.0 {
            if let Err(e) = s.flush() {
                result = result.and(Err(e));
            }
        }
        result
    }
}
