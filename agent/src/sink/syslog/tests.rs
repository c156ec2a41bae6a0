//! The sender's losses against collectors on loopback that the test plays:
//! one that accepts and closes at once, and UDP with a record too large
//! for a datagram. Every record not delivered is counted, by its cause.

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

fn destination(transport: &str, address: &str) -> Syslog {
    toml::from_str(&format!(
        "transport = \"{transport}\"\naddress = \"{address}\"\nqueue = 100\n"
    ))
    .unwrap()
}

/// A record's `NETIO_COUNT`.
fn count(r: &Record) -> u64 {
    match r.get(crate::record::field::COUNT) {
        Some(crate::record::Value::Num(n)) => *n,
        other => panic!("NETIO_COUNT {other:?}"),
    }
}

fn record(i: u64) -> Record {
    Record::degraded("test", i, None, "a record")
}

#[test]
fn a_collector_that_accepts_and_closes_loses_every_record_counted_with_backoff() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(Mutex::new(0u32));
    let stop = Arc::new(AtomicBool::new(false));
    let (a, s) = (Arc::clone(&accepted), Arc::clone(&stop));
    let server = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((conn, _)) => {
                    *a.lock().unwrap() += 1;
                    drop(conn);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    let mut sink = SyslogSink::new(&destination("tcp", &format!("127.0.0.1:{port}"))).unwrap();
    let started = Instant::now();
    let mut lost = 0;
    let mut written = 0;
    while started.elapsed() < Duration::from_secs(4) {
        sink.write(&record(written)).unwrap();
        written += 1;
        std::thread::sleep(Duration::from_millis(50));
        if let Some(r) = sink.take_lost() {
            lost += count(&r);
        }
    }
    let (queued, in_flight, unreported) = {
        let st = sink.shared.lock();
        (st.messages as u64, st.in_flight, st.unreported.total())
    };
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    let connections = *accepted.lock().unwrap();
    // 0.2 + 0.4 + 0.8 + 1.6 s of backoff: about five in 4 s, not one per
    // record.
    assert!(
        connections <= 7,
        "{connections} connections for {written} records"
    );
    assert!(lost > 0, "losses reported while running");
    assert_eq!(
        lost + queued + in_flight + unreported,
        written,
        "each record delivered to no one is lost and counted, or still queued"
    );
}

#[test]
fn a_record_too_large_for_udp_is_dropped_in_its_place_and_the_queue_moves_on() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let address = collector.local_addr().unwrap().to_string();
    let mut sink = SyslogSink::new(&destination("udp", &address)).unwrap();
    let huge = Record::degraded("test", 1, None, &"x".repeat(70_000));
    sink.write(&huge).unwrap();
    sink.write(&record(2)).unwrap();
    let mut buf = vec![0u8; 70_000];
    let mut got = Vec::new();
    for _ in 0..2 {
        let n = collector.recv(&mut buf).unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        got[0].contains("NETIO_REASON=\"syslog_dropped\"")
            && got[0].contains("1 were too large for the transport"),
        "the gap in the record's place: {}",
        got[0]
    );
    assert!(got[1].contains("a record"), "then the next: {}", got[1]);
    let lost = sink.take_lost().expect("reported to the other outputs");
    assert_eq!(count(&lost), 1);
}
