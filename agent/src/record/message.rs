//! How `MESSAGE` is composed: netio's own words, then `key=value` pairs
//! whose numbers are bare and whose strings are always quoted by `quote`,
//! so that no value, whatever bytes a process name holds, can pose as one
//! of netio's keys (docs/records.md, "How MESSAGE is written"). Also
//! `printable`, which the text and syslog outputs put every summary through.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters written as an escape rather than raw: the control
/// characters (C0, DEL, C1), and those that break or reorder a line on
/// screen without being controls (line and paragraph separators, bidi
/// overrides and isolates, the byte order mark), and U+FFFD, which stands
/// for bytes that were not UTF-8.
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fffd}'
        )
}

/// Writes `c` as a JSON string escape.
fn escape(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
    }
}

/// Appends `value` as a quoted MESSAGE value, the one rule for every
/// string in MESSAGE: a JSON string literal in which `"` is `\u0022`, `\`
/// is `\u005c`, every character `must_escape` names is `\n`, `\r`, `\t` or
/// `\uXXXX`, and everything else is itself. No `"` ever falls inside the
/// quotes, and no `\` that does not start an escape, so parsers that
/// decode escapes and parsers that only cut at the next quote find the
/// same end of the value.
pub fn quote(value: &str, out: &mut String) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' || must_escape(c) {
            escape(c, out);
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

/// `text` with every character `must_escape` names escaped as `quote`
/// would: what the text output and syslog messages carry, so that no
/// control character reaches them raw even from a summary composed
/// elsewhere. A MESSAGE composed here passes through unchanged.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(must_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if must_escape(c) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A MESSAGE being composed, one space between its parts.
#[derive(Default)]
pub struct Message(String);

impl Message {
    /// A MESSAGE that opens with netio's own `words`.
    pub fn new(words: &'static str) -> Self {
        Message(words.into())
    }

    fn space(&mut self) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
    }

    /// netio's own words (`process exited:`): constants, never a value.
    pub fn words(mut self, words: &'static str) -> Self {
        self.space();
        self.0.push_str(words);
        self
    }

    /// netio's own words composed with numbers (human.rs): "sent 25.9 MiB
    /// (2.6 MiB/s)". Never a value: nothing in it can pose as `key=`.
    pub fn phrase(mut self, words: &str) -> Self {
        debug_assert!(
            !words.contains(['=', '"', '\\']) && !words.chars().any(must_escape),
            "{words:?}"
        );
        self.space();
        self.0.push_str(words);
        self
    }

    /// A word of netio's that is not a literal (its version): as itself when
    /// it is one plain token, quoted otherwise.
    pub fn token(mut self, token: &str) -> Self {
        self.space();
        let plain = !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"=\"\\".contains(&b));
        if plain {
            self.0.push_str(token);
        } else {
            quote(token, &mut self.0);
        }
        self
    }

    /// `key="value"`, the value quoted.
    pub fn str(mut self, key: &'static str, value: &str) -> Self {
        self.space();
        self.0.push_str(key);
        self.0.push('=');
        quote(value, &mut self.0);
        self
    }

    /// `key=123`.
    pub fn num(mut self, key: &'static str, value: u64) -> Self {
        self.space();
        let _ = write!(self.0, "{key}={value}");
        self
    }

    /// `key="value"` when there is a value.
    pub fn opt_str(self, key: &'static str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    /// `peer="..."` when there is a peer; a loopback client's PID after it
    /// (`peer_pid=...`: its address is every local client's, a Unix peer's
    /// holds the PID); and a peer process's name (`peer_comm="..."`), while
    /// it is known.
    pub fn opt_peer(self, peer: Option<&super::Peer<'_>>) -> Self {
        let Some(p) = peer else {
            return self;
        };
        let comm = p.process.and_then(|u| u.comm);
        let local_pid = p
            .process
            .filter(|_| p.transport == Some("tcp"))
            .map(|u| u64::from(u.pid));
        self.str("peer", p.address)
            .opt_num("peer_pid", local_pid)
            .opt_str("peer_comm", comm)
    }

    /// `key=123` when there is a number.
    pub fn opt_num(self, key: &'static str, value: Option<u64>) -> Self {
        match value {
            Some(v) => self.num(key, v),
            None => self,
        }
    }

    pub fn done(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{
        field, Kind, Record, Reloaded, Started, ThresholdFields, TrafficFields, Value, Who,
    };
    use netio_probes::{Attempt, Backend, BackendReport, Disabled, Prog};

    fn quoted(s: &str) -> String {
        let mut out = String::new();
        quote(s, &mut out);
        out
    }

    #[test]
    fn quoted_values_are_json_strings_that_decode_to_the_value() {
        let lossy = String::from_utf8_lossy(b"\xff\xfe").into_owned();
        for v in [
            "postgres",
            "",
            "x sent=0 rcv=0",
            "a\"b\\c",
            "\\\"",
            "two\nlines\r\t",
            "\x1b[2Jclear",
            "\x00\x07\x7f\u{85}\u{9b}",
            "\u{2028}\u{202e}\u{2066}\u{feff}",
            &lossy,
            "mañana 数据库",
        ] {
            let q = quoted(v);
            let back: String = serde_json::from_str(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(back, v, "{q}");
            assert!(!q.chars().any(must_escape), "{q:?} has a raw escape");
            let inner = &q[1..q.len() - 1];
            assert!(!inner.contains('"'), "{q}: a quote inside");
            assert!(
                inner
                    .match_indices('\\')
                    .all(|(i, _)| matches!(inner.as_bytes()[i + 1], b'n' | b'r' | b't' | b'u')),
                "{q}: a backslash that starts no escape"
            );
        }
    }

    #[test]
    fn escapes_are_the_documented_ones() {
        assert_eq!(quoted("a b"), r#""a b""#);
        assert_eq!(quoted("a\"b\\"), r#""a\u0022b\u005c""#);
        assert_eq!(quoted("\n\r\t"), r#""\n\r\t""#);
        assert_eq!(quoted("\x1b\x7f\u{9b}"), r#""\u001b\u007f\u009b""#);
        assert_eq!(quoted("\u{202e}"), r#""\u202e""#);
        let lossy = String::from_utf8_lossy(b"\xff\xfe").into_owned();
        assert_eq!(quoted(&lossy), r#""\ufffd\ufffd""#);
        assert_eq!(quoted("é"), "\"é\"");
    }

    #[test]
    fn printable_escapes_controls_and_leaves_the_rest() {
        assert!(matches!(printable("db sent=1"), Cow::Borrowed(_)));
        assert_eq!(printable("a\x1b[2K\r\nb \"q\""), "a\\u001b[2K\\r\\nb \"q\"");
    }

    #[test]
    fn tokens_stay_plain_unless_they_could_pass_for_something_else() {
        let m = Message::new("netio")
            .token("1.2.3")
            .token("1 x=2")
            .words("started:")
            .str("k", "v w")
            .num("n", 4)
            .opt_str("absent", None)
            .opt_num("m", Some(5))
            .done();
        assert_eq!(m, r#"netio 1.2.3 "1 x=2" started: k="v w" n=4 m=5"#);
    }

    /// What a quote-aware (logfmt-style) parser reads in a MESSAGE.
    #[derive(Debug, Clone, PartialEq)]
    enum Part {
        Word(String),
        Num(&'static str, u64),
        Str(&'static str, String),
        /// A key that is not netio's, or a number that does not parse.
        Other(String, String),
    }

    const KEYS: [&str; 36] = [
        "target",
        "pid",
        "ppid",
        "comm",
        "uid",
        "exe",
        "peer",
        "sent",
        "received",
        "sent_per_sec",
        "received_per_sec",
        "processes",
        "interval_ms",
        "backend",
        "kernel",
        "targets",
        "passed_over",
        "direction",
        "rate",
        "threshold",
        "duration_ms",
        "config",
        "detail",
        "reason",
        "count",
        "lost_bytes",
        "socket_owner_pid",
        "peers",
        "breach_ms",
        "targets_added",
        "targets_removed",
        "targets_rematched",
        "thresholds_changed",
        "pinning",
        "adopted",
        "gap_ms",
    ];

    /// Splits on spaces outside quotes; `key=value` with a bare value (a
    /// number) or a quoted one (decoded as a JSON string); other tokens are
    /// words.
    fn parse(m: &str) -> Vec<Part> {
        let mut parts = Vec::new();
        let mut rest = m;
        while let Some(start) = rest.find(|c| c != ' ') {
            rest = &rest[start..];
            let end = rest.find([' ', '=']).unwrap_or(rest.len());
            assert!(!rest[..end].contains('"'), "a quote outside a value: {m:?}");
            if !rest[end..].starts_with('=') {
                parts.push(Part::Word(rest[..end].to_string()));
                rest = &rest[end..];
                continue;
            }
            let key = &rest[..end];
            let value = &rest[end + 1..];
            let known = KEYS.iter().find(|k| **k == key).copied();
            if let Some(body) = value.strip_prefix('"') {
                let mut close = None;
                let mut escaped = false;
                for (i, c) in body.char_indices() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            close = Some(i);
                            break;
                        }
                        _ => escaped = false,
                    }
                }
                let close = close.unwrap_or_else(|| panic!("unterminated quote: {m:?}"));
                let literal = &value[..close + 2];
                let text: String = serde_json::from_str(literal)
                    .unwrap_or_else(|e| panic!("{literal} in {m:?}: {e}"));
                parts.push(match known {
                    Some(k) => Part::Str(k, text),
                    None => Part::Other(key.into(), text),
                });
                rest = &value[close + 2..];
            } else {
                let end = value.find(' ').unwrap_or(value.len());
                let v = &value[..end];
                parts.push(match (known, v.parse()) {
                    (Some(k), Ok(n)) => Part::Num(k, n),
                    _ => Part::Other(key.into(), v.into()),
                });
                rest = &value[end..];
            }
        }
        parts
    }

    /// What the regex `([a-z_]+)=("[^"]*"|[^ ]+)`, applied left to right,
    /// finds: a parser that knows quotes but no escapes (docs/siem.md).
    fn regex_pairs(m: &str) -> Vec<(String, String)> {
        let b = m.as_bytes();
        let mut pairs = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let key_end = (i..b.len())
                .find(|&j| !(b[j].is_ascii_lowercase() || b[j] == b'_'))
                .unwrap_or(b.len());
            if key_end == i || b.get(key_end) != Some(&b'=') {
                i += 1;
                continue;
            }
            let v = key_end + 1;
            let close = (b.get(v) == Some(&b'"'))
                .then(|| m[v + 1..].find('"').map(|c| v + 1 + c + 1))
                .flatten();
            let end = close.unwrap_or_else(|| m[v..].find(' ').map_or(b.len(), |e| v + e));
            if end == v {
                i += 1;
                continue;
            }
            pairs.push((m[i..key_end].to_string(), m[v..end].to_string()));
            i = end;
        }
        pairs
    }

    fn w(words: &str) -> Vec<Part> {
        words.split(' ').map(|s| Part::Word(s.into())).collect()
    }

    fn s(key: &'static str, v: &str) -> Vec<Part> {
        vec![Part::Str(key, v.into())]
    }

    fn n(key: &'static str, v: u64) -> Vec<Part> {
        vec![Part::Num(key, v)]
    }

    fn message(r: &Record) -> String {
        match r.get(field::MESSAGE) {
            Some(Value::Str(m)) => m.clone(),
            other => panic!("MESSAGE is {other:?}"),
        }
    }

    /// Names a local user can give a process (and, for the other strings,
    /// what a config or an error could hold).
    fn hostile() -> Vec<String> {
        let mut names: Vec<String> = [
            "x sent=0 rcv=0",
            "sent=0",
            "comm=x",
            "a b",
            "=",
            "\"",
            "\" sent=0 \"",
            "x\\\" sent=0 \\\"",
            "\\",
            "back\\slash",
            "two\nlines sent=0",
            "\x1b[2K\rsent=0",
            "\x1b]0;title\x07",
            "\u{202e}0=tnes",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        names.push(String::from_utf8_lossy(b"\xff\xfe").into_owned());
        names
    }

    #[test]
    fn a_hostile_value_never_yields_a_key_or_number_of_its_own() {
        for h in hostile() {
            let h = h.as_str();
            let t = TrafficFields {
                target: h,
                sent: 10,
                received: 20,
                interval_ms: 1000,
                backend: h,
            };
            let th = ThresholdFields {
                target: h,
                peer: Some(h.into()),
                folded_peers: None,
                direction: "received",
                rate: 5,
                threshold: 4,
                sustain_ms: 3000,
                duration_ms: 6000,
                breach_ms: 9000,
                scale: crate::human::Scale::BINARY,
            };
            let names = [h.to_string(), h.to_string()];
            let reloaded = Reloaded {
                config: h,
                added: &names,
                removed: &names[..1],
                matching: &[],
                thresholds: &names[..1],
                interval_ms: Some(5000),
                detail: h,
            };
            // The backend's name is netio's own; what a failed backend
            // says can carry any text.
            let report = BackendReport {
                backend: Backend::Tracepoint,
                programs: vec![Prog::TpSockSendLength],
                drain_iterator: None,
                optional: Vec::new(),
                notes: Vec::new(),
                failed: Vec::new(),
                hash_path: None,
            };
            let passed_over = [Attempt {
                backend: Backend::Fentry,
                result: Err(Disabled { by: h.to_string() }.into()),
            }];
            // An empty detail is left out.
            let detail = if h.is_empty() { vec![] } else { s("detail", h) };
            // A hostile name and a hostile executable's path.
            let who = Who {
                pid: 7,
                comm: h,
                uid: Some(65534),
                exe: Some(h),
            };
            let named = |mut v: Vec<Part>| {
                v.extend(
                    [s("comm", h), n("uid", 65534), s("exe", h)]
                        .into_iter()
                        .flatten(),
                );
                v
            };
            let cases: Vec<(Record, Vec<Vec<Part>>)> = vec![
                (
                    Record::process_traffic(&t, &who),
                    vec![
                        s("target", h),
                        n("pid", 7),
                        named(vec![]),
                        w("sent 10 B (10 B/s) and received 20 B (20 B/s) in 1 s:"),
                        n("sent", 10),
                        n("received", 20),
                        n("interval_ms", 1000),
                    ],
                ),
                (
                    Record::target_traffic(&t, 2, 1),
                    vec![
                        s("target", h),
                        w("sent 10 B (10 B/s) and received 20 B (20 B/s) in 1 s, 2 processes, 1 peer:"),
                        n("sent", 10),
                        n("received", 20),
                        n("sent_per_sec", 10),
                        n("received_per_sec", 20),
                        n("processes", 2),
                        n("peers", 1),
                        n("interval_ms", 1000),
                    ],
                ),
                (
                    Record::target_traffic(
                        &TrafficFields {
                            sent: 0,
                            received: 0,
                            ..t
                        },
                        0,
                        0,
                    ),
                    vec![
                        s("target", h),
                        w("not running (no process):"),
                        n("sent", 0),
                        n("received", 0),
                        n("sent_per_sec", 0),
                        n("received_per_sec", 0),
                        n("processes", 0),
                        n("peers", 0),
                        n("interval_ms", 1000),
                    ],
                ),
                (
                    Record::peer_traffic(&t, &who, h),
                    vec![
                        s("target", h),
                        n("pid", 7),
                        named(vec![]),
                        s("peer", h),
                        w("sent 10 B (10 B/s) and received 20 B (20 B/s) in 1 s:"),
                        n("sent", 10),
                        n("received", 20),
                        n("interval_ms", 1000),
                    ],
                ),
                (
                    Record::threshold(Kind::ThresholdReminder, &th),
                    vec![
                        s("target", h),
                        w("rate threshold still exceeded: received 5 B/s > 4 B/s for 6 s, in a breach of 9 s so far:"),
                        s("peer", h),
                        s("direction", "received"),
                        n("rate", 5),
                        n("threshold", 4),
                        n("duration_ms", 6000),
                        n("breach_ms", 9000),
                    ],
                ),
                (
                    Record::threshold(Kind::ThresholdRecovered, &th),
                    vec![
                        s("target", h),
                        w("rate threshold recovered: received 5 B/s, at or below 4 B/s for 6 s, after a breach of 9 s:"),
                        s("peer", h),
                        s("direction", "received"),
                        n("rate", 5),
                        n("threshold", 4),
                        n("duration_ms", 6000),
                        n("breach_ms", 9000),
                    ],
                ),
                (
                    Record::process_appeared(h, &who, 1),
                    vec![
                        s("target", h),
                        w("process appeared:"),
                        n("pid", 7),
                        named(n("ppid", 1)),
                    ],
                ),
                (
                    Record::process_exited(h, &who, 1, 2),
                    vec![
                        s("target", h),
                        w("process exited after sending 1 B and receiving 2 B:"),
                        n("pid", 7),
                        named(vec![]),
                        n("sent", 1),
                        n("received", 2),
                    ],
                ),
                (
                    Record::started(&Started {
                        version: "1.0",
                        kernel: h,
                        report: &report,
                        passed_over: &passed_over,
                        targets: &[h.into()],
                        processes: 3,
                        adoption: &crate::monitor::Adoption {
                            pinning: "adopted",
                            adopted_version: "0.9".into(),
                            gap_ms: 5,
                            ..Default::default()
                        },
                    }),
                    vec![
                        w("netio 1.0 started:"),
                        s("backend", "tracepoint"),
                        s("kernel", h),
                        s("targets", h),
                        n("processes", 3),
                        s(
                            "passed_over",
                            &format!("fentry: disabled by {h} (a testing knob)"),
                        ),
                        s("pinning", "adopted"),
                        s("adopted", "0.9"),
                        n("gap_ms", 5),
                    ],
                ),
                (
                    Record::config_reloaded(&reloaded),
                    vec![
                        w("configuration reloaded:"),
                        s("config", h),
                        w("2 targets added, 1 target removed, thresholds changed for 1 target, interval now 5 s:"),
                        s("targets_added", &format!("{h},{h}")),
                        s("targets_removed", h),
                        s("thresholds_changed", h),
                        detail.clone(),
                    ],
                ),
                (
                    Record::config_rejected(h, h),
                    vec![
                        w("configuration reload refused, the previous configuration stays in force:"),
                        s("reason", h),
                    ],
                ),
                (
                    Record::degraded(h, 3, Some(4), h),
                    vec![
                        w("netio degraded:"),
                        s("reason", h),
                        n("count", 3),
                        n("lost_bytes", 4),
                        detail,
                    ],
                ),
            ];
            for (record, want) in cases {
                let m = message(&record);
                let want: Vec<Part> = want.into_iter().flatten().collect();
                let naive: Vec<(String, String)> = want
                    .iter()
                    .filter_map(|p| match p {
                        Part::Num(k, n) => Some((k.to_string(), n.to_string())),
                        Part::Str(k, _) => Some((k.to_string(), String::new())),
                        _ => None,
                    })
                    .collect();
                let found: Vec<(String, String)> = regex_pairs(&m)
                    .into_iter()
                    .map(|(k, v)| {
                        if v.starts_with('"') {
                            (k, String::new())
                        } else {
                            (k, v)
                        }
                    })
                    .collect();
                assert_eq!(found, naive, "regex on {:?} with {h:?}: {m}", record.kind());
                assert_eq!(parse(&m), want, "{:?} with {h:?}: {m}", record.kind());
                assert!(!m.chars().any(must_escape), "a raw escape in {m:?}");
                assert!(matches!(printable(&m), Cow::Borrowed(_)), "{m:?}");
            }
        }
    }

    #[test]
    fn structured_fields_keep_the_real_value() {
        let lossy = String::from_utf8_lossy(b"\xff\xfe").into_owned();
        let name = format!("x\x1b[2K\n\"{lossy}");
        let t = TrafficFields {
            target: "db",
            sent: 1,
            received: 2,
            interval_ms: 1000,
            backend: "kprobe",
        };
        let exe = format!("/tmp/{name}");
        let who = Who {
            pid: 7,
            comm: &name,
            uid: Some(0),
            exe: Some(&exe),
        };
        let r = Record::process_traffic(&t, &who);
        assert_eq!(r.get(field::COMM), Some(&Value::Str(name.clone())));
        assert_eq!(r.get(field::EXE), Some(&Value::Str(exe.clone())));
        assert_eq!(r.get(field::UID), Some(&Value::Num(0)));
        assert!(message(&r).contains(r#"comm="x\u001b[2K\n\u0022\ufffd\ufffd""#));
        assert!(message(&r).contains(r#"uid=0 exe="/tmp/x\u001b[2K\n\u0022\ufffd\ufffd""#));
    }
}
