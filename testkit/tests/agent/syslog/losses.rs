//! Syslog records that cannot be delivered: each is counted in a
//! `syslog_dropped` record and the queue moves on. A record too large for
//! UDP is dropped in its place, not retried forever; a collector that
//! accepts connections and closes them at once has every record counted
//! and is reconnected to with a growing backoff, not once per record; so
//! has a TLS collector that refuses netio's client certificate.

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{certificates, event, tls_syslog, Rsyslog};
use crate::common::{free_port, unique_name, Idle, Netio, Program, Records, Scratch, TARGET};

/// A loopback UDP collector keeping every datagram as text.
struct UdpCollector {
    port: u16,
    got: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl UdpCollector {
    fn start() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (Arc::clone(&got), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 70000];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    g.lock().unwrap().push(text);
                }
            }
        });
        UdpCollector { port, got, stop }
    }

    fn messages(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for UdpCollector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An SD-PARAM's value in a collector's message.
fn sd_param(message: &str, name: &str) -> Option<String> {
    let start = message.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + message[start..].find('"')?;
    Some(message[start..end].to_string())
}

/// The records a destination reported lost, by the `syslog_dropped`
/// records of the main output.
fn told(records: &[Value]) -> u64 {
    records
        .iter()
        .filter(|r| r["NETIO_REASON"] == "syslog_dropped")
        .map(|r| r["NETIO_COUNT"].as_u64().unwrap())
        .sum()
}

/// What netio said on stderr it could not deliver at exit.
fn lost_at_exit(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            let rest = l.strip_suffix(" records not delivered at exit")?;
            rest.rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or(0)
}

#[test]
fn a_record_too_large_for_udp_is_dropped_counted_and_the_records_after_it_arrive() {
    let scratch = Scratch::new("syslog-too-large");
    let collector = UdpCollector::start();
    // Every record of the second target names it: larger than a UDP
    // datagram can be (65507 bytes). The started record names it too.
    let big = "b".repeat(70_000);
    let name = unique_name("ntsl");
    let syslog = format!(
        "[[syslog]]\ntransport = \"udp\"\naddress = \"127.0.0.1:{}\"\n",
        collector.port
    );
    let idle = Idle::start(&scratch);
    let netio = Netio::start_with(
        &scratch,
        "200ms",
        &[(TARGET, &[name.as_str()]), (&big, &[idle.name.as_str()])],
        &syslog,
    );
    let _tracked = Program::named(&scratch, &name);
    std::thread::sleep(Duration::from_secs(2));
    let Records { records, stderr } = netio.stop();

    let sent: Vec<&Value> = records
        .iter()
        .filter(|r| r["NETIO_REASON"] != "syslog_dropped")
        .collect();
    let oversized = sent.iter().filter(|r| r.to_string().contains(&big)).count() as u64;
    assert!(oversized >= 5, "started and a target record per interval");
    let deadline = Instant::now() + Duration::from_secs(5);
    let messages = loop {
        let m = collector.messages();
        if m.iter().any(|m| m.contains(" stopping ")) || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The queue moved on: every record small enough arrived.
    let small = sent.len() as u64 - oversized;
    let delivered = messages
        .iter()
        .filter(|m| sd_param(m, "NETIO_REASON").as_deref() != Some("syslog_dropped"))
        .count() as u64;
    assert_eq!(
        delivered,
        small,
        "every record after the first oversized one too; got {} messages; stderr:\n{stderr}",
        messages.len()
    );
    // Each oversized one counted, to the collector and to the main output.
    let gaps: u64 = messages
        .iter()
        .filter(|m| sd_param(m, "NETIO_REASON").as_deref() == Some("syslog_dropped"))
        .map(|m| sd_param(m, "NETIO_COUNT").unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(gaps, oversized, "the collector is told of each");
    assert_eq!(
        told(&records) + lost_at_exit(&stderr),
        oversized,
        "the main output is told of each; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("is too large for udp"),
        "netio says why:\n{stderr}"
    );
    let full = stderr
        .lines()
        .filter(|l| l.starts_with("netio: syslog udp") && l.contains("is too large for udp"))
        .count();
    assert_eq!(full, 1, "said once, then counted:\n{stderr}");
    assert!(
        stderr.contains("more \"syslog record too large\" warnings"),
        "the count is said:\n{stderr}"
    );
}

/// A collector that accepts every connection and closes it at once,
/// reading nothing: when each connection came.
fn accept_and_close() -> (u16, Arc<Mutex<Vec<Instant>>>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let times = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (t, s) = (Arc::clone(&times), Arc::clone(&stop));
    std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((conn, _)) => {
                    t.lock().unwrap().push(Instant::now());
                    drop(conn);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    (port, times, stop)
}

#[test]
fn a_collector_that_accepts_and_closes_has_every_record_counted_and_backoff_growing() {
    let scratch = Scratch::new("syslog-accept-close");
    let (port, times, stop) = accept_and_close();
    let syslog = format!("[[syslog]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n");
    let idle = Idle::start(&scratch);
    let netio = Netio::start_with(
        &scratch,
        "100ms",
        &[(TARGET, &[idle.name.as_str()])],
        &syslog,
    );
    std::thread::sleep(Duration::from_secs(8));
    let Records { records, stderr } = netio.stop();
    stop.store(true, Ordering::Relaxed);
    let times = times.lock().unwrap().clone();

    let sent = records
        .iter()
        .filter(|r| r["NETIO_REASON"] != "syslog_dropped")
        .count() as u64;
    assert!(sent >= 60, "{sent} records in 8 s of 100 ms intervals");
    // Not a connection per record: the backoff grows, as no connection
    // stayed up.
    assert!(
        times.len() <= 12,
        "{} connections for {sent} records in 8 s; stderr:\n{stderr}",
        times.len()
    );
    let widest = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        widest >= Duration::from_millis(1500),
        "the waits between connections grow: widest {widest:?}"
    );
    // The collector read nothing: every record is counted, in the main
    // output's syslog_dropped records or at exit.
    let told = told(&records);
    assert!(
        told > 0,
        "losses are reported while netio runs; stderr:\n{stderr}"
    );
    assert_eq!(
        told + lost_at_exit(&stderr),
        sent,
        "every record sent to the collector is counted as lost; stderr:\n{stderr}"
    );
    assert!(
        records
            .iter()
            .filter(|r| event(r) == "degraded")
            .all(|r| r["NETIO_REASON"] == "syslog_dropped"),
        "no other loss"
    );
    assert_eq!(
        stderr.matches("ended the connection within 1 s").count(),
        1,
        "said once:\n{stderr}"
    );
}

#[test]
fn a_tls_collector_that_refuses_the_client_certificate_has_every_record_counted() {
    let scratch = Scratch::new("syslog-client-refused");
    let server = certificates(&scratch.dir, "server", "IP:127.0.0.1", false);
    // The client's certificate is its own issuer: not one the collector's
    // CA signed.
    let other = scratch.dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let client = certificates(&other, "client", "IP:127.0.0.1", true);
    let port = free_port();
    let inputs = format!(
        "global(DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\")\n\
         module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"x509/certvalid\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"netio_test\")",
        server.ca.display(),
        server.cert.display(),
        server.key.display()
    );
    let mut collector = Rsyslog::configure(&scratch.dir, "client-refused", &inputs);
    collector.port = Some(port);
    collector.start();
    let syslog = format!(
        "{}client_cert = {:?}\nclient_key = {:?}\n",
        tls_syslog(port, &server.ca),
        client.cert.display().to_string(),
        client.key.display().to_string()
    );
    let name = unique_name("ntsr");
    let netio = Netio::start_with(&scratch, "200ms", &[(TARGET, &[name.as_str()])], &syslog);
    let pid = netio.pid();
    std::thread::sleep(Duration::from_secs(5));
    let Records { records, stderr } = netio.stop();

    assert!(
        collector.messages_of(pid, |_| true).is_empty(),
        "the collector refused netio: it took nothing"
    );
    let sent = records
        .iter()
        .filter(|r| r["NETIO_REASON"] != "syslog_dropped")
        .count() as u64;
    assert_eq!(
        told(&records) + lost_at_exit(&stderr),
        sent,
        "every record is counted, delivered to no one; stderr:\n{stderr}"
    );
}
