//! The text and JSON outputs on stdout: a reader that stops reading (a
//! stream into a journald that stopped, a paused pipe) stalls neither the
//! sampling loop's watchdog nor the stop, every line it gets is a whole
//! record, and the records it was too slow for are counted in a
//! `stdout_records_lost` record once it reads again.

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::service::{loud_config, Killed, Notify};
use common::{num, Scratch};
use serde_json::Value;

/// The read end of netio's stdout, read only while `reading` is set, in
/// whole lines.
struct Reader {
    reading: Arc<AtomicBool>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Reader {
    fn new(mut pipe: std::io::PipeReader) -> Self {
        let reading = Arc::new(AtomicBool::new(true));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (r, l) = (reading.clone(), lines.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let mut partial = Vec::new();
            loop {
                if !r.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let n = match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                partial.extend_from_slice(&buf[..n]);
                if let Some(end) = partial.iter().rposition(|&b| b == b'\n') {
                    let complete: Vec<u8> = partial.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&complete);
                    l.lock().unwrap().extend(text.lines().map(str::to_string));
                }
            }
        });
        Reader { reading, lines }
    }

    fn set_reading(&self, on: bool) {
        self.reading.store(on, Ordering::SeqCst);
    }

    /// The first complete line read that `pred` holds for.
    fn find(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.lines.lock().unwrap().iter().find(|l| pred(l)).cloned()
    }

    fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }
}

#[test]
fn a_stdout_reader_that_stops_stalls_neither_the_watchdog_nor_the_stop() {
    common::require_root();
    let scratch = Scratch::new("stdout-stopped");
    let notify = Notify::new(&scratch);
    // Large records, many per interval: the pipe and netio's queue fill
    // within seconds.
    let (config, _idle) = loud_config(&scratch, 20, 12000);
    let watchdog = Duration::from_secs(2);
    let (read_end, write_end) = std::io::pipe().expect("a pipe");
    let child = Command::new(common::netio_bin())
        .args(["run", "--config"])
        .arg(&config)
        .args(["--backend", &common::backend(), "--output", "json"])
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", watchdog.as_micros().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn netio");
    let mut netio = Killed(child);
    let reader = Reader::new(read_end);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !notify.has("READY=1") {
        assert!(Instant::now() < deadline, "netio never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));

    // The reader stops for 12 s: the pipe and the queue fill.
    reader.set_reading(false);
    let since = Instant::now();
    std::thread::sleep(Duration::from_secs(12));
    notify.assert_beating(since, watchdog, "stdout's reader was stopped");

    // It reads again: whole records, and the count of those it missed.
    reader.set_reading(true);
    let deadline = Instant::now() + Duration::from_secs(15);
    let lost = loop {
        if let Some(l) = reader.find(|l| l.contains("\"stdout_records_lost\"")) {
            break serde_json::from_str::<Value>(&l).expect("the loss record is JSON");
        }
        assert!(
            Instant::now() < deadline,
            "no stdout_records_lost record after the reader resumed: {} lines read",
            reader.count()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(num(&lost, "NETIO_COUNT").unwrap() > 0, "{lost}");
    let torn = reader.find(|l| serde_json::from_str::<Value>(l).is_err());
    assert!(torn.is_none(), "a torn or mixed line: {torn:.200?}");

    // Stopped again, then the service stops: within TimeoutStopSec.
    reader.set_reading(false);
    std::thread::sleep(Duration::from_secs(3));
    netio.stops_in_time("stdout's reader was stopped");
}
