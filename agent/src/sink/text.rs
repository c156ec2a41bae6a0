//! Human-readable output: one line per record, its priority then its
//! MESSAGE (which carries the numbers as key=value), control characters
//! escaped so that none reaches a terminal raw.

use std::io::{self, Write};

use crate::record::{printable, Record};
use crate::sink::{level, Sink};

pub struct TextSink<W: Write> {
    out: W,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W) -> Self {
        TextSink { out }
    }
}

impl<W: Write> Sink for TextSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let summary = record.summary();
        let message = printable(&summary);
        writeln!(self.out, "{:<7} {message}", level(record.kind().priority()))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{TrafficFields, Value};

    fn line(record: &Record) -> String {
        let mut sink = TextSink::new(Vec::new());
        sink.write(record).unwrap();
        String::from_utf8(sink.out).unwrap()
    }

    #[test]
    fn one_line_per_record_with_no_raw_control_character() {
        let t = TrafficFields {
            target: "db",
            sent: 10,
            received: 20,
            interval_ms: 1000,
            backend: "kprobe",
        };
        let who = crate::record::Who {
            pid: 7,
            comm: "e\x1b[2K\r\nsent=0\u{9b}",
            uid: Some(0),
            exe: Some("/x\ny"),
        };
        let r = Record::process_traffic(&t, &who);
        let out = line(&r);
        assert_eq!(
            out,
            "info    target=\"db\" pid=7 comm=\"e\\u001b[2K\\r\\nsent=0\\u009b\" uid=0 exe=\"/x\\ny\" sent=10 received=20 interval_ms=1000\n"
        );
        let mut r = Record::stopping("1.2");
        r.fields[0].1 = Value::Str("a\nb\x1bc".into());
        assert_eq!(line(&r), "notice  a\\nb\\u001bc\n");
    }
}
