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

/// `line N: message (at `the line`)` for the line holding byte `offset`,
/// or the message alone without one: how every config error names its
/// place.
fn with_line(text: &str, offset: Option<usize>, message: &str) -> String {
    match offset {
        Some(offset) => {
            let line = text[..offset.min(text.len())].matches('\n').count() + 1;
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}: {message} (at `{snippet}`)")
        }
        None => message.to_string(),
    }
}
