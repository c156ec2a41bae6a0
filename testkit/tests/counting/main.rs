//! The counting tests: netio's byte counts against traffic that counts
//! itself, on every path a byte can take, when its maps are full, and when
//! processes play with their identity (zombies, PIDs, names). These
//! are what the kernel matrix runs in each guest (scripts/kernels/matrix
//! builds this binary statically), so they need nothing but netio, the
//! traffic generator and a BPF-capable kernel.

#[path = "../common/mod.rs"]
mod common;

mod accuracy;
mod capacity;
mod identity;
mod local;
mod matching;
mod restart;
mod sockets;
mod unix;
