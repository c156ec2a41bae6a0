//! Config errors and where they are: every error names the file, the line
//! and the key, whether the TOML parser found it or netio's own rules did.

use std::fmt;
use std::path::PathBuf;

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

/// toml's errors carry a byte span; operators want a line number and the key.
pub(super) fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    with_line(
        text,
        e.span().map(|span| span.start),
        e.message().trim_end(),
    )
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
