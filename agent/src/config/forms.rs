//! How each key is written: the kind of value it takes and the value of
//! its example in docs/config.md (documented.rs holds the two together).
//! An error shows from them the right form of what was written
//! (`interval = "10s"` for `interval = 10`, `process = ["redis-server"]`
//! for `process = "redis-server"`), and a missing key how to add it; and
//! `check-config` prints the rates and durations a file spelt out as it
//! spelt them (`Written`).

use toml_edit::Value;

use super::error::{Found, Step};

/// The kinds of value a key takes, as a message describes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A string with a unit: "10s".
    Duration,
    /// A string, a size per second: "50MiB/s".
    Rate,
    Text,
    /// A list of strings.
    List,
    /// A list of user names and uids.
    Users,
    Flag,
    /// A whole number.
    Count,
    /// A table: `[capacity]`.
    Table,
    /// An array of tables: `[[target]]`.
    Tables,
}

use Kind::*;

/// Every key: the path of its table (arrays of tables without an index),
/// its name, its kind, and the value of its example in docs/config.md (a
/// table's own header for a table).
pub(super) const FORMS: [(&str, &str, Kind, &str); 38] = [
    ("", "interval", Duration, "\"10s\""),
    ("", "backend", Text, "\"tracepoint\""),
    ("", "output", Text, "\"json\""),
    ("", "json_schema", Text, "\"ecs\""),
    ("", "capacity", Table, "[capacity]"),
    ("", "records", Table, "[records]"),
    ("", "target", Tables, "[[target]]"),
    ("", "syslog", Tables, "[[syslog]]"),
    ("capacity", "processes", Count, "8192"),
    ("capacity", "peers", Count, "32768"),
    ("records", "per_process", Flag, "false"),
    ("records", "top_processes", Count, "50"),
    ("records", "top_peers", Count, "3"),
    ("records", "target_peers", Count, "50"),
    ("records", "lifecycle", Text, "\"each\""),
    ("syslog", "transport", Text, "\"tls\""),
    ("syslog", "address", Text, "\"logs.example.net:6514\""),
    ("syslog", "facility", Text, "\"local3\""),
    ("syslog", "app_name", Text, "\"netio-db1\""),
    ("syslog", "queue", Count, "50000"),
    ("syslog", "ca_file", Text, "\"/etc/netio/syslog-ca.pem\""),
    ("syslog", "client_cert", Text, "\"/etc/netio/client.pem\""),
    ("syslog", "client_key", Text, "\"/etc/netio/client.key\""),
    ("target", "name", Text, "\"postgresql\""),
    ("target", "process", List, "[\"postgres\"]"),
    ("target", "unit", Text, "\"postgresql@15-main.service\""),
    (
        "target",
        "cgroup",
        Text,
        "\"/system.slice/postgresql.service\"",
    ),
    ("target", "user", Users, "[\"mysql\"]"),
    ("target", "exe", List, "[\"/usr/sbin/mariadbd\"]"),
    ("target", "lifecycle", Text, "\"each\""),
    ("target", "threshold", Table, "[target.threshold]"),
    ("target.threshold", "sent", Rate, "\"50MiB/s\""),
    ("target.threshold", "received", Rate, "\"50MiB/s\""),
    ("target.threshold", "peer_sent", Rate, "\"20MiB/s\""),
    ("target.threshold", "peer_received", Rate, "\"20MiB/s\""),
    ("target.threshold", "transport", Text, "\"tcp\""),
    ("target.threshold", "for", Duration, "\"1m\""),
    ("target.threshold", "reminder", Duration, "\"1h\""),
];

/// The dotted path of the keys of a way, its indices left out.
fn path(way: &[Step]) -> Vec<&str> {
    way.iter()
        .filter_map(|s| match s {
            Step::Key(k) => Some(k.as_str()),
            Step::Index(_) => None,
        })
        .collect()
}

/// The form of the key a way leads to.
fn form(way: &[Step]) -> Option<&'static (&'static str, &'static str, Kind, &'static str)> {
    let keys = path(way);
    let (key, table) = keys.split_last()?;
    let table = table.join(".");
    FORMS.iter().find(|(t, k, ..)| *t == table && k == key)
}

/// The kind of value of the key a way leads to.
pub(super) fn kind(way: &[Step]) -> Option<Kind> {
    form(way).map(|f| f.2)
}

/// A required key the table (`label`, at `way`; the top level without
/// either) does not have: its name, and how to add it.
pub(super) fn missing(label: Option<&str>, way: &[Step], key: &str) -> String {
    let mut to = way.to_vec();
    to.push(Step::Key(key.to_string()));
    let like = form(&to).map_or(String::new(), |f| format!(", like {key} = {}", f.3));
    match label {
        None => {
            format!("missing key `{key}` at the top level: add it above the first [table]{like}")
        }
        Some(label) => format!("{label}: missing key `{key}`: add it{like}"),
    }
}

/// A value of the wrong type for the key `way` leads to (written `raw`;
/// an `entry` of its list), or out of its type's range: what it is, what
/// the key takes, and the right form: "write" one made of what was
/// written, else "like" the key's example. `None` for a key without one.
pub(super) fn wrong_type(way: &[Step], entry: bool, raw: &str, found: &Found) -> Option<String> {
    let &(_, key, kind, example) = form(way)?;
    let value = match found {
        Found::Value(v) => Some(*v),
        Found::Table => None,
    };
    let is = match value {
        Some(Value::Integer(n)) if kind == Count && *n.value() < 0 => "is negative",
        Some(Value::Integer(_)) if kind == Count => "is too large",
        Some(Value::Integer(_) | Value::Float(_)) => "is a number",
        Some(Value::String(_)) => "is a string",
        Some(Value::Boolean(_)) => "is a boolean",
        Some(Value::Array(_)) => "is a list",
        Some(Value::InlineTable(_)) | None => "is a table",
        Some(Value::Datetime(_)) => "is a date",
    };
    let each = match kind {
        List => Some("a string in quotes"),
        Users => Some("a user name in quotes or a uid"),
        _ => None,
    };
    if let (true, Some(each)) = (entry, each) {
        return Some(format!(
            "{raw} {is}, but each entry of `{key}` is {each}: like {key} = {example}"
        ));
    }
    let takes = match kind {
        Duration => "a duration in quotes, a number and a unit",
        Rate => "a rate in quotes, a size per second",
        Text => "a string in quotes",
        List => "a list of strings in quotes, even of one",
        Users => "a list of user names in quotes and uids, even of one",
        Flag => "true or false, without quotes",
        Count => "a whole number, without quotes",
        Table => {
            return Some(format!(
                "{raw} {is}, but `{key}` is a table: write {example} on a line of its own, \
                 with its keys below it"
            ))
        }
        Tables => {
            return Some(format!(
                "{raw} {is}, but `{key}` is a list of tables: write {example}, in double \
                 brackets, on a line of its own for each, with its keys below it"
            ))
        }
    };
    Some(match value.and_then(|v| made_of(kind, v)) {
        Some(right) => format!("{raw} {is}, but `{key}` takes {takes}: write {key} = {right}"),
        None => format!("{raw} {is}, but `{key}` takes {takes}: like {key} = {example}"),
    })
}

/// The right form of a value of the wrong type, made of what was written
/// where that tells what was meant: 10 for a duration is "10s", a lone
/// string for a list is a list of it.
fn made_of(kind: Kind, v: &Value) -> Option<String> {
    let quoted = |s: &str| Value::from(s).to_string().trim().to_string();
    let number = match v {
        Value::Integer(n) => Some(n.value().to_string()),
        Value::Float(x) => Some(x.value().to_string()),
        _ => None,
    };
    match (kind, v) {
        (Duration, _) => number.map(|n| quoted(&format!("{n}s"))),
        (Rate, Value::Integer(n)) => u64::try_from(*n.value())
            .ok()
            .filter(|&n| n > 0)
            .map(|n| quoted(&super::units::Rate(n, crate::human::Scale::BINARY).to_string())),
        (Text, Value::Array(a)) if a.len() == 1 => a.get(0)?.as_str().map(quoted),
        (List | Users, Value::String(s)) => Some(format!("[{}]", quoted(s.value()))),
        (Users, Value::Integer(n)) => Some(format!("[{}]", n.value())),
        (Flag, Value::String(s)) => match s.value().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some("true".into()),
            "false" | "no" | "off" => Some("false".into()),
            _ => None,
        },
        (Count, Value::String(s)) => {
            let s = s.value().trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_string())
        }
        _ => None,
    }
}

/// The rates and durations a file spelt out, as it spelt them, by their
/// way: `check-config` prints them so, rather than as netio normalises
/// them ("50MB/s", not "50000000B/s"; "90s", not "1m 30s").
#[derive(Debug, Clone, Default)]
pub(super) struct Written(Vec<(Vec<Step>, String)>);

impl Written {
    /// The strings of `doc` that are values of a rate or duration key.
    pub(super) fn of(doc: &toml_edit::ImDocument<&str>) -> Written {
        let mut found = Vec::new();
        let mut way = Vec::new();
        collect(doc.as_item(), &mut way, &mut found);
        Written(found)
    }

    /// What the file wrote at `way`, if it spelt that value out.
    pub(super) fn at(&self, way: &[Step]) -> Option<&str> {
        self.0
            .iter()
            .find(|(w, _)| w.as_slice() == way)
            .map(|(_, s)| s.as_str())
    }

    /// Puts each value as written into `doc`, the config as serialized.
    pub(super) fn restore(&self, doc: &mut toml_edit::DocumentMut) {
        for (way, written) in &self.0 {
            let mut item = Some(doc.as_item_mut());
            for step in way {
                item = item.and_then(|i| match step {
                    Step::Key(k) => i.get_mut(k.as_str()),
                    Step::Index(n) => i.get_mut(*n),
                });
            }
            if let Some(value) = item.and_then(|i| i.as_value_mut()) {
                let decor = value.decor().clone();
                *value = Value::from(written.as_str());
                *value.decor_mut() = decor;
            }
        }
    }
}

fn collect(item: &toml_edit::Item, way: &mut Vec<Step>, found: &mut Vec<(Vec<Step>, String)>) {
    use toml_edit::Item;
    let mut visit = |way: &mut Vec<Step>, step: Step, item: &Item| {
        way.push(step);
        collect(item, way, found);
        way.pop();
    };
    match item {
        Item::Table(t) => t
            .iter()
            .for_each(|(k, i)| visit(way, Step::Key(k.to_string()), i)),
        Item::ArrayOfTables(a) => {
            for (n, t) in a.iter().enumerate() {
                way.push(Step::Index(n));
                t.iter()
                    .for_each(|(k, i)| visit(way, Step::Key(k.to_string()), i));
                way.pop();
            }
        }
        Item::Value(Value::String(s)) if matches!(kind(way), Some(Duration | Rate)) => {
            found.push((way.clone(), s.value().clone()));
        }
        _ => {}
    }
}
