// SPDX-License-Identifier: GPL-2.0-only
/*
 * netio's kernel side: per-process, per-peer TCP byte counters.
 *
 * One object holds every backend. The loader turns autoload off for all
 * counting programs but those of the backend it picked, so only they are
 * relocated and loaded; each kernel-version variant of a hook is its own
 * named program.
 *
 * What is counted (docs/kernels.md): the positive return of every send and
 * receive on a TCP socket by a tracked thread group; MSG_PEEK reads consume
 * nothing and count nothing. Never tcp_cleanup_rbuf's `copied`: it is a
 * running total that recvmsg passes again on every wake-up of a blocking read.
 *
 * Tracking: userspace fills `tracked` for processes that run at start and
 * `names` with the configured process names. The kernel tracks a process at
 * exec when its name matches, and a child at fork when its parent is
 * tracked, so a new process is counted from its first byte.
 *
 * Two ways to count an event (docs/kernels.md): the hash path adds it to
 * the (process, peer) counter in `traffic`; the socket path, where the
 * kernel allows it, adds it to the socket's own pending counters
 * (`sk_accts`), which are moved into `traffic` when the socket is destroyed
 * and whenever userspace reads (the drain iterator). The socket path costs
 * one storage lookup instead of two hash lookups.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "netio.h"

char LICENSE[] SEC("license") = "GPL";

/* All capacities are set by the loader from the config before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct tracked);
} tracked SEC(".maps");

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

/* Generation numbers the kernel hands out (userspace's have the top bit
 * set). A per-CPU counter, not an atomic fetch-add: Linux 5.10 has no BPF
 * atomic fetch. Lifecycle tracepoints run with preemption off, so the
 * increment cannot interleave on one CPU, and the CPU id in the low bits
 * keeps CPUs apart. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} gens SEC(".maps");

/*
 * The tracking slots, in front of the tracked map. Slot tgid % TRACK_SLOTS
 * holds in its low 32 bits how many tracked processes have a tgid in the
 * slot, so an event of a process in an empty slot is known untracked with
 * one load and no lookup; and in its high 32 bits the slot's epoch, which
 * moves on (by 2, so it stays even) at every change to the tracking of a
 * process of the slot. A socket's pending counters are trusted without a
 * lookup only while the epoch they were confirmed at is current.
 * Every insertion into `tracked` adds one to the count before it and every
 * deletion takes one away after it (the kernel here, userspace in the
 * loader), so a slot's count is never zero while a process of it is
 * tracked, and never goes below zero into the epoch.
 */
#define TRACK_SLOTS 32768
#define SLOT_ONE 1ULL
#define SLOT_EPOCH_STEP (2ULL << 32)
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
	/* What every counted event reads and writes, first: the storage's data
	 * starts 8 bytes into a cache line (struct bpf_local_storage_data), so
	 * these 44 bytes share one line. */
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

/* Anchors so the shared structs land in the skeleton's BTF for Rust. */
struct lifecycle_event _lifecycle_event = {};
struct traffic_key _traffic_key = {};
struct traffic_val _traffic_val = {};
struct tracked _tracked = {};
struct comm_key _comm_key = {};

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		__sync_fetch_and_add(v, n);
}

/* An IPv6 peer into a zeroed key, or the IPv4 one behind it: a dual-stack
 * listener sees IPv4 clients as ::ffff:a.b.c.d. */
static __always_inline void set_peer6(struct traffic_key *key, const __u32 w[4])
{
	if (w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff)) {
		key->family = PEER_INET;
		__builtin_memcpy(key->addr, &w[3], 4);
		return;
	}
	key->family = PEER_INET6;
	__builtin_memcpy(key->addr, w, 16);
}

static __always_inline void read_peer(struct sock *sk, struct traffic_key *key)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family == AF_INET) {
		key->family = PEER_INET;
		bpf_core_read(key->addr, 4, &sk->__sk_common.skc_daddr);
		return;
	}
	__u32 w[4];

	bpf_core_read(w, sizeof(w), &sk->__sk_common.skc_v6_daddr);
	set_peer6(key, w);
}

static __always_inline bool is_inet_tcp(struct sock *sk)
{
	if (!sk)
		return false;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return false;
	return BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

/* The calling process's tracking entry, or NULL, and its thread group id:
 * the one lookup every event of an untracked process pays. */
static __always_inline struct tracked *tracked_tgid(__u32 *tgid)
{
	*tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&tracked, tgid);
}

static __always_inline struct tracked *current_tracked(void)
{
	__u32 tgid;

	return tracked_tgid(&tgid);
}

/* Adds to the counter of the process and peer in `key` (complete). */
static __always_inline void count_key(struct traffic_key *key, __u64 sent, __u64 received)
{
	struct traffic_val *v = bpf_map_lookup_elem(&traffic, key);
	if (!v) {
		struct traffic_val zero = {};

		bpf_map_update_elem(&traffic, key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&traffic, key);
	}
	if (!v) {
		/* Map full: the process's own fallback entry, created when it
		 * was tracked, keeps its totals exact. */
		stat_add(STAT_PEER_OVERFLOW, 1);
		key->family = PEER_OTHER;
		__builtin_memset(key->addr, 0, sizeof(key->addr));
		v = bpf_map_lookup_elem(&traffic, key);
	}
	if (!v) {
		stat_add(STAT_LOST_EVENTS, 1);
		stat_add(STAT_LOST_BYTES, sent + received);
		return;
	}
	if (sent)
		__sync_fetch_and_add(&v->sent, sent);
	if (received)
		__sync_fetch_and_add(&v->received, received);
}

/* Adds `bytes` to the counter of the process `t` (thread group key->tgid)
 * and the peer already in `key`. */
static __always_inline void count(struct tracked *t, struct traffic_key *key, __s64 bytes,
				  bool sent)
{
	key->gen = t->gen;
	key->target = t->target;
	if (sent)
		count_key(key, bytes, 0);
	else
		count_key(key, 0, bytes);
}

static __always_inline void account_to(struct tracked *t, __u32 tgid, struct sock *sk, __s64 bytes,
				       bool sent)
{
	if (bytes <= 0 || !sk || !t)
		return;
	struct traffic_key key = { .tgid = tgid };

	read_peer(sk, &key);
	count(t, &key, bytes, sent);
}

static __always_inline void account(struct sock *sk, __s64 bytes, bool sent)
{
	__u32 tgid;

	if (bytes > 0)
		account_to(tracked_tgid(&tgid), tgid, sk, bytes, sent);
}

/* ---- tracepoint backend (Linux 6.3+) ---------------------------------- */

/*
 * tp_btf, not raw_tp: the socket is a BTF pointer, so its family, protocol
 * and peer are plain loads instead of four bpf_probe_read_kernel calls, and
 * the family is read once. docs/benchmarks.md measured what that saves on
 * the counted path.
 */
/* The socket's family, and its peer as it holds it: the IPv4 address in
 * w[0], or the four words of the IPv6 one. */
static __always_inline __u16 peer_words_btf(struct sock *sk, __u32 w[4])
{
	__u16 family = sk->__sk_common.skc_family;

	if (family == AF_INET) {
		w[0] = sk->__sk_common.skc_daddr;
	} else if (family == AF_INET6) {
		w[0] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0];
		w[1] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1];
		w[2] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2];
		w[3] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
	}
	return family;
}

static __always_inline bool tcp_peer_btf(struct sock *sk, struct traffic_key *key)
{
	if (!sk || sk->sk_protocol != IPPROTO_TCP)
		return false;
	__u32 w[4] = {};
	__u16 family = peer_words_btf(sk, w);

	if (family == AF_INET) {
		key->family = PEER_INET;
		__builtin_memcpy(key->addr, &w[0], 4);
		return true;
	}
	if (family != AF_INET6)
		return false;
	set_peer6(key, w);
	return true;
}

static __always_inline __u64 *track_slot(__u32 tgid)
{
	return &track_slots[tgid & (TRACK_SLOTS - 1)];
}

/* The socket still has the peer its entry was published with. */
static __always_inline bool same_peer(const struct sk_acct *a, struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;

	if (family != a->sk_family)
		return false;
	if (family == AF_INET)
		return sk->__sk_common.skc_daddr == a->peer_raw[0];
	return sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0] == a->peer_raw[0] &&
	       sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1] == a->peer_raw[1] &&
	       sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2] == a->peer_raw[2] &&
	       sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3] == a->peer_raw[3];
}

static __always_inline void acct_add(struct sk_acct *a, __s64 bytes, bool sent)
{
	if (sent)
		__sync_fetch_and_add(&a->sent, bytes);
	else
		__sync_fetch_and_add(&a->received, bytes);
}

/* Moves a socket's pending bytes into `traffic`. Exchanges, so of two
 * drains at once (destroy and the iterator) each byte goes exactly once.
 * Only the drain programs exchange, and they load only with the socket path
 * (Linux 5.12+). */
static __always_inline void drain(struct sk_acct *a)
{
	__u64 sent = __atomic_exchange_n(&a->sent, 0, __ATOMIC_SEQ_CST);
	__u64 received = __atomic_exchange_n(&a->received, 0, __ATOMIC_SEQ_CST);

	if (sent || received) {
		struct traffic_key key = a->key;

		count_key(&key, sent, received);
	}
}

/*
 * The socket path when the entry is missing, stale or not this process's:
 * one lookup of the process, then either the socket's entry (created with
 * this process as owner, or confirmed at the current epoch) or the hash path.
 */
static __always_inline void account_sk_slow(struct sk_acct *a, struct sock *sk, __u32 tgid,
					    __u32 epoch, __s64 bytes, bool sent)
{
	struct traffic_key key = { .tgid = tgid };
	struct tracked *t = bpf_map_lookup_elem(&tracked, &tgid);

	if (!t || !tcp_peer_btf(sk, &key))
		return;
	key.gen = t->gen;
	key.target = t->target;
	if (!a) {
		/* Created whole from `init`, atomically: of threads racing here
		 * one's entry is made and the others find it, owner and all. No
		 * compare-exchange, so the object also loads on 5.10, where the
		 * verifier rejects those instructions even in dead code. */
		struct sk_acct init = { .tgid = tgid, .epoch = epoch, .key = key };

		init.sk_family = peer_words_btf(sk, init.peer_raw);
		a = bpf_sk_storage_get(&sk_accts, sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
	}
	if (a && a->tgid == tgid && a->key.gen == key.gen && a->key.target == key.target &&
	    same_peer(a, sk)) {
		if (a->epoch != epoch)
			a->epoch = epoch;
		acct_add(a, bytes, sent);
		return;
	}
	count(t, &key, bytes, sent);
}

/*
 * account() for a socket the program holds as a BTF pointer (tp_btf and
 * fentry programs): its fields are plain loads, no bpf_probe_read_kernel.
 * On the socket path a counted event costs the slot load, one storage
 * lookup and an atomic add (docs/benchmarks.md).
 */
static __always_inline void account_btf(struct sock *sk, __s64 bytes, bool sent)
{
	struct traffic_key key = {};
	struct tracked *t;
	__u64 slot;
	__u32 tgid;

	if (bytes <= 0 || !sk)
		return;
	tgid = bpf_get_current_pid_tgid() >> 32;
	/* Read before any lookup: a change after it makes the next event
	 * check again. */
	slot = *track_slot(tgid);
	if (!(__u32)slot)
		return;
	if (sk_fast) {
		/* Only TCP sockets get storage (the slow path checks). */
		struct sk_acct *a = bpf_sk_storage_get(&sk_accts, sk, 0, 0);
		__u32 epoch = slot >> 32;

		if (a && a->tgid == tgid && a->epoch == epoch && same_peer(a, sk))
			acct_add(a, bytes, sent);
		else
			account_sk_slow(a, sk, tgid, epoch, bytes, sent);
		return;
	}
	key.tgid = tgid;
	if ((t = bpf_map_lookup_elem(&tracked, &tgid)) && tcp_peer_btf(sk, &key))
		count(t, &key, bytes, sent);
}

/* The last drain of a socket's pending bytes: nothing sends or reads on a
 * socket once it is destroyed, and its storage is freed right after. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tp_tcp_destroy_sock, struct sock *sk)
{
	struct sk_acct *a;

	__sync_fetch_and_add(&drains_begun, 1);
	a = bpf_sk_storage_get(&sk_accts, sk, 0, 0);
	if (a)
		drain(a);
	__sync_fetch_and_add(&drains_done, 1);
	return 0;
}

/* Run by userspace (reading the iterator) before it reads `traffic`: drains
 * every live socket. */
SEC("iter/bpf_sk_storage_map")
int iter_drain_sockets(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct sk_acct *a = ctx->value;

	if (a)
		drain(a);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(tp_sock_send_length, struct sock *sk, int ret, int flags)
{
	account_btf(sk, ret, true);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tp_sock_recv_length, struct sock *sk, int ret, int flags)
{
	if (!(flags & MSG_PEEK))
		account_btf(sk, ret, false);
	return 0;
}

/*
 * Splice from a socket (splice(2), and sendfile(2) with a socket as input)
 * reads through tcp_read_sock and never reaches sock_recv_length. Its bytes
 * are the syscall's return value; the entry says which socket it reads.
 */
struct syscall_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct syscall_exit_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

#define STASH_SPLICE 1
#define STASH_SEND 2
#define STASH_RECV 3

static __always_inline struct sock *tcp_sock_of_fd(__u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_core_read(&file, sizeof(file), &fds[fd]);
	if (!file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);

	return is_inet_tcp(sk) ? sk : NULL;
}

static __always_inline void stash_put(struct sock *sk, __u32 flags, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct stash s = { .sk = sk, .flags = flags, .kind = kind };

	if (bpf_map_update_elem(&stashes, &id, &s, BPF_ANY))
		stat_add(STAT_STASH_FULL, 1);
}

static __always_inline struct sock *stash_take(__u32 kind, __u32 *flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct stash *s = bpf_map_lookup_elem(&stashes, &id);
	struct sock *sk = NULL;

	if (!s)
		return NULL;
	if (s->kind == kind) {
		sk = s->sk;
		if (flags)
			*flags = s->flags;
	}
	bpf_map_delete_elem(&stashes, &id);
	return sk;
}

static __always_inline void splice_enter(__u64 fd)
{
	if (!current_tracked())
		return;
	struct sock *sk = tcp_sock_of_fd(fd);
	if (sk)
		stash_put(sk, 0, STASH_SPLICE);
}

static __always_inline void splice_exit(__s64 ret)
{
	__u32 tgid;
	struct tracked *t = tracked_tgid(&tgid);

	if (!t)
		return;
	struct sock *sk = stash_take(STASH_SPLICE, NULL);
	if (sk)
		account_to(t, tgid, sk, ret, false);
}

SEC("tracepoint/syscalls/sys_enter_splice")
int tp_enter_splice(struct syscall_enter_ctx *ctx)
{
	splice_enter(ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_splice")
int tp_exit_splice(struct syscall_exit_ctx *ctx)
{
	splice_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendfile64")
int tp_enter_sendfile(struct syscall_enter_ctx *ctx)
{
	splice_enter(ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendfile64")
int tp_exit_sendfile(struct syscall_exit_ctx *ctx)
{
	splice_exit(ctx->ret);
	return 0;
}

/* ---- fentry backend (BTF, Linux 5.5+) ---------------------------------- */

SEC("fexit/tcp_sendmsg")
int BPF_PROG(fexit_tcp_sendmsg, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	account_btf(sk, ret, true);
	return 0;
}

/* sendfile and splice to a socket before Linux 6.5. */
SEC("fexit/tcp_sendpage")
int BPF_PROG(fexit_tcp_sendpage, struct sock *sk, struct page *page, int offset, size_t size,
	     int flags, int ret)
{
	account_btf(sk, ret, true);
	return 0;
}

/* Linux 5.19+: tcp_recvmsg(sk, msg, len, flags, addr_len). */
SEC("fexit/tcp_recvmsg")
int BPF_PROG(fexit_tcp_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int flags,
	     int *addr_len, int ret)
{
	if (!(flags & MSG_PEEK))
		account_btf(sk, ret, false);
	return 0;
}

/* Newer kernels (6.18 here): tcp_recvmsg(sk, msg, len, flags), no addr_len. */
SEC("fexit/tcp_recvmsg")
int BPF_PROG(fexit_tcp_recvmsg_noaddrlen, struct sock *sk, struct msghdr *msg, size_t len,
	     int flags, int ret)
{
	if (!(flags & MSG_PEEK))
		account_btf(sk, ret, false);
	return 0;
}

/* Before 5.19: tcp_recvmsg(sk, msg, len, nonblock, flags, addr_len). */
SEC("fexit/tcp_recvmsg")
int BPF_PROG(fexit_tcp_recvmsg_nonblock, struct sock *sk, struct msghdr *msg, size_t len,
	     int nonblock, int flags, int *addr_len, int ret)
{
	if (!(flags & MSG_PEEK))
		account_btf(sk, ret, false);
	return 0;
}

/*
 * Splice from a socket (splice, sendfile, io_uring). tcp_splice_read rather
 * than tcp_read_sock: the latter also serves in-kernel readers (strparser,
 * sunrpc, nvme-tcp) from softirq context, where `current` is whatever task
 * was interrupted.
 */
SEC("fexit/tcp_splice_read")
int BPF_PROG(fexit_tcp_splice_read, struct socket *sock, loff_t *ppos,
	     struct pipe_inode_info *pipe, size_t len, unsigned int flags, ssize_t ret)
{
	account_btf(sock->sk, ret, false);
	return 0;
}

/* ---- kprobe backend ------------------------------------------------------ */

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(kp_tcp_sendmsg, struct sock *sk)
{
	if (current_tracked())
		stash_put(sk, 0, STASH_SEND);
	return 0;
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(krp_tcp_sendmsg, int ret)
{
	struct sock *sk = stash_take(STASH_SEND, NULL);

	account(sk, ret, true);
	return 0;
}

SEC("kprobe/tcp_sendpage")
int BPF_KPROBE(kp_tcp_sendpage, struct sock *sk)
{
	if (current_tracked())
		stash_put(sk, 0, STASH_SEND);
	return 0;
}

SEC("kretprobe/tcp_sendpage")
int BPF_KRETPROBE(krp_tcp_sendpage, int ret)
{
	struct sock *sk = stash_take(STASH_SEND, NULL);

	account(sk, ret, true);
	return 0;
}

SEC("kprobe/tcp_recvmsg")
int BPF_KPROBE(kp_tcp_recvmsg, struct sock *sk, struct msghdr *msg, size_t len, int flags)
{
	if (current_tracked())
		stash_put(sk, flags, STASH_RECV);
	return 0;
}

SEC("kprobe/tcp_recvmsg")
int BPF_KPROBE(kp_tcp_recvmsg_nonblock, struct sock *sk, struct msghdr *msg, size_t len,
	       int nonblock, int flags)
{
	if (current_tracked())
		stash_put(sk, flags, STASH_RECV);
	return 0;
}

SEC("kretprobe/tcp_recvmsg")
int BPF_KRETPROBE(krp_tcp_recvmsg, int ret)
{
	__u32 flags = 0;
	struct sock *sk = stash_take(STASH_RECV, &flags);

	if (!(flags & MSG_PEEK))
		account(sk, ret, false);
	return 0;
}

SEC("kprobe/tcp_splice_read")
int BPF_KPROBE(kp_tcp_splice_read, struct socket *sock)
{
	if (current_tracked())
		stash_put(BPF_CORE_READ(sock, sk), 0, STASH_SPLICE);
	return 0;
}

SEC("kretprobe/tcp_splice_read")
int BPF_KRETPROBE(krp_tcp_splice_read, long ret)
{
	struct sock *sk = stash_take(STASH_SPLICE, NULL);

	account(sk, ret, false);
	return 0;
}

/* ---- process lifecycle (every backend) ------------------------------------ */

static __always_inline void emit(__u32 kind, __u32 tgid, __u32 ppid, struct tracked *t,
				 __u32 matched, const char *filename)
{
	struct lifecycle_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		stat_add(STAT_EVENTS_DROPPED, 1);
		return;
	}
	e->kind = kind;
	e->tgid = tgid;
	e->ppid = ppid;
	e->gen = t ? t->gen : 0;
	e->target = t ? t->target : 0;
	e->matched = matched;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->filename[0] = 0;
	if (filename)
		bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	bpf_ringbuf_submit(e, 0);
}

/* Puts t in `tracked` for tgid, keeping its slot's count (see track_slots):
 * one more for a new entry, the same for a replaced one; either way the
 * slot's epoch moves on. Userspace (Probes::track) does the same steps. */
static __always_inline bool track_insert(__u32 tgid, struct tracked *t)
{
	__u64 *slot = track_slot(tgid);
	bool ok = true;

	__sync_fetch_and_add(slot, SLOT_ONE);
	if (bpf_map_update_elem(&tracked, &tgid, t, BPF_NOEXIST) == 0)
		goto done;
	if (bpf_map_update_elem(&tracked, &tgid, t, BPF_EXIST) == 0) {
		__sync_fetch_and_add(slot, -SLOT_ONE);
		goto done;
	}
	/* Deleted in between, or the map is full. */
	if (bpf_map_update_elem(&tracked, &tgid, t, BPF_NOEXIST) == 0)
		goto done;
	__sync_fetch_and_add(slot, -SLOT_ONE);
	ok = false;
done:
	__sync_fetch_and_add(slot, SLOT_EPOCH_STEP);
	return ok;
}

/* Drops tgid from `tracked`; its slot's count after the entry is gone. */
static __always_inline void track_delete(__u32 tgid)
{
	if (bpf_map_delete_elem(&tracked, &tgid) == 0)
		__sync_fetch_and_add(track_slot(tgid), SLOT_EPOCH_STEP - SLOT_ONE);
}

/* Starts tracking tgid under target with a fresh generation, and creates
 * its fallback traffic entry. Returns false when the map is full. */
static __always_inline bool track(__u32 tgid, __u32 target, struct tracked *out)
{
	struct tracked t = { .target = target };
	struct traffic_key key = {};
	struct traffic_val zero = {};

	__u32 zero_idx = 0;
	__u32 *counter = bpf_map_lookup_elem(&gens, &zero_idx);

	if (!counter)
		return false;
	*counter += 1;
	t.gen = ((*counter << 8) | (bpf_get_smp_processor_id() & 0xff)) & 0x7fffffff;
	*out = t;
	if (!track_insert(tgid, &t)) {
		stat_add(STAT_TRACK_FULL, 1);
		return false;
	}
	key.tgid = tgid;
	key.gen = t.gen;
	key.target = target;
	key.family = PEER_OTHER;
	bpf_map_update_elem(&traffic, &key, &zero, BPF_NOEXIST);
	return true;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(raw_tp_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	struct tracked *pt, t = {};

	if (ptgid == ctgid)
		return 0; /* a new thread: already counted under its group */
	pt = bpf_map_lookup_elem(&tracked, &ptgid);
	if (!pt)
		return 0;
	if (!track(ctgid, pt->target, &t))
		t.gen = 0;
	emit(EV_FORK, ctgid, ptgid, &t, 0, NULL);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(raw_tp_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct comm_key ck = {};
	struct tracked *cur, t = {};
	__u32 *target;

	bpf_get_current_comm(ck.comm, sizeof(ck.comm));
	__u32 matched = MATCH_NAME;

	target = bpf_map_lookup_elem(&names, &ck);
	if (!target) {
		matched = MATCH_CGROUP;
		/* systemd forks, moves the child into the unit's cgroup, then
		 * execs: the exec is where a unit's process is first seen. */
		__u64 cg = bpf_get_current_cgroup_id();

		target = bpf_map_lookup_elem(&cgroups, &cg);
	}
	cur = bpf_map_lookup_elem(&tracked, &tgid);
	if (target) {
		if (cur && cur->target == *target) {
			t = *cur;
		} else if (!track(tgid, *target, &t)) {
			t.gen = 0;
		}
		emit(EV_EXEC, tgid, 0, &t, matched, BPF_CORE_READ(bprm, filename));
	} else if (cur) {
		/* Still the same process, still the target's: what a database
		 * child execs (COPY ... PROGRAM, archive_command) stays counted. */
		t = *cur;
		emit(EV_EXEC, tgid, 0, &t, 0, BPF_CORE_READ(bprm, filename));
	}
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(raw_tp_exit, struct task_struct *p)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tracked *cur, t = {};

	/* Fires per thread; signal->live reaches 0 for the group's last one. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	cur = bpf_map_lookup_elem(&tracked, &tgid);
	if (!cur)
		return 0;
	t = *cur;
	track_delete(tgid);
	emit(EV_EXIT, tgid, 0, &t, 0, NULL);
	return 0;
}
