//! Unix-socket accuracy: a target's bytes on Unix stream and seqpacket
//! sockets, its local clients, count exactly as its TCP bytes do, every way
//! they can move, and each is named as the process at the other end (the
//! socket's credentials), not as an address (docs/records.md, "Local
//! clients").

use crate::common;

use serde_json::Value;

use common::{exchange, text, tracked_program, Program, Records, Truth};

const TEN_MB: u64 = 10_000_000;
const ONE_MIB: u64 = 1024 * 1024;

fn s(n: u64) -> String {
    n.to_string()
}

/// netio tracks a netio-traffic serving `scenario` on a Unix socket of
/// `socket_type`; an untracked netio-traffic is its client. netio's totals
/// must equal the server's ground truth, all of it with one peer: the
/// client's process, named. Returns both truths.
fn tracked_unix_server(scenario: &str, socket_type: &str, args: &[&str]) -> (Truth, Truth) {
    let (scratch, tracked, netio) = tracked_program(scenario, "1s");
    let listen = format!("unix:{}", scratch.path("db.sock").display());
    let mut all = vec!["--socket-type", socket_type];
    all.extend_from_slice(args);
    let (server, client) = exchange(&tracked, &Program::original(), scenario, &listen, "", &all);
    let records = netio.stop();
    records.assert_exact(&server.per_pid, &unix_peer(&client));
    assert_names_the_client(&records, &client);
    (server, client)
}

/// The peer a Unix socket's bytes are counted with: the client's process.
fn unix_peer(client: &Truth) -> String {
    common::unix_peer_of(client.pid)
}

/// Every peer record of the run says the bytes went over a Unix socket and
/// names the client's process: its PID, uid and name.
fn assert_names_the_client(records: &Records, client: &Truth) {
    let comm = text(&client.raw, "comm").expect("the client says its name");
    let peers: Vec<&Value> = records
        .traffic()
        .filter(|v| matches!(text(v, "NETIO_SCOPE"), Some("peer" | "target_peer")))
        .filter(|v| {
            common::num(v, "NETIO_SENT_BYTES") != Some(0)
                || common::num(v, "NETIO_RECEIVED_BYTES") != Some(0)
        })
        .collect();
    assert!(!peers.is_empty(), "no peer records with bytes");
    for v in peers {
        assert_eq!(text(v, "NETIO_TRANSPORT"), Some("unix"), "{v}");
        assert_eq!(
            common::num(v, "NETIO_PEER_PID"),
            Some(u64::from(client.pid)),
            "{v}"
        );
        assert_eq!(text(v, "NETIO_PEER_COMM"), Some(comm), "{v}");
        let message = text(v, "MESSAGE").unwrap_or_default();
        assert!(
            message.contains(&format!("peer_comm=\"{comm}\"")),
            "MESSAGE names the client: {message}"
        );
    }
}

#[test]
fn unix_stream_bulk_counts_ten_megabytes_each_way() {
    let (server, _) = tracked_unix_server("bulk", "stream", &["--size", &s(TEN_MB)]);
    assert_eq!((server.sent, server.received), (TEN_MB, TEN_MB));
}

#[test]
fn unix_seqpacket_bulk_counts_ten_megabytes_each_way() {
    let (server, _) = tracked_unix_server("bulk", "seqpacket", &["--size", &s(TEN_MB)]);
    assert_eq!((server.sent, server.received), (TEN_MB, TEN_MB));
}

#[test]
fn unix_recv_waitall_of_trickled_writes_counts_every_byte() {
    let args = [
        "--size",
        "200000",
        "--chunk",
        "1000",
        "--pause-ms",
        "2",
        "--reply",
        "1000",
    ];
    let (server, _) = tracked_unix_server("waitall", "stream", &args);
    assert_eq!(server.received, 200_000, "scenario moved the wrong amount");
}

#[test]
fn unix_peeked_bytes_are_not_counted_as_received() {
    let (server, _) = tracked_unix_server("peek", "stream", &["--size", &s(ONE_MIB)]);
    assert_eq!(server.received, ONE_MIB, "scenario moved the wrong amount");
    let peeked = server.extra("peeked_bytes").unwrap_or(0);
    assert!(
        peeked > ONE_MIB,
        "the server peeked only {peeked} bytes; the test would prove nothing"
    );
}

#[test]
fn unix_many_short_connections_count_as_one_client_process() {
    let args = ["--count", "300", "--request", "100", "--reply", "5000"];
    for socket_type in ["stream", "seqpacket"] {
        let (server, _) = tracked_unix_server("short", socket_type, &args);
        assert_eq!((server.sent, server.received), (300 * 5000, 300 * 100));
    }
}

#[test]
fn unix_forked_children_sharing_the_socket_count_apart_with_the_one_client() {
    let args = [
        "--count",
        "4",
        "--size",
        &s(ONE_MIB),
        "--parent-bytes",
        "50000",
    ];
    let (server, _) = tracked_unix_server("forking", "stream", &args);
    assert_eq!(
        server.per_pid.len(),
        5,
        "the parent and 4 children should each have moved bytes: {:?}",
        server.per_pid
    );
}

#[test]
fn unix_messages_carrying_descriptors_count_their_payload() {
    let args = ["--count", "500", "--request", "300", "--reply", "700"];
    for socket_type in ["stream", "seqpacket"] {
        let (server, _) = tracked_unix_server("scm", socket_type, &args);
        assert_eq!((server.sent, server.received), (500 * 700, 500 * 300));
        assert_eq!(
            server.extra("fds_received"),
            Some(500),
            "every request should have carried a descriptor"
        );
    }
}

#[test]
fn unix_splice_from_the_socket_counts_every_byte_received() {
    let (server, _) = tracked_unix_server("splice", "stream", &["--size", &s(TEN_MB)]);
    assert_eq!(server.received, TEN_MB, "scenario moved the wrong amount");
}

#[test]
fn unix_splice_echo_counts_both_directions() {
    let size = 4 * ONE_MIB;
    let (server, _) = tracked_unix_server("splice-echo", "stream", &["--size", &s(size)]);
    assert_eq!((server.sent, server.received), (size, size));
}

#[test]
fn unix_sendfile_counts_every_file_byte_sent() {
    let (server, _) = tracked_unix_server("sendfile", "stream", &["--size", &s(TEN_MB)]);
    assert_eq!((server.sent, server.received), (TEN_MB, 0));
}

/// Local clients past `top_peers` and `target_peers` fold into `other`
/// like addresses do: four client processes of 4, 3, 2 and 1 short
/// connections to one tracked server, two peers shown; the busiest two
/// are named, the rest is `other`, of no known transport, and every level
/// adds up to the server's ground truth.
#[test]
fn unix_clients_past_the_busiest_fold_into_other() {
    let scratch = common::Scratch::new("unix-fold");
    let name = common::unique_name("ntt");
    let netio = common::Netio::start_with(
        &scratch,
        "60s",
        &[(common::TARGET, &[name.as_str()])],
        "[records]\ntop_peers = 2\ntarget_peers = 2\n",
    );
    let listen = format!("unix:{}", scratch.path("db.sock").display());
    let each = ["--request", "1000", "--reply", "1000"];
    let server = Program::named(&scratch, &name).server(
        "short",
        &listen,
        &[&["--count", "10"][..], &each].concat(),
    );
    let clients: Vec<Truth> = ["4", "3", "2", "1"]
        .iter()
        .map(|n| {
            Program::original().client(
                "short",
                &server.addr(""),
                &[&["--count", n][..], &each].concat(),
            )
        })
        .collect();
    let server = server.finish();
    let records = netio.stop();

    let shown = |scope: &str| -> std::collections::BTreeMap<String, (u64, u64, Option<String>)> {
        records
            .traffic()
            .filter(|v| text(v, "NETIO_SCOPE") == Some(scope))
            .map(|v| {
                let b = common::record_bytes(v);
                let address = text(v, "NETIO_PEER_ADDRESS").unwrap().to_owned();
                let transport = text(v, "NETIO_TRANSPORT").map(str::to_owned);
                (address, (b.sent, b.received, transport))
            })
            .collect()
    };
    let unix = |c: &Truth| (unix_peer(c), (c.received, c.sent, Some("unix".to_owned())));
    let want = std::collections::BTreeMap::from([
        unix(&clients[0]),
        unix(&clients[1]),
        ("other".to_owned(), (3 * 1000, 3 * 1000, None)),
    ]);
    for scope in ["peer", "target_peer"] {
        assert_eq!(shown(scope), want, "{scope} records");
    }
    let got = records.process_totals();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got.get(&server.pid).map(|b| (b.sent, b.received)),
        Some((server.sent, server.received))
    );
    assert_eq!((server.sent, server.received), (10_000, 10_000));
}
