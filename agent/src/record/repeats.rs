//! Which traffic records the text output leaves out: those whose numbers
//! the one narrower record after them repeats (docs/records.md, "Scopes
//! that repeat each other"). The other outputs write every record.

use super::{field, Record};

/// Marks `repeated` each traffic record of one interval (targets first,
/// each followed by its peers, then each process followed by its peers)
/// whose numbers the one narrower record after it repeats: a target with
/// one process record (or, without process records, one peer record), a
/// target's only peer when it has one process record, a process with one
/// peer record.
pub fn mark_repeats(records: &mut [Record]) {
    let scope = |r: &Record| r.field_str(field::SCOPE).map(str::to_owned);
    let target = |r: &Record| r.field_str(field::TARGET).map(str::to_owned);
    let of = |records: &[Record], s: &str, t: &Option<String>| {
        records
            .iter()
            .filter(|r| scope(r).as_deref() == Some(s) && target(r) == *t)
            .count()
    };
    for i in 0..records.len() {
        let narrower = match scope(&records[i]).as_deref() {
            Some("target") => {
                let t = target(&records[i]);
                match of(records, "process", &t) {
                    0 => of(records, "target_peer", &t),
                    n => n,
                }
            }
            Some("target_peer") => {
                let t = target(&records[i]);
                let one = of(records, "target_peer", &t) == 1 && of(records, "process", &t) == 1;
                usize::from(one)
            }
            Some("process") => records[i + 1..]
                .iter()
                .take_while(|r| scope(r).as_deref() == Some("peer"))
                .count(),
            _ => 0,
        };
        records[i].repeated = narrower == 1;
    }
}
