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
mod tests;
