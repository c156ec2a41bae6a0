/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Whose socket it is (docs/kernels.md, "Whose bytes"): a socket a tracked
 * process accepts, connects or first moves bytes on is owned by it, in
 * `sk_owners`; bytes an untracked process moves on an owned socket (passed
 * to it over SCM_RIGHTS, taken with pidfd_getfd) count for the owner's
 * target under a key naming the mover (netio.h, enum netio_owner). The
 * owned buckets in front of the map keep that check to one load for an
 * untracked process on a socket nobody tracked owns.
 */
#ifndef NETIO_OWNER_BPF_H
#define NETIO_OWNER_BPF_H

/* A socket's owner, and the peer it had then: a socket connected elsewhere
 * since is not the owner's any more until it owns it again. */
struct sk_owner {
	__u32 tgid;
	__u32 gen;
	__u32 target;
	__u32 bucket;
	__u32 peer;	/* the peer address's last word (all of it for IPv4) */
	__u16 dport;
	__u16 family;
	/* The loopback client that connected it (local.bpf.h), 0 if none. */
	__u32 client_pid;
	__u32 client_pad;
	__u64 client_started_ns;
};

/* Socket (its address) -> owner; sized by the loader, fill counted
 * (STAT_OWNER_FULL). Entries go when their socket is destroyed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct sk_owner);
} sk_owners SEC(".maps");

/* Owned sockets per bucket of (peer, port); only ever changed atomically. */
__u32 owned_buckets[OWNED_BUCKETS];

/* A bucket by index, bounded where it is used (the verifier loses a bound
 * an index kept in a struct had). */
static __always_inline __u32 *bucket_at(__u32 i)
{
	i &= OWNED_BUCKETS - 1;
	barrier_var(i);
	i &= OWNED_BUCKETS - 1;
	return &owned_buckets[i];
}

static __always_inline __u32 owner_bucket(__u32 peer, __u16 dport)
{
	__u32 h = (peer ^ (((__u32)dport << 16) | dport)) * 0x9E3779B1u;

	return (h >> OWNED_BUCKET_SHIFT) & (OWNED_BUCKETS - 1);
}

/* The socket's family, and the peer word and port its bucket is of; false
 * for what is not IPv4 or IPv6. Through helpers, for any socket pointer. */
static __always_inline bool owner_peer(struct sock *sk, __u16 *family, __u32 *peer, __u16 *dport)
{
	*family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (*family == AF_INET)
		*peer = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	else if (*family == AF_INET6)
		*peer = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32[3]);
	else
		return false;
	*dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	return true;
}

/* Whether an owned socket may be in the socket's bucket: plain loads, for
 * a socket held as a BTF pointer. */
static __always_inline bool maybe_owned_btf(struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;
	__u32 peer;

	if (family == AF_INET)
		peer = sk->__sk_common.skc_daddr;
	else if (family == AF_INET6)
		peer = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
	else
		return false;
	return *bucket_at(owner_bucket(peer, sk->__sk_common.skc_dport)) != 0;
}

/* The same through helpers (kprobe and syscall tracepoint programs). */
static __always_inline bool maybe_owned(struct sock *sk)
{
	__u16 family, dport;
	__u32 peer;

	if (!sk || !owner_peer(sk, &family, &peer, &dport))
		return false;
	return *bucket_at(owner_bucket(peer, dport)) != 0;
}

/* Tells userspace the name of the loopback client at the other end of a
 * socket `owner` (its key's process) now owns: once per connection, so a
 * client that exits within the interval is named all the same. */
static __always_inline void emit_local_client(const struct local_client *who, __u32 owner,
					      const struct sk_owner *o)
{
	struct lifecycle_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		stat_add(STAT_EVENTS_DROPPED, 1);
		return;
	}
	e->kind = EV_LOCAL_CLIENT;
	e->tgid = who->pid;
	e->ppid = owner;
	e->gen = o->gen;
	e->target = o->target;
	e->matched = 0;
	__builtin_memcpy(e->comm, who->comm, sizeof(e->comm));
	e->filename[0] = 0;
	e->uid = who->uid;
	e->exe_dev = 0;
	e->exe_ino = 0;
	e->started_ns = who->started_ns;
	bpf_ringbuf_submit(e, 0);
}

/* The owner entry's client, from the connection the socket has now. */
static __always_inline const struct local_client *take_client(struct sock *sk, struct sk_owner *o)
{
	const struct local_client *who = local_client_of(sk);

	if (who) {
		o->client_pid = who->pid;
		o->client_started_ns = who->started_ns;
	}
	return who;
}

/*
 * Makes the tracked process `t` (thread group tgid) the socket's owner,
 * unless it has one for its present peer: the first owner stands. The
 * bucket counts the socket before its entry exists, so no check that finds
 * the entry can have passed it over.
 */
static __always_inline void own_socket(struct sock *sk, __u32 tgid, struct tracked *t)
{
	struct sk_owner o = { .tgid = tgid };
	const struct local_client *who;
	struct sk_owner *old;
	__u64 k = (__u64)sk;

	if (!sk || !t || !owner_peer(sk, &o.family, &o.peer, &o.dport))
		return;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return;
	o.gen = t->gen;
	o.target = tracked_target(t->target);
	o.bucket = owner_bucket(o.peer, o.dport);
	old = bpf_map_lookup_elem(&sk_owners, &k);
	if (old) {
		__u32 was = old->bucket;

		if (old->peer == o.peer && old->dport == o.dport && old->family == o.family)
			return;
		/* Connected elsewhere since it was owned: owned anew. */
		who = take_client(sk, &o);
		__sync_fetch_and_add(bucket_at(o.bucket), 1);
		if (bpf_map_update_elem(&sk_owners, &k, &o, BPF_EXIST) == 0) {
			__sync_fetch_and_add(bucket_at(was), -1);
			if (who)
				emit_local_client(who, tgid, &o);
		} else {
			__sync_fetch_and_add(bucket_at(o.bucket), -1);
		}
		return;
	}
	who = take_client(sk, &o);
	__sync_fetch_and_add(bucket_at(o.bucket), 1);
	if (bpf_map_update_elem(&sk_owners, &k, &o, BPF_NOEXIST) == 0) {
		if (who)
			emit_local_client(who, tgid, &o);
		return;
	}
	__sync_fetch_and_add(bucket_at(o.bucket), -1);
	/* Another thread made it meanwhile, or the map is full. */
	if (!bpf_map_lookup_elem(&sk_owners, &k))
		stat_add(STAT_OWNER_FULL, 1);
}

/* Owns the socket a tracked process moves bytes on, where its bucket shows
 * no owned socket (the hash path through helpers: a socket the process had
 * before netio started, or was passed). The bucket's load when it has one. */
static __always_inline void own_on_first_byte(struct sock *sk, __u32 tgid, struct tracked *t)
{
	if (!maybe_owned(sk))
		own_socket(sk, tgid, t);
}

/* A loopback peer in `key` becomes the client process the owner entry `o`
 * (the socket's, for the peer it has now) names, if it names one. */
static __always_inline void name_client(const struct sk_owner *o, struct traffic_key *key)
{
	struct local_peer p = {};

	if (!o->client_pid)
		return;
	p.pid = o->client_pid;
	p.started_ns = o->client_started_ns;
	if (key->family == PEER_INET) {
		__builtin_memcpy(&p.addr4, key->addr, 4);
		key->family = PEER_LOCAL4;
	} else if (key->family == PEER_INET6) {
		key->family = PEER_LOCAL6;
	} else {
		return;
	}
	__builtin_memcpy(key->addr, &p, sizeof(p));
}

/* Whether the peer in `key` is a loopback address: only those sockets have
 * a client to name, so no other event pays the owner lookup. */
static __always_inline bool loopback_key(const struct traffic_key *key)
{
	__u32 w[4];

	__builtin_memcpy(w, key->addr, sizeof(w));
	if (key->family == PEER_INET)
		return loopback4(w[0]);
	return key->family == PEER_INET6 && loopback6(w);
}

/* name_client() for a tracked process's socket, whose peer is `family`,
 * `peer` (its owner word) and `dport`: its owner entry, while it is for the
 * peer the socket has now. */
static __always_inline void name_by_owner(struct sock *sk, struct traffic_key *key, __u16 family,
					  __u32 peer, __u16 dport)
{
	__u64 k = (__u64)sk;
	struct sk_owner *o = bpf_map_lookup_elem(&sk_owners, &k);

	if (!o || peer != o->peer || dport != o->dport || family != o->family)
		return;
	name_client(o, key);
}

/* A loopback peer in `key` named by the socket's owner entry, through
 * helpers (kprobe and syscall tracepoint programs). */
static __always_inline void name_local_peer(struct sock *sk, struct traffic_key *key)
{
	__u16 family, dport;
	__u32 peer;

	if (loopback_key(key) && owner_peer(sk, &family, &peer, &dport))
		name_by_owner(sk, key, family, peer, dport);
}

/* The same for a socket held as a BTF pointer (tp_btf and fentry
 * programs): plain loads, no probe reads, on the hash path's every event
 * with a loopback peer. */
static __always_inline void name_local_peer_btf(struct sock *sk, struct traffic_key *key)
{
	__u16 family = sk->__sk_common.skc_family;
	__u32 peer;

	if (!loopback_key(key))
		return;
	if (family == AF_INET)
		peer = sk->__sk_common.skc_daddr;
	else
		peer = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
	name_by_owner(sk, key, family, peer, sk->__sk_common.skc_dport);
}

/* Tells userspace who moved bytes on an owned socket, once per counter. */
static __always_inline void emit_moved(const struct traffic_key *key, __u32 owner)
{
	struct lifecycle_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		stat_add(STAT_EVENTS_DROPPED, 1);
		return;
	}
	e->kind = EV_MOVED;
	e->tgid = key->tgid;
	e->ppid = owner;
	e->gen = key->gen;
	e->target = key->target & ~TARGET_MOVED;
	e->matched = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->filename[0] = 0;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->exe_dev = 0;
	e->exe_ino = 0;
	e->started_ns = 0;
	bpf_ringbuf_submit(e, 0);
}

/*
 * An untracked process (thread group tgid) moved `bytes` on `sk`: counted
 * for the socket's owner, if it has one and the same peer still, under the
 * mover's own key. Reached only past a bucket that has an owned socket.
 */
static __always_inline void account_moved(struct sock *sk, __u32 tgid, __s64 bytes, bool sent)
{
	struct traffic_key key = { .tgid = tgid };
	struct traffic_val zero = {};
	struct sk_owner *o;
	__u64 k = (__u64)sk;
	__u16 family, dport;
	__u32 peer, owner;

	if (bytes <= 0 || !sk)
		return;
	o = bpf_map_lookup_elem(&sk_owners, &k);
	if (!o)
		return;
	if (!owner_peer(sk, &family, &peer, &dport) || peer != o->peer || dport != o->dport ||
	    family != o->family)
		return;
	key.gen = o->gen;
	key.target = (o->target & ~TARGET_MOVED) | TARGET_MOVED;
	owner = o->tgid;
	read_peer(sk, &key);
	name_client(o, &key);
	if (!bpf_map_lookup_elem(&traffic, &key) &&
	    bpf_map_update_elem(&traffic, &key, &zero, BPF_NOEXIST) == 0)
		emit_moved(&key, owner);
	if (sent)
		count_key(&key, bytes, 0);
	else
		count_key(&key, 0, bytes);
}

/* The sockets a tracked process connects: tcp_v4_connect and
 * tcp_v6_connect set SYN_SENT in the connecting task, on every backend.
 * And every process's loopback connections, for their names (local.bpf.h). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tp_owner_connect, struct sock *sk, int oldstate, int newstate)
{
	__u32 tgid;
	struct tracked *t;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (oldstate == BPF_TCP_SYN_SENT) {
		local_handshake_done(sk, newstate == BPF_TCP_ESTABLISHED);
		return 0;
	}
	if (newstate == BPF_TCP_CLOSE) {
		local_close(sk);
		return 0;
	}
	if (newstate != BPF_TCP_SYN_SENT)
		return 0;
	local_connect(sk);
	t = tracked_tgid(&tgid);
	if (t)
		own_socket(sk, tgid, t);
	return 0;
}

/* A destroyed socket has no owner: its entry goes, and its bucket's count. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tp_owner_destroy, struct sock *sk)
{
	__u64 k = (__u64)sk;
	struct sk_owner *o = bpf_map_lookup_elem(&sk_owners, &k);
	__u32 b;

	if (!o)
		return 0;
	b = o->bucket;
	if (bpf_map_delete_elem(&sk_owners, &k) == 0)
		__sync_fetch_and_add(bucket_at(b), -1);
	return 0;
}

#endif
