//! Tests of the record model: names, kinds, ids, and the docs that must
//! agree with them; `samples()` gives one record of every kind for the
//! sinks' tests.

use std::collections::BTreeSet;

use netio_probes::{Backend, Prog};

use super::*;

/// A PostgreSQL backend as its records name it.
pub fn postgres() -> Who<'static> {
    Who {
        pid: 7,
        comm: "postgres",
        uid: Some(105),
        exe: Some("/usr/lib/postgresql/15/bin/postgres"),
    }
}

#[test]
fn traffic_message_carries_the_numbers_as_key_value() {
    let t = TrafficFields {
        target: "db",
        sent: 10,
        received: 20,
        interval_ms: 500,
        backend: "tracepoint",
    };
    let r = Record::peer_traffic(&t, &postgres(), "::1");
    let Value::Str(m) = r.get(field::MESSAGE).unwrap() else {
        panic!()
    };
    assert!(
        m.contains("sent=10") && m.contains("received=20") && m.contains("peer=\"::1\""),
        "{m}"
    );
    assert_eq!(r.get(field::SENT_BYTES), Some(&Value::Num(10)));
    assert_eq!(r.get(field::RECEIVED_BYTES_PER_SEC), Some(&Value::Num(40)));
    assert_eq!(r.get(field::PEER_ADDRESS), Some(&Value::Str("::1".into())));
    assert_eq!(r.get(field::UID), Some(&Value::Num(105)));
    assert!(
        m.contains(
            r#"comm="postgres" uid=105 exe="/usr/lib/postgresql/15/bin/postgres" peer="::1""#
        ),
        "{m}"
    );
}

fn message(r: &Record) -> String {
    r.summary()
}

#[test]
fn message_reads_in_units_while_the_fields_stay_raw_integers() {
    let t = TrafficFields {
        target: "redis",
        sent: 27_163_648,
        received: 0,
        interval_ms: 10_000,
        backend: "tracepoint",
    };
    let r = Record::target_traffic(&t, 1, 3);
    assert!(
        message(&r).starts_with(
            "target=\"redis\" sent 25.9 MiB (2.6 MiB/s) and received nothing in 10 s, \
             1 process, 3 peers: sent=27163648 received=0 sent_per_sec=2716364 "
        ),
        "{}",
        message(&r)
    );
    assert_eq!(r.get(field::SENT_BYTES), Some(&Value::Num(27_163_648)));
    assert_eq!(
        r.get(field::SENT_BYTES_PER_SEC),
        Some(&Value::Num(2_716_364))
    );
    assert_eq!(r.get(field::PEERS), Some(&Value::Num(3)));

    // A limit written in bits is shown in bits; a measured interval a
    // millisecond short reads as the sustain time it completes.
    let th = ThresholdFields {
        target: "redis",
        peer: None,
        folded_peers: None,
        direction: "sent",
        rate: 10_500_000,
        threshold: 1_000_000,
        sustain_ms: 4000,
        duration_ms: 3999,
        breach_ms: 3999,
        scale: crate::human::Scale {
            bits: true,
            si: true,
        },
    };
    let r = Record::threshold(Kind::ThresholdExceeded, &th);
    assert_eq!(
        message(&r),
        "target=\"redis\" rate threshold exceeded: sent 84 Mbit/s > 8 Mbit/s for 4 s, the \
         sustain time (counted in whole intervals): direction=\"sent\" rate=10500000 \
         threshold=1000000 duration_ms=3999 breach_ms=3999"
    );
    assert_eq!(r.get(field::RATE), Some(&Value::Num(10_500_000)));
    assert_eq!(r.get(field::THRESHOLD), Some(&Value::Num(1_000_000)));
    let binary = ThresholdFields {
        rate: 11_010_048,
        threshold: 1 << 20,
        scale: crate::human::Scale::BINARY,
        ..th
    };
    let m = message(&Record::threshold(Kind::ThresholdExceeded, &binary));
    assert!(m.contains(" sent 10.5 MiB/s > 1 MiB/s for 4 s,"), "{m}");
}

#[test]
fn the_recovered_record_says_how_long_the_breach_lasted() {
    let th = ThresholdFields {
        target: "db",
        peer: None,
        folded_peers: None,
        direction: "received",
        rate: 100,
        threshold: 1 << 20,
        sustain_ms: 4000,
        duration_ms: 4000,
        breach_ms: 80_000,
        scale: crate::human::Scale::BINARY,
    };
    let r = Record::threshold(Kind::ThresholdRecovered, &th);
    assert_eq!(r.get(field::BREACH_MS), Some(&Value::Num(80_000)));
    assert_eq!(r.get(field::DURATION_MS), Some(&Value::Num(4000)));
    let m = message(&r);
    assert!(
        m.contains("received 100 B/s, at or below 1 MiB/s for 4 s, after a breach of 1 min 20 s:"),
        "{m}"
    );
}

#[test]
fn a_breach_of_other_says_it_is_other_and_how_many_peers_it_folds_at_least() {
    let th = ThresholdFields {
        target: "db",
        peer: Some("other".into()),
        folded_peers: Some(5),
        direction: "sent",
        rate: 2048,
        threshold: 1024,
        sustain_ms: 1000,
        duration_ms: 1000,
        breach_ms: 1000,
        scale: crate::human::Scale::BINARY,
    };
    let r = Record::threshold(Kind::ThresholdExceeded, &th);
    assert_eq!(
        r.get(field::PEER_ADDRESS),
        Some(&Value::Str("other".into()))
    );
    assert_eq!(r.get(field::FOLDED_PEERS_MIN), Some(&Value::Num(5)));
    let m = message(&r);
    assert!(m.contains("peer=\"other\" folded_peers_min=5 "), "{m}");
    let one = ThresholdFields {
        peer: Some("10.0.0.1".into()),
        folded_peers: None,
        ..th
    };
    let r = Record::threshold(Kind::ThresholdExceeded, &one);
    assert_eq!(
        r.get(field::FOLDED_PEERS_MIN),
        None,
        "a real peer folds none"
    );
}

#[test]
fn a_target_fallback_record_names_the_target_and_the_bytes() {
    let r = Record::degraded_for("target_fallback", "db", 3, Some((10, 20)), "");
    assert_eq!(r.get(field::TARGET), Some(&Value::Str("db".into())));
    assert_eq!(r.get(field::COUNT), Some(&Value::Num(3)));
    assert_eq!(r.get(field::SENT_BYTES), Some(&Value::Num(10)));
    assert_eq!(r.get(field::RECEIVED_BYTES), Some(&Value::Num(20)));
    assert_eq!(
        message(&r),
        "netio degraded: reason=\"target_fallback\" target=\"db\" count=3 sent=10 received=20"
    );
}

#[test]
fn the_reload_record_names_what_changed() {
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (added, removed, thresholds) = (names(&["redis"]), names(&["pg", "kv"]), names(&["db"]));
    let r = Record::config_reloaded(&Reloaded {
        config: "/etc/netio/netio.conf",
        added: &added,
        removed: &removed,
        matching: &[],
        thresholds: &thresholds,
        interval_ms: None,
        detail: "",
    });
    assert_eq!(
        message(&r),
        "configuration reloaded: config=\"/etc/netio/netio.conf\" 1 target added, 2 targets \
         removed, thresholds changed for 1 target: targets_added=\"redis\" \
         targets_removed=\"pg,kv\" thresholds_changed=\"db\""
    );
    assert_eq!(
        r.get(field::TARGETS_ADDED),
        Some(&Value::Str("redis".into()))
    );
    assert_eq!(
        r.get(field::TARGETS_REMOVED),
        Some(&Value::Str("pg,kv".into()))
    );
    assert_eq!(
        r.get(field::TARGETS_REMATCHED),
        Some(&Value::Str(String::new()))
    );
    assert_eq!(
        r.get(field::THRESHOLDS_CHANGED),
        Some(&Value::Str("db".into()))
    );
    let none = Record::config_reloaded(&Reloaded {
        config: "c",
        added: &[],
        removed: &[],
        matching: &[],
        thresholds: &[],
        interval_ms: None,
        detail: "",
    });
    assert_eq!(
        message(&none),
        "configuration reloaded: config=\"c\" no change in force"
    );
}

fn report(backend: Backend, programs: &[Prog]) -> BackendReport {
    BackendReport {
        backend,
        programs: programs.to_vec(),
        drain_iterator: None,
        optional: Vec::new(),
        notes: Vec::new(),
        failed: Vec::new(),
        hash_path: None,
    }
}

#[test]
fn backend_detail_lists_what_is_attached_then_what_is_not_seen() {
    use netio_probes::{BlindSpot, Disabled, OptionalGroup};

    let mut r = report(
        Backend::Tracepoint,
        &[Prog::TpSockSendLength, Prog::TpSockRecvLength],
    );
    r.optional.push(OptionalGroup {
        what: "splice and sendfile reading from a socket",
        progs: &[
            Prog::TpEnterSplice,
            Prog::TpExitSplice,
            Prog::TpEnterSendfile,
            Prog::TpExitSendfile,
        ],
    });
    r.notes.push(BlindSpot::SendpageUnseen);
    r.hash_path = Some(
        Disabled {
            by: "NETIO_DISABLE_BACKENDS=socket-path".into(),
        }
        .into(),
    );
    assert_eq!(
        backend_detail(&r),
        "tp_sock_send_length, tp_sock_recv_length, tp_enter_splice, tp_exit_splice, \
         tp_enter_sendfile, tp_exit_sendfile; this kernel sends sendfile/splice through \
         tcp_sendpage, which the tracepoints do not see: prefer fentry or kprobe; every \
         counted event takes the hash path (no socket-local counters, which need Linux \
         5.12+: disabled by NETIO_DISABLE_BACKENDS=socket-path (a testing knob))"
    );

    let mut r = report(
        Backend::Fentry,
        &[Prog::FexitTcpSendmsg, Prog::TpTcpDestroySock],
    );
    r.drain_iterator = Some(Prog::IterDrainSockets);
    assert_eq!(
        backend_detail(&r),
        "fexit_tcp_sendmsg, tp_tcp_destroy_sock, iter_drain_sockets"
    );
}

#[test]
fn backend_detail_says_what_kretprobes_through_the_pmu_miss() {
    use netio_probes::{BlindSpot, KretprobeError, KretprobeStep};

    let pmu = "kretprobes attached through the kprobe PMU, where the kernel lets only a \
               few threads (as few as one per CPU) be inside a probed function at once: \
               returns beyond that are not counted";
    let mut r = report(Backend::Kprobe, &[Prog::KpTcpSendmsg, Prog::KrpTcpSendmsg]);
    r.failed.push(BlindSpot::NoTracefs);
    assert_eq!(
        backend_detail(&r),
        format!(
            "kp_tcp_sendmsg, krp_tcp_sendmsg; tracefs is not mounted (no kprobe_events): \
             {pmu}. Mount tracefs on /sys/kernel/tracing and restart netio"
        )
    );
    r.failed[0] = BlindSpot::KretprobeThroughPmu(KretprobeError {
        prog: Prog::KrpTcpSendmsg,
        func: "tcp_sendmsg",
        step: KretprobeStep::Create {
            path: "/sys/kernel/tracing/kprobe_events".into(),
            error: std::io::Error::from_raw_os_error(libc::EROFS),
        },
    });
    assert_eq!(
        backend_detail(&r),
        format!(
            "kp_tcp_sendmsg, krp_tcp_sendmsg; cannot attach krp_tcp_sendmsg (kretprobe on \
             tcp_sendmsg): cannot create it in /sys/kernel/tracing/kprobe_events: Read-only \
             file system (os error 30); {pmu}"
        )
    );
}

#[test]
fn every_kind_has_its_own_128_bit_message_id() {
    let ids: BTreeSet<_> = Kind::ALL.iter().map(|k| k.message_id()).collect();
    assert_eq!(ids.len(), Kind::ALL.len());
    for id in ids {
        assert!(
            id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{id}"
        );
    }
    let kinds: BTreeSet<_> = samples().iter().map(|r| r.kind().name()).collect();
    assert_eq!(
        kinds.len(),
        Kind::ALL.len(),
        "samples() must cover every kind"
    );
}

#[test]
fn every_field_name_is_journal_safe() {
    for r in samples() {
        for (name, _) in &r.fields {
            assert!(valid_field_name(name), "{name}");
        }
    }
}

#[test]
fn field_names_journald_keeps_are_valid_and_the_others_are_not() {
    for good in ["MESSAGE", "NETIO_SENT_BYTES", "A", "X9_", &"N".repeat(64)] {
        assert!(valid_field_name(good), "{good}");
    }
    let too_long = "N".repeat(65);
    for bad in [
        "",
        "netio_pid",
        "NETIO-PID",
        "_PID",
        "9LIVES",
        "NETIO PID",
        "NETIÖ",
        "NETIO=PID",
        &too_long,
    ] {
        assert!(!valid_field_name(bad), "{bad}");
    }
}

/// docs/records.md is the public schema: it must name exactly the
/// fields and kinds the code writes.
#[test]
fn records_md_documents_exactly_the_fields_and_kinds_written() {
    let doc = include_str!("../../../docs/records.md");
    let documented: BTreeSet<String> = doc
        .split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .filter(|w| {
            (w.starts_with("NETIO_") && w.len() > "NETIO_".len())
                || ["MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER"].contains(w)
        })
        .map(str::to_string)
        .collect();
    // The JSON output's timestamp is the sink's, not the record's.
    let written: BTreeSet<String> = samples()
        .iter()
        .flat_map(|r| r.fields.iter().map(|(n, _)| n.to_string()))
        .chain([field::TIMESTAMP.to_string()])
        .collect();
    assert_eq!(
        documented.difference(&written).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but never written"
    );
    assert_eq!(
        written.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "written but not documented"
    );
    for k in Kind::ALL {
        assert!(
            doc.contains(&format!("## `{}`", k.name())),
            "docs/records.md has no section for {}",
            k.name()
        );
        assert!(
            doc.contains(k.message_id()),
            "docs/records.md lacks the MESSAGE_ID of {}",
            k.name()
        );
    }
}

/// One record of every kind and scope, for tests that check names and docs.
pub fn samples() -> Vec<Record> {
    use netio_probes::{Backend, Disabled, Prog};

    let t = TrafficFields {
        target: "db",
        sent: 10,
        received: 20,
        interval_ms: 1000,
        backend: "tracepoint",
    };
    let th = ThresholdFields {
        target: "db",
        peer: Some("other".into()),
        folded_peers: Some(3),
        direction: "sent",
        rate: 5,
        threshold: 4,
        sustain_ms: 3000,
        duration_ms: 3000,
        breach_ms: 3000,
        scale: crate::human::Scale::BINARY,
    };
    vec![
        Record::started(&Started {
            version: "v",
            kernel: "k",
            report: &BackendReport {
                backend: Backend::Tracepoint,
                programs: vec![Prog::TpSockSendLength],
                drain_iterator: None,
                optional: Vec::new(),
                notes: Vec::new(),
                failed: Vec::new(),
                hash_path: None,
            },
            passed_over: &[Attempt {
                backend: Backend::Fentry,
                result: Err(Disabled {
                    by: "X=fentry".into(),
                }
                .into()),
            }],
            targets: &["db".into()],
            processes: 1,
            adoption: &crate::monitor::Adoption {
                pinning: "pinned",
                ..Default::default()
            },
        }),
        Record::target_traffic(&t, 2, 1),
        Record::process_traffic(&t, &postgres()),
        Record::peer_traffic(&t, &postgres(), "::1"),
        Record::peer_traffic(
            &t,
            &postgres(),
            Peer {
                address: "unix:pid=4242,uid=33",
                transport: Some("unix"),
                process: Some(PeerProcess {
                    pid: 4242,
                    uid: Some(33),
                    comm: Some("php-fpm"),
                }),
            },
        ),
        Record::moved_traffic(
            &t,
            &Who {
                pid: 9,
                comm: "helper",
                uid: Some(65534),
                exe: Some("/usr/bin/helper"),
            },
            7,
            Some("::1"),
        ),
        Record::threshold(Kind::ThresholdExceeded, &th),
        Record::threshold(Kind::ThresholdReminder, &th),
        Record::threshold(Kind::ThresholdRecovered, &th),
        Record::process_appeared("db", &postgres(), 1),
        Record::process_exited("db", &postgres(), 1, 2),
        Record::processes_changed("db", 3, 2, 1000),
        Record::target_peer_traffic(&t, "::1"),
        Record::other_processes_traffic(&t, 4),
        Record::config_reloaded(&Reloaded {
            config: "/etc/netio/netio.conf",
            added: &["redis".into()],
            removed: &[],
            matching: &[],
            thresholds: &[],
            interval_ms: None,
            detail: "",
        }),
        Record::config_rejected("/etc/netio/netio.conf", "line 1: bad"),
        Record::degraded("r", 1, Some(2), "x"),
        Record::degraded_for("target_fallback", "db", 1, Some((2, 3)), "x"),
        Record::stopping("v"),
    ]
}
