//! Warnings for whoever reads netio's stderr: a condition that lasts is
//! worth one line, not one per interval.

use std::collections::HashSet;

#[derive(Debug, Default)]
pub struct Warnings {
    said: HashSet<String>,
}

impl Warnings {
    /// Says `msg` on stderr unless it was said before.
    pub fn once(&mut self, msg: String) {
        if !self.said.contains(&msg) {
            tell!("netio: {msg}");
            self.said.insert(msg);
        }
    }
}
