/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The structs and constants both sides of netio share. The kernel programs
 * write them; the Rust loader reads them through the generated skeleton, so
 * this file is the one definition of the wire format between the two.
 */
#ifndef NETIO_H
#define NETIO_H

#define NETIO_COMM_LEN 16
#define NETIO_PATH_LEN 128

/* Peer family values used in traffic keys. PEER_OTHER is the per-process
 * fallback entry that takes the bytes when the traffic map is full, so a
 * process's totals stay exact even when its per-peer breakdown cannot. */
#define PEER_OTHER 0
#define PEER_INET 2
#define PEER_INET6 10

/* A tracked thread group. gen tells two processes apart that reuse one PID
 * (pid_max is 32768 on many hosts, and pgbench -C forks thousands a second). */
struct tracked {
	__u32 target;
	__u32 gen;
};

/* Traffic counters are keyed by process and peer. The key carries the
 * target so that userspace never needs a second lookup to attribute it. */
struct traffic_key {
	__u32 tgid;
	__u32 gen;
	__u16 target;
	__u16 family;
	__u8 addr[16];
};

/* Counters only grow; userspace diffs successive reads. */
struct traffic_val {
	__u64 sent;
	__u64 received;
};

struct comm_key {
	char comm[NETIO_COMM_LEN];
};

/* Ways a count can be lost or degraded; each is an index into the per-CPU
 * stats array, summed and reported by userspace. */
enum netio_stat {
	STAT_PEER_OVERFLOW = 0, /* events counted in the PEER_OTHER entry (traffic map full) */
	STAT_LOST_EVENTS,	/* events not counted at all (even the fallback entry missing) */
	STAT_LOST_BYTES,	/* bytes of those events */
	STAT_TRACK_FULL,	/* a new process could not be tracked (tracked map full) */
	STAT_EVENTS_DROPPED,	/* ring buffer full: a lifecycle event was not delivered */
	STAT_STASH_FULL,	/* entry/return pairing lost (stash map full) */
	STAT_MAX,
};

#define MATCH_NAME 1
#define MATCH_CGROUP 2

enum netio_event_kind {
	EV_EXEC = 1,
	EV_FORK = 2,
	EV_EXIT = 3,
};

/* Lifecycle events sent to userspace through the ring buffer. */
struct lifecycle_event {
	__u32 kind;
	__u32 tgid;
	__u32 ppid;
	__u32 gen;
	__u32 target;
	/* EV_EXEC: MATCH_NAME (maybe on a 15-byte prefix: userspace
	 * confirms), MATCH_CGROUP, or 0 when tracking was inherited. */
	__u32 matched;
	char comm[NETIO_COMM_LEN];
	char filename[NETIO_PATH_LEN];
};

#endif
