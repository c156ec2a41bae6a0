//! Where records go: one file per output, each rendering the one `Record`
//! of record.rs (ECS under the names docs/siem.md publishes); here the
//! `Sink` trait, the fan-out to several outputs, and the outputs a config
//! asks for.

pub mod ecs;
pub mod journal;
pub mod json;
pub mod stdout;
pub mod syslog;
pub mod text;
pub mod time;

use std::io;
use std::path::Path;

use crate::config::{Config, JsonSchema, Output};
use crate::record::Record;
use crate::sink::journal::{JournalSink, JOURNAL_SOCKET};
use crate::sink::json::JsonSink;
use crate::sink::stdout::StdoutSink;
use crate::sink::syslog::SyslogSink;
use crate::sink::text::TextSink;

/// The word for a syslog PRIORITY that the text and ECS outputs show.
pub fn level(priority: u8) -> &'static str {
    match priority {
        0..=3 => "error",
        4 => "warning",
        5 => "notice",
        _ => "info",
    }
}

/// An output: the monitor writes each interval's records, then flushes.
pub trait Sink {
    fn write(&mut self, record: &Record) -> io::Result<()>;
    /// Called once per interval, after its records.
    fn flush(&mut self) -> io::Result<()>;
    /// Records this sink accepted but could not keep since the last call
    /// (a syslog queue that was full), as a `degraded` record for the
    /// other outputs: a loss in one is then seen in all the others.
    fn take_lost(&mut self) -> Option<Record> {
        None
    }
    /// Called once, after the last record: returns when what was written
    /// has been taken by the other end, or after a short bound.
    fn finish(&mut self) {}
}

/// Several sinks at once (the main output and each syslog destination):
/// every record goes to each, and one failing does not keep it from the
/// others. What one of them lost in an interval is reported to the others
/// at the interval's end.
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
        for i in 0..self.0.len() {
            let Some(lost) = self.0[i].take_lost() else {
                continue;
            };
            for (j, s) in self.0.iter_mut().enumerate() {
                if j != i {
                    if let Err(e) = s.write(&lost) {
                        result = result.and(Err(e));
                    }
                }
            }
        }
        for s in &mut self.0 {
            if let Err(e) = s.flush() {
                result = result.and(Err(e));
            }
        }
        result
    }

    fn finish(&mut self) {
        for s in &mut self.0 {
            s.finish();
        }
    }
}

/// Why the configured outputs cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot set up journal output: {0}")]
    Journal(io::Error),
    #[error("syslog {name}: {error}")]
    Tls {
        name: String,
        error: syslog::TlsSetupError,
    },
    #[error("syslog {name}: cannot start its sender thread: {error}")]
    SenderThread { name: String, error: io::Error },
}

/// The configured outputs: the journal when asked, or with `auto` when its
/// socket exists; else text (or JSON) on stdout. Each `[[syslog]]`
/// destination besides.
pub fn from_config(config: &Config) -> Result<Box<dyn Sink>, SinkError> {
    let main = output_sink(config.output, config.json_schema)?;
    if config.syslog.is_empty() {
        return Ok(main);
    }
    let mut sinks = vec![main];
    for s in &config.syslog {
        sinks.push(Box::new(SyslogSink::new(s)?));
    }
    Ok(Box::new(Fanout(sinks)))
}

/// The main output, on its own: stdout never waits for its reader
/// (stdout.rs).
fn output_sink(output: Output, json: JsonSchema) -> Result<Box<dyn Sink>, SinkError> {
    let journal_here = Path::new(JOURNAL_SOCKET).exists();
    let stdout = libc::STDOUT_FILENO;
    Ok(match output {
        Output::Json if json == JsonSchema::Ecs => Box::new(StdoutSink::new(stdout, JsonSink::ecs)),
        Output::Json => Box::new(StdoutSink::new(stdout, JsonSink::new)),
        Output::Text => Box::new(StdoutSink::new(stdout, TextSink::new)),
        Output::Auto if !journal_here => Box::new(StdoutSink::new(stdout, TextSink::new)),
        Output::Auto | Output::Journal => Box::new(JournalSink::new().map_err(SinkError::Journal)?),
    })
}

#[cfg(test)]
mod tests {
    use super::json::to_json;
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Keeps what it is given; loses `lose` records once, if asked to.
    struct Probe {
        got: Rc<RefCell<Vec<String>>>,
        lose: u64,
    }

    impl Sink for Probe {
        fn write(&mut self, record: &Record) -> io::Result<()> {
            self.got
                .borrow_mut()
                .push(to_json(record, std::time::SystemTime::now()));
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn take_lost(&mut self) -> Option<Record> {
            let n = std::mem::take(&mut self.lose);
            (n > 0).then(|| Record::degraded("syslog_dropped", n, None, "test"))
        }
    }

    #[test]
    fn a_loss_in_one_output_is_reported_to_the_others_once() {
        let logs: Vec<Rc<RefCell<Vec<String>>>> = (0..3).map(|_| Rc::default()).collect();
        let mut fan = Fanout(
            logs.iter()
                .enumerate()
                .map(|(i, got)| {
                    Box::new(Probe {
                        got: got.clone(),
                        lose: if i == 1 { 7 } else { 0 },
                    }) as Box<dyn Sink>
                })
                .collect(),
        );
        fan.flush().unwrap();
        fan.flush().unwrap();
        for (i, got) in logs.iter().enumerate() {
            let got = got.borrow();
            if i == 1 {
                assert!(got.is_empty(), "the sink that lost records: {got:?}");
            } else {
                assert_eq!(got.len(), 1, "output {i}: {got:?}");
                assert!(got[0].contains("\"NETIO_COUNT\":7"), "{}", got[0]);
            }
        }
    }
}
