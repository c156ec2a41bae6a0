//! Config errors and where they are: every error names the file, the line
//! and the key, whether the TOML parser found it or netio's own rules did.

use std::fmt;
use std::path::PathBuf;

use super::forms;

/// A config that could not be used, with where and why.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// One step of the way to a value in the config: a key, or an index into
/// an array (of tables or of values).
#[derive(Debug, Clone, Copy)]
pub(super) enum At {
    Key(&'static str),
    Index(usize),
}

/// A value the TOML parser accepted but netio cannot use: why, and where,
/// as the way to it from the top of the file. `describe` turns the way into
/// a line number, so that these errors name the line as parse errors do.
#[derive(Debug)]
pub(super) struct Invalid {
    at: Vec<At>,
    message: String,
}

impl Invalid {
    pub(super) fn at(at: &[At], message: impl Into<String>) -> Invalid {
        Invalid {
            at: at.to_vec(),
            message: message.into(),
        }
    }

    /// The same error inside a table: `prefix` is the way to that table,
    /// `label` how the message names it (`[[syslog]] #2`).
    pub(super) fn within(mut self, prefix: &[At], label: &str) -> Invalid {
        self.at.splice(0..0, prefix.iter().copied());
        self.message = format!("{label}: {}", self.message);
        self
    }

    /// The message with its line, as parse errors have theirs, or alone
    /// when the way leads nowhere in the text (a value left to its
    /// default, or a rule about the file as a whole).
    pub(super) fn describe(&self, text: &str) -> String {
        with_line(text, locate(text, &self.at), &self.message)
    }
}

/// The byte offset of the deepest step of `at` that the text spells out:
/// the key's own line where there is one, else the value's or the table's.
fn locate(text: &str, at: &[At]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut found = None;
    for step in at {
        let next = match *step {
            At::Key(k) => {
                let Some((key, next)) = item.as_table_like().and_then(|t| t.get_key_value(k))
                else {
                    break;
                };
                found = key.span().or(next.span()).or(found);
                next
            }
            At::Index(i) => {
                let Some(next) = item.get(i) else { break };
                found = next.span().or(found);
                next
            }
        };
        item = next;
    }
    found.map(|span| span.start)
}

/// Stands, in the message of a value's own deserializer (units.rs), for
/// the key the value was given to, which only the error's place in the
/// file can name: `describe_toml_error` puts it in. SUB, a control
/// character no quoted value in a message holds (`shown` escapes them).
pub(super) const KEY: &str = "\u{1a}";

/// toml's errors carry a byte span; operators want a line number, the
/// key and its table, and, for a value of the wrong type or a missing key,
/// the right form (forms.rs). A missing top-level key has no line: the
/// span toml gives it is the file's start, often a comment.
pub(super) fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let described = match (toml_edit::ImDocument::parse(text), e.span()) {
        (Ok(doc), Some(span)) => explain(&doc, text, span, message),
        _ => None,
    };
    let (offset, message) = described.unwrap_or_else(|| {
        let plain = message.replace(&format!("{KEY} = "), "");
        (e.span().map(|span| span.start), plain)
    });
    with_line(text, offset, &message)
}

/// The message of a toml error at `span`, with its key and table and the
/// right form where forms.rs has one; `None` where the plain message says
/// it (syntax errors, unknown keys).
fn explain(
    doc: &toml_edit::ImDocument<&str>,
    text: &str,
    span: std::ops::Range<usize>,
    message: &str,
) -> Option<(Option<usize>, String)> {
    if let Some(key) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        if span.is_empty() {
            return Some((None, forms::missing(None, &[], key)));
        }
        let (way, Found::Table) = find(doc, span.start)? else {
            return None;
        };
        let label = table_label(doc, &way);
        return Some((Some(span.start), forms::missing(Some(&label), &way, key)));
    }
    let (way, found) = find(doc, span.start)?;
    let at = way.iter().rposition(|s| matches!(s, Step::Key(_)))?;
    let Step::Key(key) = &way[at] else {
        return None;
    };
    let label = table_label(doc, &way[..at]);
    let prefix = match label.chars().last() {
        None => String::new(),
        Some(']') => format!("{label} "),
        Some(_) => format!("{label}: "),
    };
    let raw = text[span.clone()].lines().next().unwrap_or("").trim();
    let raw = escape_controls(&cut(raw, VALUE_CHARS));
    let wrong_type = [
        "invalid type: ",
        "invalid value: ",
        "wanted string or table",
    ]
    .iter()
    .any(|p| message.starts_with(p));
    let said = if message.contains(KEY) {
        message.replace(KEY, key)
    } else if let Some(right) = wrong_type
        .then(|| forms::wrong_type(&way[..=at], way.len() > at + 1, &raw, &found))
        .flatten()
    {
        right
    } else if matches!(found, Found::Value(_)) {
        message.to_string()
    } else {
        return None;
    };
    Some((Some(span.start), format!("{prefix}key `{key}`: {said}")))
}

/// One step of the way to a value as the file spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// What sits at an error's place: a value, or a table whose header it is.
pub(super) enum Found<'a> {
    Value(&'a toml_edit::Value),
    Table,
}

/// The way to the deepest value at byte `offset`, or to the table whose
/// header starts there.
fn find<'a>(doc: &'a toml_edit::ImDocument<&str>, offset: usize) -> Option<(Vec<Step>, Found<'a>)> {
    let mut way = Vec::new();
    let found = item_at(doc.as_item(), offset, &mut way)?;
    Some((way, found))
}

fn item_at<'a>(item: &'a toml_edit::Item, offset: usize, way: &mut Vec<Step>) -> Option<Found<'a>> {
    use toml_edit::Item;
    match item {
        Item::Value(v) => value_at(v, offset, way),
        Item::Table(t) => table_at(t, offset, way),
        Item::ArrayOfTables(tables) => tables.iter().enumerate().find_map(|(i, t)| {
            way.push(Step::Index(i));
            let found = table_at(t, offset, way);
            if found.is_none() {
                way.pop();
            }
            found
        }),
        Item::None => None,
    }
}

fn table_at<'a>(
    table: &'a toml_edit::Table,
    offset: usize,
    way: &mut Vec<Step>,
) -> Option<Found<'a>> {
    for (key, item) in table.iter() {
        way.push(Step::Key(key.to_string()));
        if let Some(found) = item_at(item, offset, way) {
            return Some(found);
        }
        way.pop();
    }
    let header = table.span().is_some_and(|s| s.start == offset);
    (header && !way.is_empty()).then_some(Found::Table)
}

fn value_at<'a>(
    value: &'a toml_edit::Value,
    offset: usize,
    way: &mut Vec<Step>,
) -> Option<Found<'a>> {
    let span = value.span()?;
    if !span.contains(&offset) {
        return None;
    }
    let inner = match value {
        toml_edit::Value::Array(a) => a.iter().enumerate().find_map(|(i, v)| {
            way.push(Step::Index(i));
            let found = value_at(v, offset, way);
            if found.is_none() {
                way.pop();
            }
            found
        }),
        _ => None,
    };
    inner.or(Some(Found::Value(value)))
}

/// How messages name the table a way leads to: `[capacity]`,
/// `[[target]] #2 (`db`)`, `[[target]] #1 (`db`): [target.threshold]`,
/// or nothing for the top level. A target is named as validate.rs names it.
fn table_label(doc: &toml_edit::ImDocument<&str>, way: &[Step]) -> String {
    let mut label = String::new();
    let mut keys: Vec<&str> = Vec::new();
    let mut item = Some(doc.as_item());
    for (n, step) in way.iter().enumerate() {
        match step {
            Step::Key(k) => {
                keys.push(k);
                item = item.and_then(|i| i.get(k.as_str()));
                if !matches!(way.get(n + 1), Some(Step::Index(_))) {
                    if !label.is_empty() {
                        label.push_str(": ");
                    }
                    label.push_str(&format!("[{}]", keys.join(".")));
                }
            }
            Step::Index(i) => {
                item = item.and_then(|t| t.get(*i));
                if !label.is_empty() {
                    label.push_str(": ");
                }
                label.push_str(&format!("[[{}]] #{}", keys.join("."), i + 1));
                if let Some(name) = item.and_then(|t| t.get("name")).and_then(|n| n.as_str()) {
                    label.push_str(&format!(
                        " (`{}`)",
                        escape_controls(&cut(name, VALUE_CHARS))
                    ));
                }
            }
        }
    }
    label
}

/// How much of the offending line an error shows: enough to recognise it.
const SNIPPET_CHARS: usize = 80;
/// How much of a value a message quotes (`shown`).
const VALUE_CHARS: usize = 60;
/// A message longer than this (a parser's, quoting a huge value) keeps its
/// start and its end, where the parser says what it expected.
const MESSAGE_CHARS: usize = 400;

/// `line N: message (at `the line`)` for the line holding byte `offset`,
/// or the message alone without one: how every config error names its
/// place. The line and the message are cut to a readable length.
fn with_line(text: &str, offset: Option<usize>, message: &str) -> String {
    let message = cut_middle(message, MESSAGE_CHARS);
    match offset {
        Some(offset) => {
            let line = text[..offset.min(text.len())].matches('\n').count() + 1;
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            let snippet = escape_controls(&cut(snippet, SNIPPET_CHARS));
            format!("line {line}: {message} (at `{snippet}`)")
        }
        None => message,
    }
}

/// A value as messages quote it: in quotes, escaped, and cut.
pub(super) fn shown(value: &str) -> String {
    format!("{:?}", cut(value, VALUE_CHARS))
}

/// The first `max` characters of `s`, and `…` where it was cut.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// `s` if it has at most `max` characters, else its first and last
/// `max / 2` around ` … `.
fn cut_middle(s: &str, max: usize) -> String {
    let chars = s.chars().count();
    if chars <= max {
        return s.to_string();
    }
    let head = s.char_indices().nth(max / 2).map_or(s.len(), |(i, _)| i);
    let tail = s
        .char_indices()
        .nth(chars - max / 2)
        .map_or(s.len(), |(i, _)| i);
    format!("{} … {}", &s[..head], &s[tail..])
}

/// Control characters of a config line as escapes, so that an error
/// message is one line of plain text wherever it is written.
fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_cut_on_a_char_boundary_with_a_marker() {
        let line = format!("bogus = \"{}\"", "é".repeat(100_000));
        let text = format!("interval = \"1s\"\n{line}\n");
        let m = with_line(&text, text.find("bogus"), "unknown field `bogus`");
        assert!(
            m.starts_with("line 2: unknown field `bogus` (at `bogus = \"éé"),
            "{m}"
        );
        assert!(m.ends_with("é…`)"), "{m}");
        assert_eq!(m.chars().filter(|&c| c == 'é').count(), SNIPPET_CHARS - 9);
    }

    #[test]
    fn a_long_message_keeps_its_start_and_its_end() {
        let message = format!(
            "unknown variant `{}`, expected `a` or `b`",
            "x".repeat(5000)
        );
        let m = with_line("", None, &message);
        assert!(m.starts_with("unknown variant `xxx"), "{m}");
        assert!(m.ends_with("xxx`, expected `a` or `b`"), "{m}");
        assert!(
            m.contains(" … ") && m.chars().count() == MESSAGE_CHARS + 3,
            "{m}"
        );
        assert_eq!(with_line("", None, "short"), "short");
    }

    #[test]
    fn values_are_quoted_escaped_and_cut() {
        assert_eq!(shown("a\"b"), "\"a\\\"b\"");
        let long = shown(&"y".repeat(1000));
        assert_eq!(long.chars().count(), VALUE_CHARS + 3, "{long}");
        assert!(long.ends_with("y…\""), "{long}");
    }

    #[test]
    fn control_characters_in_a_line_are_escaped() {
        let text = "output = \"json\"\u{1b}[2J\0\n";
        let m = with_line(text, Some(0), "bad");
        assert_eq!(m, "line 1: bad (at `output = \"json\"\\u{1b}[2J\\u{0}`)");
    }
}
