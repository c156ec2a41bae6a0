//! Human-readable output: one line per record, its priority then its
//! MESSAGE (which carries the numbers as key=value).

use std::io::{self, Write};

use crate::record::Record;
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
        let message = record.summary().replace('\n', " ");
        writeln!(self.out, "{:<7} {message}", level(record.kind().priority()))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
