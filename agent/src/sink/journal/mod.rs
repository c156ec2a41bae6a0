//! The systemd journal sink (docs/records.md): each record one entry, sent
//! by native.rs. This file is what happens while journald is away: records
//! go to a fallback writer and are counted, and a `journal_unavailable`
//! record tells the journal of the gap once journald takes records again.
//! The fallback (stderr, under systemd journald's own stream) never blocks:
//! a record it has no room for is lost, counted, and reported by a
//! `journal_records_lost` record when journald is back.

mod native;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use self::native::{encode, Socket};
use crate::record::Record;
use crate::sink::json::to_json;
use crate::sink::Sink;

/// Where journald listens for native-protocol datagrams.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The `NETIO_REASON` of the record that reports an outage of the journal.
pub const OUTAGE_REASON: &str = "journal_unavailable";

/// The `NETIO_REASON` of the record that counts the records of an outage
/// that the fallback had no room for either.
pub const LOST_REASON: &str = "journal_records_lost";

/// A time during which journald did not take netio's records.
#[derive(Debug)]
struct Outage {
    since: Instant,
    /// Records written to the fallback instead, so far.
    records: u64,
    /// Records the fallback refused too (a full stderr): in neither, and
    /// not reported yet.
    lost: u64,
    /// Lost records already reported, for the note at the outage's end.
    lost_reported: u64,
    /// Why the first of those was refused.
    lost_cause: Option<String>,
    /// Why the first of them could not be sent.
    cause: String,
}

/// Writes records to the journal, or to the fallback while journald is away.
pub struct JournalSink {
    path: PathBuf,
    socket: Socket,
    fallback: Box<dyn Write + Send>,
    /// Named in the notes and in the outage record: where to look for the
    /// records that are not in the journal.
    fallback_name: String,
    /// The one-line notes saying journald went away and came back.
    notes: Box<dyn Write + Send>,
    outage: Option<Outage>,
    /// How long writes may still wait, this interval, for journald to drain
    /// its socket queue (EAGAIN) before records go to the fallback.
    patience: Duration,
}

/// Per interval, the longest writes wait in all for a busy journald: long
/// enough for it to drain its short queue, too short to stall the loop.
const PATIENCE_PER_INTERVAL: Duration = Duration::from_millis(250);

impl JournalSink {
    /// journald's usual socket; records fall back to stderr.
    pub fn new() -> io::Result<Self> {
        Self::with_socket(JOURNAL_SOCKET)
    }

    /// Another socket path; records fall back to stderr, which refuses a
    /// line rather than wait for its reader (stderr.rs).
    pub fn with_socket(path: impl Into<PathBuf>) -> io::Result<Self> {
        Self::with_writers(
            path,
            Box::new(crate::stderr::Lines),
            "stderr",
            Box::new(crate::stderr::Notes),
        )
    }

    /// Everything chosen by the caller: the socket, where records go while
    /// journald is away (`fallback`, called `fallback_name` in the notes)
    /// and where the notes go.
    pub fn with_writers(
        path: impl Into<PathBuf>,
        fallback: Box<dyn Write + Send>,
        fallback_name: &str,
        notes: Box<dyn Write + Send>,
    ) -> io::Result<Self> {
        let path = path.into();
        Ok(JournalSink {
            socket: Socket::new(&path)?,
            path,
            fallback,
            fallback_name: fallback_name.to_string(),
            notes,
            outage: None,
            patience: PATIENCE_PER_INTERVAL,
        })
    }

    /// During an outage: offers journald the records that report it (the
    /// lost ones first, then the gap). If journald takes them, the outage
    /// is over and said so once on stderr.
    fn try_recover(&mut self) -> io::Result<()> {
        let Some(outage) = &self.outage else {
            return Ok(());
        };
        let elapsed = Duration::from_millis(outage.since.elapsed().as_millis() as u64);
        if outage.lost > 0 {
            let lost = Record::degraded(
                LOST_REASON,
                outage.lost,
                None,
                &format!(
                    "journald at {} did not take records, and {} could not take {} of them either ({}): they are lost",
                    self.path.display(),
                    self.fallback_name,
                    outage.lost,
                    outage.lost_cause.as_deref().unwrap_or("")
                ),
            );
            if self.socket.send(&encode(&lost)?).is_err() {
                return Ok(());
            }
            if let Some(o) = &mut self.outage {
                o.lost_reported += o.lost;
                o.lost = 0;
            }
        }
        let Some(outage) = &self.outage else {
            return Ok(());
        };
        let gap = Record::degraded(
            OUTAGE_REASON,
            outage.records,
            None,
            &format!(
                "journald at {} did not take records for {} ({}); they were written to {} instead",
                self.path.display(),
                humantime::format_duration(elapsed),
                outage.cause,
                self.fallback_name
            ),
        );
        if self.socket.send(&encode(&gap)?).is_ok() {
            let records = outage.records;
            let lost = match outage.lost_reported {
                0 => String::new(),
                n => format!(", {n} were lost"),
            };
            self.note(&format!(
                "netio: journald is back at {}; {records} records went to {}{lost} during the {} it was away",
                self.path.display(),
                self.fallback_name,
                humantime::format_duration(elapsed)
            ));
            self.outage = None;
        }
        Ok(())
    }

    /// journald did not take a record: from now on records go to the
    /// fallback until it does. Said once, here, not per record.
    fn begin_outage(&mut self, cause: &io::Error) {
        let why = if cause.kind() == io::ErrorKind::WouldBlock {
            "is not keeping up"
        } else {
            "is not reachable"
        };
        self.note(&format!(
            "netio: journald {why} at {} ({cause}); writing records to {} until it takes them again",
            self.path.display(),
            self.fallback_name
        ));
        self.outage = Some(Outage {
            since: Instant::now(),
            records: 0,
            lost: 0,
            lost_reported: 0,
            lost_cause: None,
            cause: cause.to_string(),
        });
    }

    /// A record journald did not take, as one JSON line in one write,
    /// counted for the outage record. One the fallback refuses too (full,
    /// or failing) is lost: counted for the `journal_records_lost` record,
    /// never waited for.
    fn write_fallback(&mut self, record: &Record) -> io::Result<()> {
        let mut line = to_json(record, SystemTime::now());
        line.push('\n');
        let written = self.fallback.write_all(line.as_bytes());
        if let Some(outage) = &mut self.outage {
            match written {
                Ok(()) => outage.records += 1,
                Err(e) => {
                    outage.lost += 1;
                    outage.lost_cause.get_or_insert_with(|| e.to_string());
                }
            }
        }
        Ok(())
    }

    /// A note for whoever reads netio's stderr. Best effort: a note that
    /// cannot be written must not stop the records.
    fn note(&mut self, line: &str) {
        // One write per line: stderr's writers take each write as a line.
        let _ = self.notes.write_all(format!("{line}\n").as_bytes());
        let _ = self.notes.flush();
    }
}

impl JournalSink {
    /// `send`, waiting out a full queue (EAGAIN) while this interval's
    /// patience lasts.
    fn send_patiently(&mut self, entry: &[u8]) -> io::Result<()> {
        const STEP: Duration = Duration::from_millis(1);
        loop {
            match self.socket.send(entry) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.patience >= STEP => {
                    std::thread::sleep(STEP);
                    self.patience -= STEP;
                }
                other => return other,
            }
        }
    }
}

impl Sink for JournalSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let entry = encode(record)?;
        // The gap record goes first, so the journal reads in order: the
        // outage, then what came after it.
        self.try_recover()?;
        if self.outage.is_none() {
            match self.send_patiently(&entry) {
                Ok(()) => return Ok(()),
                // EAGAIN once patience is spent too: waiting longer would
                // stall the sampling loop, dropping would lose the record.
                Err(e) => self.begin_outage(&e),
            }
        }
        self.write_fallback(record)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Once per interval even when it wrote nothing: a journald that came
        // back hears about the gap now, not at the next record.
        self.try_recover()?;
        self.patience = PATIENCE_PER_INTERVAL;
        // A fallback that cannot flush has refused lines, counted already.
        let _ = self.fallback.flush();
        Ok(())
    }

    /// journald reads a sender's unit (`_SYSTEMD_UNIT`, what forwarders
    /// trust) from /proc when it takes an entry: netio must still be alive
    /// then, or its last records arrive without it (docs/siem.md, "Trust").
    fn finish(&mut self) {
        let deadline = Instant::now() + FINISH_WAIT;
        while self.outage.is_none()
            && self.socket.unread().is_ok_and(|n| n > 0)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// At exit, the longest netio waits for journald to take its last records.
const FINISH_WAIT: Duration = Duration::from_secs(2);
