//! What `netio top` shows, from two snapshots: each target's rates (the
//! difference of the two over the time between their kernel reads) and
//! totals, its processes and clients, sorted by the direction asked for,
//! and the thresholds' state; and the same as plain text for `--once` and
//! `--batch`. No terminal here: plain data, unit-tested.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use crate::human::{self, Scale};
use crate::record::printable;
use crate::snapshot::{self, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Sent,
    Received,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Sent => "sent",
            Sort::Received => "received",
        }
    }
}

/// How a row stands against its thresholds, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Alarm {
    Breach,
    Above,
    Recovering,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub label: String,
    /// Bytes per second; None without an earlier snapshot to compare.
    pub sent_rate: Option<u64>,
    pub received_rate: Option<u64>,
    pub sent: u64,
    pub received: u64,
    /// "BREACH ↑" and the like: the worst state, and its direction (`*`
    /// for a client's, on its target's row).
    pub state: String,
    pub alarm: Option<Alarm>,
}

impl Row {
    fn key(&self, sort: Sort) -> (u64, u64) {
        match sort {
            Sort::Sent => (self.sent_rate.unwrap_or(0), self.sent),
            Sort::Received => (self.received_rate.unwrap_or(0), self.received),
        }
    }
}

/// A target, with its processes and clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRows {
    pub name: String,
    pub row: Row,
    pub procs: Vec<Row>,
    pub peers: Vec<Row>,
    /// "3 more processes", for what the service left out.
    pub omitted: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Backend, pinning, interval, time of the read.
    pub status: String,
    /// None when nothing is degraded.
    pub degraded: Option<String>,
    pub sort: Sort,
    pub targets: Vec<TargetRows>,
}

/// The rate of a count that was `before` `ms` milliseconds ago.
fn rate(now: u64, before: Option<u64>, ms: Option<u64>) -> Option<u64> {
    let (before, ms) = (before?, ms?);
    Some(crate::interval::per_second(now.saturating_sub(before), ms))
}

/// The table of `cur`, with rates against `prev` (the snapshot before).
pub fn build(prev: Option<&Snapshot>, cur: &Snapshot, sort: Sort) -> Table {
    // A service that restarted in between counts from zero again.
    let prev = prev.filter(|p| p.pid == cur.pid && p.uptime_ms < cur.uptime_ms);
    let ms = prev.map(|p| cur.uptime_ms - p.uptime_ms);
    let mut targets = Vec::new();
    for t in &cur.targets {
        let before = prev.and_then(|p| p.targets.iter().find(|b| b.name == t.name));
        let states = states(&t.thresholds);
        let mut row = Row {
            label: t.name.clone(),
            sent_rate: rate(t.sent, before.map(|b| b.sent), ms),
            received_rate: rate(t.received, before.map(|b| b.received), ms),
            sent: t.sent,
            received: t.received,
            state: String::new(),
            alarm: None,
        };
        set_state(&mut row, states.get(&None));
        // A client's alarm shows on the target too, when it is worse.
        let worst_peer = states
            .iter()
            .filter(|(p, _)| p.is_some())
            .min_by_key(|s| s.1 .0);
        if let Some((_, (a, _))) = worst_peer {
            let worse = match row.alarm {
                None => true,
                Some(own) => *a < own,
            };
            if worse {
                set_state(&mut row, worst_peer.map(|w| w.1));
                // `*`: a client's threshold, not the target's own.
                row.state = format!("{} *", alarm_word(*a));
            }
        }

        // A row missing before had nothing then, unless the service left
        // rows out of that snapshot: then its rate is unknown.
        let procs_before: Option<HashMap<(u32, u32), &snapshot::Proc>> = before
            .filter(|b| b.procs_omitted == 0)
            .map(|b| b.procs.iter().map(|p| ((p.pid, p.gen), p)).collect());
        let mut procs: Vec<Row> = t
            .procs
            .iter()
            .map(|p| {
                let b = procs_before.as_ref().map(|m| m.get(&(p.pid, p.gen)));
                Row {
                    // Names are any process's choice: escaped, as the
                    // records escape them, before they reach a terminal.
                    label: format!("{} {}", p.pid, printable(&p.comm)),
                    sent_rate: rate(p.sent, b.map(|b| b.map_or(0, |b| b.sent)), ms),
                    received_rate: rate(p.received, b.map(|b| b.map_or(0, |b| b.received)), ms),
                    sent: p.sent,
                    received: p.received,
                    state: String::new(),
                    alarm: None,
                }
            })
            .collect();
        let peers_before: Option<HashMap<&str, &snapshot::Peer>> = before
            .filter(|b| b.peers_omitted == 0)
            .map(|b| b.peers.iter().map(|p| (p.addr.as_str(), p)).collect());
        let mut peers: Vec<Row> = t
            .peers
            .iter()
            .map(|p| {
                let b = peers_before.as_ref().map(|m| m.get(p.addr.as_str()));
                let mut row = Row {
                    label: match &p.comm {
                        Some(comm) => format!("client {} ({})", p.addr, printable(comm)),
                        None => format!("client {}", p.addr),
                    },
                    sent_rate: rate(p.sent, b.map(|b| b.map_or(0, |b| b.sent)), ms),
                    received_rate: rate(p.received, b.map(|b| b.map_or(0, |b| b.received)), ms),
                    sent: p.sent,
                    received: p.received,
                    state: String::new(),
                    alarm: None,
                };
                set_state(&mut row, states.get(&Some(p.addr.clone())));
                row
            })
            .collect();
        sort_rows(&mut procs, sort);
        sort_rows(&mut peers, sort);
        let omitted = match (t.procs_omitted, t.peers_omitted) {
            (0, 0) => None,
            (a, b) => Some(format!(
                "{} and {} not shown",
                human::count(a, "process", "processes"),
                human::count(b, "client", "clients")
            )),
        };
        targets.push(TargetRows {
            name: t.name.clone(),
            row,
            procs,
            peers,
            omitted,
        });
    }
    targets.sort_by_key(|t| std::cmp::Reverse(t.row.key(sort)));
    Table {
        status: status(cur),
        degraded: degraded(cur),
        sort,
        targets,
    }
}

fn sort_rows(rows: &mut [Row], sort: Sort) {
    rows.sort_by_key(|r| std::cmp::Reverse(r.key(sort)));
}

/// Each watched row's worst state and its direction: None is the target's
/// own, Some the peer's address.
fn states(th: &[snapshot::Threshold]) -> HashMap<Option<String>, (Alarm, &'static str)> {
    let mut out: HashMap<Option<String>, (Alarm, &'static str)> = HashMap::new();
    for t in th {
        let alarm = match t.state.as_str() {
            "breach" => Alarm::Breach,
            "above" => Alarm::Above,
            "recovering" => Alarm::Recovering,
            _ => continue,
        };
        let arrow = if t.direction == "sent" { "↑" } else { "↓" };
        let e = out.entry(t.peer.clone()).or_insert((alarm, arrow));
        if alarm < e.0 {
            *e = (alarm, arrow);
        } else if alarm == e.0 && e.1 != arrow {
            e.1 = "↕";
        }
    }
    out
}

fn alarm_word(a: Alarm) -> &'static str {
    match a {
        Alarm::Breach => "BREACH",
        Alarm::Above => "above",
        Alarm::Recovering => "recover",
    }
}

fn set_state(row: &mut Row, s: Option<&(Alarm, &'static str)>) {
    if let Some(&(alarm, arrow)) = s {
        row.alarm = Some(alarm);
        row.state = format!("{} {arrow}", alarm_word(alarm));
    }
}

fn status(s: &Snapshot) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(s.taken_ms);
    format!(
        "netio {} (pid {}) · {} backend · pins {} · every {} · up {} · {}",
        s.netio,
        s.pid,
        s.backend,
        s.pinning,
        human::duration_ms(s.interval_ms),
        human::duration_ms(s.uptime_ms),
        humantime::format_rfc3339_seconds(at)
    )
}

fn degraded(s: &Snapshot) -> Option<String> {
    if s.degraded.is_empty() {
        return None;
    }
    let parts: Vec<String> = s
        .degraded
        .iter()
        .map(|d| match d.count {
            0 | 1 => format!("{}: {}", d.reason, d.detail),
            n => format!("{} ×{n}: {}", d.reason, d.detail),
        })
        .collect();
    Some(format!("degraded: {}", parts.join("; ")))
}

/// A rate for the table: "-" without one.
pub fn show_rate(r: Option<u64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| human::rate(r, Scale::BINARY))
}

/// The whole table as plain text, every target expanded: for `--once`
/// and `--batch`. Totals are exact byte counts, for scripts to compare.
pub fn plain(t: &Table) -> String {
    let mut out = format!("{}\n", t.status);
    out.push_str(t.degraded.as_deref().unwrap_or("degraded: no"));
    out.push('\n');
    // As wide as the widest label (a local client's `client 127.0.0.1
    // pid=4242 (redis-cli)`), so the numbers stay in their columns.
    let w = t
        .targets
        .iter()
        .flat_map(|target| {
            let inner = target.procs.iter().chain(&target.peers);
            std::iter::once(target.row.label.chars().count())
                .chain(inner.map(|r| r.label.chars().count() + 2))
        })
        .fold(32, usize::max);
    out.push_str(&format!(
        "{:<w$} {:>12} {:>12} {:>14} {:>14}  STATE   (sorted by {})\n",
        "TARGET / PROCESS / CLIENT",
        "SENT/s",
        "RECEIVED/s",
        "SENT",
        "RECEIVED",
        t.sort.name()
    ));
    let line = |out: &mut String, indent: &str, r: &Row| {
        out.push_str(&format!(
            "{:<w$} {:>12} {:>12} {:>14} {:>14}  {}\n",
            format!("{indent}{}", r.label),
            show_rate(r.sent_rate),
            show_rate(r.received_rate),
            r.sent,
            r.received,
            r.state
        ));
    };
    for target in &t.targets {
        line(&mut out, "", &target.row);
        for r in target.procs.iter().chain(&target.peers) {
            line(&mut out, "  ", r);
        }
        if let Some(o) = &target.omitted {
            out.push_str(&format!("  ({o})\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Peer, Proc, Target, Threshold};

    fn snap(uptime_ms: u64, sent: u64, peer_received: u64) -> Snapshot {
        Snapshot {
            pid: 9,
            uptime_ms,
            targets: vec![
                Target {
                    name: "quiet".into(),
                    ..Target::default()
                },
                Target {
                    name: "db".into(),
                    sent,
                    received: peer_received,
                    procs: vec![Proc {
                        pid: 42,
                        gen: 1,
                        comm: "postgres\u{1b}]0;x\u{7}".into(),
                        sent,
                        received: peer_received,
                    }],
                    peers: vec![
                        Peer {
                            addr: "10.0.0.7".into(),
                            comm: None,
                            sent,
                            received: 0,
                        },
                        Peer {
                            addr: "unix:pid=7,uid=33".into(),
                            comm: Some("php\u{1b}[2Jfpm".into()),
                            sent: 0,
                            received: peer_received,
                        },
                    ],
                    ..Target::default()
                },
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn rates_are_the_growth_over_the_time_between_the_reads() {
        let t = build(
            Some(&snap(1000, 100, 0)),
            &snap(3000, 4100, 600),
            Sort::Sent,
        );
        let db = &t.targets[0];
        assert_eq!(db.name, "db", "the busiest first");
        assert_eq!(
            (db.row.sent_rate, db.row.received_rate),
            (Some(2000), Some(300))
        );
        assert_eq!(
            db.procs[0].label, "42 postgres\\u001b]0;x\\u0007",
            "a process's name escaped"
        );
        assert_eq!(db.procs[0].sent_rate, Some(2000));
        assert_eq!(db.peers[0].label, "client 10.0.0.7");
        let by_received = build(
            Some(&snap(1000, 100, 0)),
            &snap(3000, 4100, 600),
            Sort::Received,
        );
        assert_eq!(
            by_received.targets[0].peers[0].label, "client unix:pid=7,uid=33 (php\\u001b[2Jfpm)",
            "a local client named by its process, escaped"
        );
    }

    #[test]
    fn without_an_earlier_read_or_across_a_restart_there_is_no_rate() {
        let t = build(None, &snap(3000, 4100, 600), Sort::Sent);
        assert_eq!(t.targets[0].row.sent_rate, None);
        let mut other = snap(1000, 100, 0);
        other.pid = 10;
        let t = build(Some(&other), &snap(3000, 4100, 600), Sort::Sent);
        assert_eq!(t.targets[0].row.sent_rate, None);
        assert!(plain(&t).contains("  42 postgres"));
    }

    #[test]
    fn a_breach_is_the_targets_state_and_a_peers_shows_on_both() {
        let mut s = snap(3000, 4100, 600);
        s.targets[1].thresholds = vec![
            Threshold {
                peer: None,
                direction: "sent".into(),
                state: "above".into(),
                limit: 1,
                rate: 2,
            },
            Threshold {
                peer: Some("10.0.0.7".into()),
                direction: "sent".into(),
                state: "breach".into(),
                limit: 1,
                rate: 2,
            },
        ];
        let t = build(None, &s, Sort::Sent);
        let db = &t.targets[0];
        assert_eq!(db.row.alarm, Some(Alarm::Breach));
        assert_eq!(db.row.state, "BREACH *");
        assert_eq!(db.peers[0].state, "BREACH ↑");
        assert_eq!(db.peers[1].alarm, None);
    }

    #[test]
    fn a_loopback_client_is_a_row_of_its_own_with_its_breach_and_its_columns_hold() {
        let mut s = snap(3000, 4100, 600);
        let client = crate::peer_names::distinct(&netio_probes::PeerAddr::Local(
            netio_probes::LocalClient {
                ip: "127.0.0.1".parse().unwrap(),
                pid: 4242,
                started_ns: 1,
            },
        ));
        s.targets[1].peers[0] = Peer {
            addr: client.clone(),
            comm: Some("a-long-client-name".into()),
            sent: 4100,
            received: 0,
        };
        s.targets[1].thresholds = vec![Threshold {
            peer: Some(client),
            direction: "sent".into(),
            state: "breach".into(),
            limit: 1,
            rate: 2,
        }];
        let t = build(None, &s, Sort::Sent);
        let row = &t.targets[0].peers[0];
        assert_eq!(row.label, "client 127.0.0.1 pid=4242 (a-long-client-name)");
        assert_eq!(row.state, "BREACH ↑");
        let text = plain(&t);
        let lines: Vec<&str> = text.lines().skip(2).collect();
        let client_line = lines.iter().find(|l| l.contains("pid=4242")).unwrap();
        // The state column starts where its heading does, past the label.
        assert_eq!(
            lines[0].find("  STATE"),
            client_line.find("  BREACH ↑"),
            "{text}"
        );
    }
}
