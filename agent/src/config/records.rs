//! `[records]`: which records each interval writes besides the targets'
//! totals, and how many (docs/config.md, docs/records.md "How many
//! records").

use serde::{Deserialize, Serialize};

use super::{
    DEFAULT_LIFECYCLE, DEFAULT_PER_PROCESS, DEFAULT_TARGET_PEERS, DEFAULT_TOP_PEERS,
    DEFAULT_TOP_PROCESSES,
};

/// `[records]`: what each interval writes besides the target's total.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    /// A traffic record per process, besides the target's total.
    pub per_process: bool,
    /// Process records per target and interval: the busiest N, the rest
    /// folded into one record that says how many it holds.
    pub top_processes: u32,
    /// Per-peer records for each process: the busiest N peers, the rest
    /// folded into one record with peer `other`. 0: none.
    pub top_peers: u32,
    /// Per-peer records for each target, over all its processes: the
    /// busiest N, the rest folded into `other`. 0: none.
    pub target_peers: u32,
    /// Process lifecycle records: one per process, or a count per target
    /// and interval.
    pub lifecycle: Lifecycle,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            per_process: DEFAULT_PER_PROCESS,
            top_processes: DEFAULT_TOP_PROCESSES,
            top_peers: DEFAULT_TOP_PEERS,
            target_peers: DEFAULT_TARGET_PEERS,
            lifecycle: DEFAULT_LIFECYCLE,
        }
    }
}

/// `[records] lifecycle`: how processes that appear and exit are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// A `process_appeared` and a `process_exited` record per process.
    Each,
    /// One `processes_changed` record per target and interval: how many.
    Summary,
}
