//! A report as people read it (a table, sizes in KiB, MiB, ...) and as
//! scripts read it (`--json`: one object, every number a raw integer of
//! bytes or bytes per second, every time RFC 3339 in UTC).

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::aggregate::{Aggregate, By, Key, Row};
use crate::record::printable;
use crate::sink::time::rfc3339_utc;

/// The span the report was asked for; an end not given is the journal's
/// start, or now.
#[derive(Debug, Clone, Default)]
pub struct Span {
    pub since: Option<End>,
    pub until: Option<End>,
}

/// One end of the span: as the operator wrote it, as journalctl is given
/// it, and the time it is when netio knows it (a duration ago).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub written: String,
    pub journalctl: String,
    pub at_us: Option<u64>,
}

/// `1.0 KiB`, `25.9 MiB`: one decimal from KiB up, bytes below.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1023.95 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

pub fn rate(bytes_per_sec: u64) -> String {
    format!("{}/s", size(bytes_per_sec))
}

fn time(us: u64) -> String {
    rfc3339_utc(UNIX_EPOCH + Duration::from_micros(us))
}

/// Seconds are enough on a screen.
fn short_time(us: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

/// A journal value shown on a terminal: its control characters escaped
/// (docs/records.md: fields keep the raw value, displays escape it).
fn shown(s: &str) -> String {
    printable(s).into_owned()
}

/// Columns padded to their widest cell; numbers (`right`) aligned right.
fn table(head: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(width[i] - c.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if right[i] {
                out.push_str(&pad);
                out.push_str(c);
            } else {
                out.push_str(c);
                if i + 1 < cells.len() {
                    out.push_str(&pad);
                }
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let head: Vec<String> = head.iter().map(|h| h.to_string()).collect();
    let mut out = line(&head);
    rows.iter().for_each(|r| out.push_str(&line(r)));
    out
}

/// A row's key as cells; a local client's peer with its process's name.
fn key_cells(by: By, k: &Key, peer_comm: Option<&str>) -> Vec<String> {
    let mut cells = vec![shown(&k.target)];
    match by {
        By::Target => {}
        By::Process => {
            // No PID: the record of the processes past the busiest N.
            cells.push(k.pid.map_or("other".to_string(), |p| p.to_string()));
            cells.push(shown(k.comm.as_deref().unwrap_or_default()));
        }
        By::Peer => {
            let mut peer = shown(k.peer.as_deref().unwrap_or_default());
            match (k.peer_pid, k.peer_uid) {
                (Some(pid), Some(uid)) => peer = format!("{peer} pid={pid},uid={uid}"),
                (Some(pid), None) => peer = format!("{peer} pid={pid}"),
                _ => {}
            }
            cells.push(match peer_comm {
                Some(comm) => format!("{peer} ({})", shown(comm)),
                None => peer,
            });
        }
    }
    cells
}

fn key_head(by: By) -> &'static [&'static str] {
    match by {
        By::Target => &["TARGET"],
        By::Process => &["TARGET", "PID", "PROCESS"],
        By::Peer => &["TARGET", "PEER"],
    }
}

fn span_words(span: &Span) -> String {
    let end = |e: &Option<End>, none: &str| match e {
        Some(End {
            written,
            at_us: Some(at),
            ..
        }) => format!("{written} ago ({})", short_time(*at)),
        Some(e) => e.written.clone(),
        None => none.to_string(),
    };
    format!(
        "since {} until {}",
        end(&span.since, "the journal's start"),
        end(&span.until, "now")
    )
}

/// The table, then breaches and what was lost, for a terminal.
pub fn text(a: &Aggregate, span: &Span) -> String {
    let mut out = format!(
        "netio.service traffic by {}, {}: {} records read",
        a.by.scope(),
        span_words(span),
        a.entries
    );
    if let (Some(f), Some(l)) = (a.first_us, a.last_us) {
        out.push_str(&format!(", {} to {}", short_time(f), short_time(l)));
    }
    out.push_str("\n\n");
    let rows = a.rows();
    if rows.is_empty() {
        out.push_str(&format!("no {} traffic records in the span", a.by.scope()));
        if a.by != By::Target {
            out.push_str(
                " (process and peer records need [records] per_process = true; \
                 peer records also top_peers > 0)",
            );
        }
        out.push('\n');
    } else {
        let head_keys = key_head(a.by);
        let mut head: Vec<&str> = head_keys.to_vec();
        head.extend(["SENT", "RECEIVED", "PEAK SENT", "PEAK RECEIVED", "RECORDS"]);
        let mut right = vec![false; head_keys.len()];
        if a.by == By::Process {
            right[1] = true;
        }
        right.extend([true; 5]);
        let mut cells: Vec<Vec<String>> = rows.iter().map(|(k, r)| row_cells(a.by, k, r)).collect();
        let (sent, received) = a.total();
        let mut total = vec!["total".to_string()];
        total.resize(head_keys.len(), String::new());
        total.extend([
            size(sent),
            size(received),
            String::new(),
            String::new(),
            String::new(),
        ]);
        cells.push(total);
        out.push_str(&table(&head, &right, &cells));
    }
    out.push_str(&breaches_text(a));
    out.push_str(&degraded_text(a));
    out
}

fn row_cells(by: By, k: &Key, r: &Row) -> Vec<String> {
    let mut cells = key_cells(by, k, r.peer_comm.as_deref());
    cells.extend([
        size(r.sent),
        size(r.received),
        rate(r.peak_sent_per_sec),
        rate(r.peak_received_per_sec),
        r.records.to_string(),
    ]);
    cells
}

fn breaches_text(a: &Aggregate) -> String {
    if a.breaches.is_empty() {
        return "\nno threshold breaches in the span\n".into();
    }
    let head = [
        "TARGET",
        "PEER",
        "DIRECTION",
        "EXCEEDED",
        "RECOVERED",
        "PEAK RATE",
        "THRESHOLD",
        "LAST",
        "NOW",
    ];
    let right = [false, false, false, true, true, true, true, false, false];
    let rows: Vec<Vec<String>> = a
        .breaches
        .iter()
        .map(|(k, b)| {
            vec![
                shown(&k.target),
                k.peer.as_deref().map(shown).unwrap_or_else(|| "-".into()),
                shown(&k.direction),
                b.exceeded.to_string(),
                b.recovered.to_string(),
                rate(b.peak_rate),
                rate(b.threshold),
                short_time(b.last_us),
                if b.open { "above" } else { "recovered" }.into(),
            ]
        })
        .collect();
    format!("\nthreshold breaches\n{}", table(&head, &right, &rows))
}

fn degraded_text(a: &Aggregate) -> String {
    let mut out = String::new();
    for (reason, d) in &a.degraded {
        out.push_str(&format!(
            "degraded: {} ({} records, count {})",
            shown(reason),
            d.records,
            d.count
        ));
        match reason.as_str() {
            "bytes_lost" => out.push_str(&format!(
                ": {} not counted, the totals are short by that much",
                size(d.lost_bytes)
            )),
            "journal_unavailable" => out.push_str(
                ": records went to netio's stderr instead of the journal, \
                 the totals miss what they held",
            ),
            _ => {}
        }
        out.push('\n');
    }
    if a.malformed > 0 {
        out.push_str(&format!(
            "{} records of netio.service lacked a field or number and were skipped\n",
            a.malformed
        ));
    }
    if !out.is_empty() {
        out.insert(0, '\n');
    }
    out
}

/// One JSON object for scripts: raw integers, RFC 3339 times.
pub fn json(a: &Aggregate, span: &Span) -> Value {
    let end = |e: &Option<End>| match e {
        Some(End {
            at_us: Some(at), ..
        }) => Value::String(time(*at)),
        Some(e) => Value::String(e.written.clone()),
        None => Value::Null,
    };
    let rows: Vec<Value> = a
        .rows()
        .into_iter()
        .map(|(k, r)| {
            let mut o = Map::new();
            o.insert("target".into(), k.target.clone().into());
            if let Some(p) = k.pid {
                o.insert("pid".into(), p.into());
            }
            if let Some(c) = &k.comm {
                o.insert("comm".into(), c.clone().into());
            }
            if let Some(p) = &k.peer {
                o.insert("peer".into(), p.clone().into());
            }
            if let Some(p) = k.peer_pid {
                o.insert("peer_pid".into(), p.into());
            }
            if let Some(u) = k.peer_uid {
                o.insert("peer_uid".into(), u.into());
            }
            if let Some(c) = &r.peer_comm {
                o.insert("peer_comm".into(), c.clone().into());
            }
            o.insert("sent".into(), r.sent.into());
            o.insert("received".into(), r.received.into());
            o.insert("peak_sent_per_sec".into(), r.peak_sent_per_sec.into());
            o.insert(
                "peak_received_per_sec".into(),
                r.peak_received_per_sec.into(),
            );
            o.insert("records".into(), r.records.into());
            o.insert("first".into(), time(r.first_us).into());
            o.insert("last".into(), time(r.last_us).into());
            Value::Object(o)
        })
        .collect();
    let breaches: Vec<Value> = a
        .breaches
        .iter()
        .map(|(k, b)| {
            json!({
                "target": k.target,
                "peer": k.peer,
                "direction": k.direction,
                "exceeded": b.exceeded,
                "reminders": b.reminders,
                "recovered": b.recovered,
                "peak_rate": b.peak_rate,
                "threshold": b.threshold,
                "first": time(b.first_us),
                "last": time(b.last_us),
                "open": b.open,
            })
        })
        .collect();
    let degraded: Vec<Value> = a
        .degraded
        .iter()
        .map(|(reason, d)| {
            json!({
                "reason": reason,
                "records": d.records,
                "count": d.count,
                "lost_bytes": d.lost_bytes,
            })
        })
        .collect();
    let (sent, received) = a.total();
    json!({
        "by": a.by.scope(),
        "since": end(&span.since),
        "until": end(&span.until),
        "records": a.entries,
        "first": a.first_us.map(time),
        "last": a.last_us.map(time),
        "rows": rows,
        "total": { "sent": sent, "received": received },
        "breaches": breaches,
        "degraded": degraded,
        "skipped": { "untrusted": a.untrusted, "malformed": a.malformed },
    })
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
