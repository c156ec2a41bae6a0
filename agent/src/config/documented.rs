//! docs/config.md against the code: it documents exactly the keys of each
//! table of the config structs, which are the keys netio names when it
//! refuses an unknown one; every documented example is accepted and used
//! as written; every documented default is the one `check-config` fills
//! in; and the shipped netio.conf mentions every key.
//!
//! The structs' keys are read from the structs themselves, by a serde
//! Deserializer that follows one key at a time (`Follow`).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use serde::de::value::Error;
use serde::de::{DeserializeSeed, Error as _, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{forward_to_deserialize_any, Deserialize, Deserializer};

use super::forms::{Kind, FORMS};
use super::Config;

/// A table's way from the top of the file: `[]`, `["target", "threshold"]`.
type TablePath = Vec<String>;

/// Feeds a struct only the next key of `path`, and notes the fields of the
/// struct the path ends at; anything that is not a table fails.
#[derive(Clone, Copy)]
struct Follow<'a> {
    path: &'a [String],
    fields: &'a Cell<Option<&'static [&'static str]>>,
}

impl<'de> Deserializer<'de> for Follow<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(Error::custom("not a table"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Some((key, rest)) = self.path.split_first() else {
            self.fields.set(Some(fields));
            return Err(Error::custom("found"));
        };
        visitor.visit_map(OneKey {
            key: Some(key),
            value: Follow { path: rest, ..self },
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    /// An array of tables: one element, followed further.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(OneElement(Some(self)))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct tuple tuple_struct map
        enum identifier ignored_any
    }
}

struct OneKey<'a> {
    key: Option<&'a str>,
    value: Follow<'a>,
}

impl<'de> MapAccess<'de> for OneKey<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        self.key
            .take()
            .map(|k| seed.deserialize(IntoDeserializer::<Error>::into_deserializer(k)))
            .transpose()
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(self.value)
    }
}

struct OneElement<'a>(Option<Follow<'a>>);

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|f| seed.deserialize(f)).transpose()
    }
}

/// Every table of the config structs, by its way from the top, with the
/// keys the struct accepts.
fn code_tables() -> BTreeMap<TablePath, BTreeSet<String>> {
    let mut tables = BTreeMap::new();
    let mut todo: Vec<TablePath> = vec![vec![]];
    while let Some(path) = todo.pop() {
        let fields = Cell::new(None);
        let _ = Config::deserialize(Follow {
            path: &path,
            fields: &fields,
        });
        if let Some(fields) = fields.get() {
            for key in fields {
                todo.push([path.clone(), vec![key.to_string()]].concat());
            }
            tables.insert(path, fields.iter().map(|k| k.to_string()).collect());
        }
    }
    tables
}

/// How messages name a table.
fn name(path: &[String]) -> String {
    if path.is_empty() {
        "top".into()
    } else {
        path.join(".")
    }
}

/// One row of a key table in docs/config.md.
#[derive(Debug)]
struct Row {
    key: String,
    kind: String,
    default: String,
    example: String,
}

/// A `## ` section of docs/config.md that documents a table.
#[derive(Debug, Default)]
struct Section {
    /// The table's header as the heading writes it (`[[syslog]]`); empty
    /// for the top level.
    header: String,
    rows: Vec<Row>,
}

fn read(file: &str) -> String {
    let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn unquote(cell: &str) -> String {
    cell.trim().trim_matches('`').to_string()
}

/// The table a `## ` heading documents: "Top level", or a header in
/// backticks (`` `[target.threshold]` ``), with that header.
fn table_of(heading: &str) -> Option<(TablePath, String)> {
    if heading.eq_ignore_ascii_case("top level") {
        return Some((vec![], String::new()));
    }
    let header = heading.split('`').nth(1).filter(|h| h.starts_with('['))?;
    let path = header.trim_matches(|c| c == '[' || c == ']');
    Some((
        path.split('.').map(str::to_string).collect(),
        header.to_string(),
    ))
}

/// The key tables of docs/config.md, by the table each documents.
fn documented() -> BTreeMap<TablePath, Section> {
    let text = read("docs/config.md");
    let mut out: BTreeMap<TablePath, Section> = BTreeMap::new();
    let mut table = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            table = table_of(h.trim()).map(|(path, header)| {
                out.entry(path.clone()).or_default().header = header;
                path
            });
            continue;
        }
        let Some(path) = &table else { continue };
        if !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.trim().trim_matches('|').split(" | ").collect();
        assert_eq!(
            cells.len(),
            5,
            "a key row has five cells (key, type, default, meaning, example): {line}"
        );
        out.get_mut(path).unwrap().rows.push(Row {
            key: unquote(cells[0]),
            kind: cells[1].trim().to_string(),
            default: cells[2].trim().to_string(),
            example: unquote(cells[4]),
        });
    }
    out
}

/// The keys docs/config.md documents per table: the rows of its tables,
/// and the tables themselves as keys of the table they belong to.
fn documented_keys(docs: &BTreeMap<TablePath, Section>) -> BTreeMap<TablePath, BTreeSet<String>> {
    let mut keys: BTreeMap<TablePath, BTreeSet<String>> = docs
        .iter()
        .map(|(path, s)| (path.clone(), s.rows.iter().map(|r| r.key.clone()).collect()))
        .collect();
    for path in docs.keys() {
        if let Some((table, parent)) = path.split_last() {
            keys.entry(parent.to_vec())
                .or_default()
                .insert(table.clone());
        }
    }
    keys
}

/// A valid config with every table once, each key of which is required or
/// enough to reach a table below it.
const EVERY_TABLE: &str = "interval = \"1s\"\n[capacity]\n[records]\n[[syslog]]\naddress = \"/dev/log\"\n[[target]]\nname = \"t\"\nprocess = [\"p\"]\n[target.threshold]\nsent = \"1MiB/s\"\n";

/// The keys netio says a table accepts when it refuses an unknown one:
/// "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or `b`").
fn netio_keys(path: &[String]) -> BTreeSet<String> {
    let mut doc: toml::Table = EVERY_TABLE.parse().unwrap();
    let mut table = &mut doc;
    for key in path {
        table = match table.get_mut(key) {
            Some(toml::Value::Table(t)) => t,
            Some(toml::Value::Array(a)) => a[0].as_table_mut().unwrap(),
            _ => panic!("EVERY_TABLE has no table {}: add it", name(path)),
        };
    }
    table.insert("zz_not_a_key".into(), 1.into());
    let text = toml::to_string(&doc).unwrap();
    let err = Config::parse(&text).expect_err("an unknown key was accepted");
    let expected = err
        .split_once("expected")
        .unwrap_or_else(|| panic!("no list of keys in {err:?}"))
        .1;
    let expected = expected.split(" (at `").next().unwrap();
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// What `check-config` prints for `text`.
fn effective(text: &str) -> String {
    let config =
        Config::parse(text).unwrap_or_else(|e| panic!("refused: {e}\nthe config:\n{text}"));
    config.effective()
}

#[test]
fn docs_document_exactly_the_keys_netio_accepts() {
    let docs = documented();
    let mut doc_keys = documented_keys(&docs);
    let mut wrong = Vec::new();
    for (path, code) in code_tables() {
        let section = name(&path);
        let netio = netio_keys(&path);
        let doc = doc_keys.remove(&path).unwrap_or_default();
        if code != netio {
            wrong.push(format!(
                "{section}: the structs have {code:?}, netio accepts {netio:?}"
            ));
        }
        if doc != netio {
            wrong.push(format!(
                "{section}: docs/config.md documents {doc:?}, netio accepts {netio:?}"
            ));
        }
    }
    for (path, keys) in doc_keys {
        wrong.push(format!(
            "{}: docs/config.md documents {keys:?} of a table netio does not have",
            name(&path)
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_documented_example_is_accepted_as_written() {
    let docs = documented();
    // A table's path sorts after its parent's: the sections in file order.
    let mut text = String::new();
    for section in docs.values() {
        if !section.header.is_empty() {
            text.push_str(&format!("\n{}\n", section.header));
        }
        for row in &section.rows {
            assert!(
                row.example.starts_with(&format!("{} = ", row.key)),
                "the example of `{}` should set it: {:?}",
                row.key,
                row.example
            );
            text.push_str(&row.example);
            text.push('\n');
        }
    }
    let effective = effective(&text);
    let lines: BTreeSet<&str> = effective.lines().map(str::trim).collect();
    for row in docs.values().flat_map(|s| &s.rows) {
        assert!(
            lines.contains(row.example.as_str()),
            "documented example `{}` is not what check-config says netio uses:\n{effective}",
            row.example
        );
    }
}

/// The forms errors show (forms.rs) cover every key netio accepts, and
/// the example of each is the one docs/config.md gives.
#[test]
fn every_key_has_a_form_whose_example_is_the_documented_one() {
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, fields) in code_tables() {
        for key in fields {
            keys.insert((path.join("."), key));
        }
    }
    let forms: BTreeSet<(String, String)> = FORMS
        .iter()
        .map(|(t, k, ..)| (t.to_string(), k.to_string()))
        .collect();
    assert_eq!(forms, keys, "forms.rs and the structs' keys differ");
    let docs = documented();
    for (table, key, kind, example) in FORMS {
        let path: TablePath = table
            .split('.')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        let row = docs
            .get(&path)
            .and_then(|s| s.rows.iter().find(|r| r.key == key));
        match (row, kind) {
            (_, Kind::Table | Kind::Tables) => {
                let mut header = path.clone();
                header.push(key.to_string());
                let header = header.join(".");
                let header = match kind {
                    Kind::Table => format!("[{header}]"),
                    _ => format!("[[{header}]]"),
                };
                assert_eq!(example, header, "the header of `{key}`");
            }
            (Some(row), _) => {
                assert_eq!(
                    row.example,
                    format!("{key} = {example}"),
                    "the example of `{key}` in forms.rs and docs/config.md"
                );
                let documented = match row.kind.split(',').next().unwrap() {
                    "duration" => Kind::Duration,
                    "rate" => Kind::Rate,
                    "string" | "path" => Kind::Text,
                    "list of strings" | "list of paths" => Kind::List,
                    "list of user names and uids" => Kind::Users,
                    "boolean" => Kind::Flag,
                    "integer" => Kind::Count,
                    other => panic!("`{key}`: docs/config.md's type {other:?} has no kind"),
                };
                assert_eq!(
                    kind, documented,
                    "the kind of `{key}`: docs say {:?}",
                    row.kind
                );
            }
            (None, _) => panic!("docs/config.md has no row for `{key}`"),
        }
    }
}

#[test]
fn documented_defaults_are_the_defaults_netio_uses() {
    let docs = documented();
    // Only what has no default: the interval, a syslog destination's
    // address, a target and a threshold with one rate. The target is a
    // unit's, so that `process` is left out.
    let minimal = "interval = \"1s\"\n[[syslog]]\naddress = \"/dev/log\"\n[[target]]\nname = \"t\"\nunit = \"t.service\"\n[target.threshold]\nsent = \"1MiB/s\"\n";
    let effective = effective(minimal);
    let lines: BTreeSet<&str> = effective.lines().map(str::trim).collect();
    let mut checked = 0;
    for row in docs.values().flat_map(|s| &s.rows) {
        // Literal defaults are in backticks; "required" or "none" are not.
        if !row.default.starts_with('`') {
            assert!(
                ["required", "none"].contains(&row.default.as_str()),
                "`{}`: default {:?} is neither a literal in backticks nor required/none",
                row.key,
                row.default
            );
            continue;
        }
        let line = format!("{} = {}", row.key, unquote(&row.default));
        assert!(
            lines.contains(line.as_str()),
            "docs say the default is `{line}`, check-config of a config without `{}` says:\n{effective}",
            row.key
        );
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} defaults documented");
}

#[test]
fn shipped_netio_conf_mentions_every_documented_key() {
    let shipped = read("netio.conf");
    let missing: Vec<String> = documented()
        .values()
        .flat_map(|s| &s.rows)
        .map(|r| r.key.clone())
        .filter(|k| !shipped.contains(&format!("{k} =")))
        .collect();
    assert!(
        missing.is_empty(),
        "netio.conf, \"every key explained\", never shows {missing:?}"
    );
}
