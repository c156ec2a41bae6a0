/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The contract between netio's kernel programs and its Rust loader: every
 * struct, enum and constant of the object's interface. The programs write
 * the structs and use the constants; Rust reads both through the generated
 * skeleton (netio.bpf.c anchors each enum so it reaches the object's BTF),
 * so this file is their one definition. Enums, not #defines: a #define never
 * reaches BTF. Every value fits 32 bits (clang 14 has no 64-bit BTF enums).
 */
#ifndef NETIO_H
#define NETIO_H

/* Lengths of the strings the kernel hands over. The kernel keeps 15 bytes
 * of a command name and its NUL, so names match on their first 15 bytes. */
enum netio_len {
	NETIO_COMM_LEN = 16,
	NETIO_COMM_MATCH = NETIO_COMM_LEN - 1,
	NETIO_PATH_LEN = 128,
};

/* Peer family values used in traffic keys. PEER_OTHER is the per-process
 * fallback entry that takes the bytes when the traffic map is full, so a
 * process's totals stay exact even when its per-peer breakdown cannot.
 * PEER_UNIX: a Unix stream or seqpacket socket's peer process, as its
 * credentials name it (SO_PEERCRED); its key's addr holds struct unix_peer.
 * PEER_LOCAL4 and PEER_LOCAL6: a TCP client on a loopback address (127/8,
 * ::1) named by the process that connected; addr holds struct local_peer. */
enum netio_peer {
	PEER_OTHER = 0,
	PEER_UNIX = 1,
	PEER_INET = 2,
	PEER_LOCAL4 = 3,
	PEER_LOCAL6 = 4,
	PEER_INET6 = 10,
};

/* A Unix socket's peer in a traffic key's addr: the thread group that
 * connected to it (for the connecting side: the one that listened), its
 * PID in the initial namespace, its effective uid, and the boot-time ns it
 * started at, 0 once it has exited, so that userspace never names a process
 * that reused the PID since. */
struct unix_peer {
	__u32 pid;
	__u32 uid;
	__u64 started_ns;
};

/* Generations: the kernel's are masked to 31 bits and never 0, userspace's
 * have the top bit set, so the two never hand out the same one. GEN_NONE
 * marks a `tracked` entry that is no process's: all zero (never tracked, or
 * cleared when its process exited), or GONE_TARGET with GEN_NONE (untracked
 * by userspace, cleared at the PID's next exit: docs/kernels.md, "The
 * tracked map"). */
/* A loopback TCP client in a traffic key's addr (local.bpf.h): its IPv4
 * address (0 for ::1), and the thread group that called connect(), its PID
 * in the initial namespace and the boot-time ns its leader started at, so
 * that userspace never names a process that reused the PID since. */
struct local_peer {
	__u32 addr4;
	__u32 pid;
	__u64 started_ns;
};

enum netio_gen {
	GEN_NONE = 0,
	GEN_KERNEL_MASK = 0x7fffffff,
	GEN_USER_BIT = 0x80000000,
	GONE_TARGET = 0xffffffff,
};

/* The tracking slots in front of the tracked map (docs/kernels.md, "Still
 * tracked"): slot tgid % TRACK_SLOTS counts its tracked processes in the low
 * 32 bits (SLOT_ONE each) and holds an epoch in the high bits, which moves on
 * by SLOT_EPOCH_STEP at every change to the tracking of one of them. */
enum netio_slot {
	TRACK_SLOTS = 32768,
	SLOT_ONE = 1,
	SLOT_EPOCH_SHIFT = 32,
	SLOT_EPOCH_UNIT = 2,
};

#define SLOT_EPOCH_STEP ((__u64)SLOT_EPOCH_UNIT << SLOT_EPOCH_SHIFT)

/* A tracked thread group: the value at index tgid of the `tracked` array,
 * tracked when gen is not GEN_NONE. gen tells two processes apart that
 * reuse one PID (pid_max is 32768 on many hosts, and pgbench -C forks
 * thousands a second). target holds the target id in its low 16 bits and
 * the process's peer epoch in its high 16 (enum netio_peer_epoch). */
struct tracked {
	__u32 target;
	__u32 gen;
};

/* Peer epochs (docs/kernels.md, "Retiring idle peers"): every traffic key
 * of a tracked process carries the epoch its entry held when the program
 * that adds to it read the entry. Userspace moves a process's epoch on and
 * waits for running programs before it deletes the keys of the old one.
 * A new process starts at 0; PEER_EPOCH_AFTER is never a process's: a
 * drain of a socket whose owner is no longer tracked uses it, and only the
 * exit protocol deletes its keys. */
enum netio_peer_epoch {
	PEER_EPOCH_SHIFT = 16,
	TRACKED_TARGET_MASK = 0xffff,
	PEER_EPOCH_AFTER = 0xffff,
};

/* Traffic counters are keyed by process and peer. The key carries the
 * target so that userspace never needs a second lookup to attribute it,
 * and the peer epoch its bytes were counted in (0 for movers' keys and the
 * PEER_OTHER entry, which are never retired). */
struct traffic_key {
	__u32 tgid;
	__u32 gen;
	__u16 target;
	__u16 family;
	__u8 addr[16];
	__u16 epoch;
	__u16 pad;
};

/* Counters only grow; userspace diffs successive reads. */
struct traffic_val {
	__u64 sent;
	__u64 received;
};

/* A target's counters for the bytes that found no traffic entry at all,
 * neither their own nor their process's PEER_OTHER one (docs/kernels.md,
 * "When the traffic map is full"): the value at index target (without
 * TARGET_MOVED) of the `target_fallback` array, which cannot fill. Counters
 * only grow, except `peers_seen`: one bit per hash of a peer whose bytes
 * went to `other` or here, which userspace takes and clears each interval
 * (its bits are a lower bound on how many peers were folded). */
struct target_fallback {
	__u64 sent;
	__u64 received;
	__u64 events;
	__u64 peers_seen;
};

struct comm_key {
	char comm[NETIO_COMM_LEN];
};

/* Ways a count can be lost or degraded; each is an index into the per-CPU
 * stats array, summed and reported by userspace. */
enum netio_stat {
	STAT_PEER_OVERFLOW = 0, /* events counted in the PEER_OTHER entry (traffic map full) */
	STAT_LOST_EVENTS,	/* events not counted at all (not even in target_fallback) */
	STAT_LOST_BYTES,	/* bytes of those events */
	STAT_TRACK_FULL,	/* a new process could not be tracked (PID beyond the tracked array) */
	STAT_EVENTS_DROPPED,	/* ring buffer full: a lifecycle event was not delivered */
	STAT_STASH_FULL,	/* entry/return pairing lost (stash map full) */
	STAT_OWNER_FULL,	/* a tracked process's socket got no owner (sk_owners full) */
	STAT_LOCAL_FULL,	/* a loopback connection was not remembered (local_clients full) */
	STAT_MAX,
};

/* How an exec'd process was matched. MATCH_PREFIX: its name fills the 15
 * bytes and matched, but it was tracked before or its cgroup is a target's,
 * and it stays so until userspace confirms the full name. */
enum netio_match {
	MATCH_NAME = 1,
	MATCH_CGROUP = 2,
	MATCH_PREFIX = 3,
};

/* target_uids holds (target, UID_CONSTRAINED) for a target with a `user`
 * constraint, and (target, uid) for each uid it allows. (uid_t)-1 is never
 * a user's. */
enum netio_uid {
	UID_CONSTRAINED = 0xffffffff,
};

struct uid_key {
	__u32 target;
	__u32 uid;
};

enum netio_event_kind {
	EV_EXEC = 1,
	EV_FORK = 2,
	EV_EXIT = 3,
	EV_MOVED = 4,	/* an untracked process moved bytes on a tracked one's socket */
	EV_UNIX_PEER = 5, /* a tracked process's first bytes with a Unix peer process */
	EV_LOCAL_CLIENT = 6, /* a tracked process owns a socket a loopback client connected */
};

/* What a per-thread stash holds (the kernel's own: it pairs a hook's entry
 * with its return). */
enum netio_stash_kind {
	STASH_SPLICE = 1,
	STASH_SEND = 2,
	STASH_RECV = 3,
};

/* Lifecycle events sent to userspace through the ring buffer. */
struct lifecycle_event {
	__u32 kind;
	__u32 tgid;
	__u32 ppid;
	__u32 gen;
	__u32 target;
	/* EV_EXEC: MATCH_NAME (maybe on a 15-byte prefix: userspace
	 * confirms), MATCH_CGROUP, MATCH_PREFIX, or 0 when tracking was
	 * inherited. */
	__u32 matched;
	char comm[NETIO_COMM_LEN];
	char filename[NETIO_PATH_LEN];
	/* Who it is: its effective uid (global, as the init namespace sees
	 * it; EV_MOVED: the mover's real uid), and on EV_EXEC the file it
	 * exec'd (the kernel's device number of its file system, its inode
	 * number), for the `exe` check. */
	__u32 uid;
	__u32 exe_dev;
	__u64 exe_ino;
	/* EV_UNIX_PEER and EV_LOCAL_CLIENT: tgid, uid and comm are the peer
	 * process's (a local client's as it connected), this its start; ppid,
	 * gen and target the tracked process's that counted bytes with it or
	 * owns the socket. */
	__u64 started_ns;
};

/* Sockets owned by a tracked process (docs/kernels.md, "Whose bytes"): a
 * socket gets an owner when a tracked process accepts or connects it, or
 * moves its first byte on it; an untracked process's bytes on it count for
 * the owner's target under a key whose target has TARGET_MOVED set, its
 * tgid the mover's and its gen the owner's. OWNED_BUCKETS counters, indexed
 * by a hash of the socket's peer, count the owned sockets in each: an
 * untracked process's event on a socket whose bucket is 0 costs one load.
 * The bucket hashes the peer's address (its last word) and port: fields a
 * socket holds from accept or connect on, read as plain loads. */
enum netio_owner {
	TARGET_MOVED = 0x8000,
	OWNED_BUCKETS = 16384,
	OWNED_BUCKET_SHIFT = 18,	/* 32 - log2(OWNED_BUCKETS) */
};

#endif
