/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kernel side's state: every map and global of the object, and the
 * kernel-only structs they hold. Defined in one place, in the order the
 * object has always had them (it is the order libbpf creates them in).
 * All capacities are set by the loader from the config before load.
 */
#ifndef NETIO_MAPS_BPF_H
#define NETIO_MAPS_BPF_H

/* Indexed by tgid, sized to the host's pid_max at load, so that no number
 * of processes can fill it (docs/kernels.md, "The tracked map"). Mapped by
 * userspace, which changes entries only by compare-and-exchange. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct tracked);
} tracked SEC(".maps");

/* The tracking of thread group *tgid, or NULL when it is no process's (or
 * its PID is beyond the array). */
static __always_inline struct tracked *tracked_get(__u32 *tgid)
{
	struct tracked *t = bpf_map_lookup_elem(&tracked, tgid);

	if (t && t->gen != GEN_NONE)
		return t;
	return NULL;
}

/* An entry as one 8-byte load, as the kernel and userspace write it: its
 * target, generation and peer epoch all of one moment. */
static __always_inline struct tracked tracked_load(const struct tracked *t)
{
	__u64 w = *(const volatile __u64 *)t;
	struct tracked v;

	__builtin_memcpy(&v, &w, sizeof(v));
	return v;
}

/* The target id of an entry's target word, without its peer epoch. */
static __always_inline __u32 tracked_target(__u32 target)
{
	return target & TRACKED_TARGET_MASK;
}

static __always_inline __u16 tracked_epoch(__u32 target)
{
	return target >> PEER_EPOCH_SHIFT;
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct comm_key);
	__type(value, __u32);
} names SEC(".maps");

/* cgroup v2 id (the directory's inode) -> target: systemd units. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u32);
} cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct traffic_key);
	__type(value, struct traffic_val);
} traffic SEC(".maps");

/* Per target (netio.h, struct target_fallback): one entry for every id a
 * traffic key can hold, so no number of processes or peers fills it.
 * Mapped by userspace, which reads it with atomic loads. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, TARGET_MOVED);
	__type(key, __u32);
	__type(value, struct target_fallback);
} target_fallback SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Pairs a hook's entry with its return, per thread: the socket a splice or
 * sendfile reads from (tracepoint backend), or a kprobe's arguments. */
struct stash {
	struct sock *sk;
	__u32 flags;
	__u32 kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct stash);
} stashes SEC(".maps");

/* Generation numbers the kernel hands out: a per-CPU counter, since 5.10
 * has no BPF atomic fetch (docs/kernels.md, "Generations"). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} gens SEC(".maps");

/* The tracking slots (netio.h, enum netio_slot), shared with userspace
 * through the mapped .bss and only ever changed atomically. */
__u64 track_slots[TRACK_SLOTS];

/* Destroy-time drains begun and done: userspace waits for them to be equal
 * before it reads `traffic`, so no drain is halfway when it reads. */
__u64 drains_begun;
__u64 drains_done;

/* Set by the loader when the kernel has what the socket path needs
 * (socket storage in tracing programs, BPF atomics: Linux 5.12+); when false
 * the verifier drops that path as dead code. */
const volatile bool sk_fast = false;

/*
 * A socket's pending counters and whose they are. `key` (process and peer)
 * is set when the entry is created and never changes: another process using
 * the socket, or the socket connected to another peer, takes the hash path
 * instead, so bytes never change owner.
 */
struct sk_acct {
	/* What every counted event touches, first: one cache line
	 * (docs/kernels.md, "Socket storage layout"). */
	__u32 tgid;		/* the owner, as in key */
	__u32 epoch;		/* the slot's epoch when key was last confirmed */
	__u64 sent;		/* bytes not yet moved into traffic */
	__u64 received;
	__u32 peer_raw[4];	/* the peer as the socket holds it (v4: [0]) */
	__u16 sk_family;
	__u16 pad;
	/* Read only when the entry is checked again and when it is drained. */
	struct traffic_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_acct);
} sk_accts SEC(".maps");

/* The uids each target with a `user` constraint allows (netio.h,
 * enum netio_uid), checked at exec: a process of another user is never
 * tracked for it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct uid_key);
	__type(value, __u8);
} target_uids SEC(".maps");

#endif
