/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The hash path (docs/kernels.md): an event's peer read from its socket,
 * its process looked up in `tracked`, and its bytes added to the (process,
 * peer) counter in `traffic`; and the loss counters in `stats`.
 */
#ifndef NETIO_COUNT_BPF_H
#define NETIO_COUNT_BPF_H

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

/* The socket's family, and its peer as it holds it: the IPv4 address in
 * w[0], or the four words of the IPv6 one. For a socket held as a BTF
 * pointer (tp_btf and fentry programs): plain loads, no probe reads. */
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

/* The calling process's tracking entry, or NULL, and its thread group id:
 * the one lookup every event of an untracked process pays. */
static __always_inline struct tracked *tracked_tgid(__u32 *tgid)
{
	*tgid = bpf_get_current_pid_tgid() >> 32;
	return tracked_get(tgid);
}

static __always_inline struct tracked *current_tracked(void)
{
	__u32 tgid;

	return tracked_tgid(&tgid);
}

/* The fallback counters of the target a key counts for (a mover's too). */
static __always_inline struct target_fallback *fallback_of(const struct traffic_key *key)
{
	__u32 idx = key->target & ~TARGET_MOVED;

	return bpf_map_lookup_elem(&target_fallback, &idx);
}

/* Marks the peer in `key` as one whose bytes no entry of its own took: a
 * bit per hash of the address, for a lower bound on the peers folded. */
static __always_inline void fold_peer(struct target_fallback *f, const struct traffic_key *key)
{
	__u32 w[4];

	__builtin_memcpy(w, key->addr, sizeof(w));
	__u32 h = (w[0] ^ w[1] ^ w[2] ^ w[3] ^ key->family) * 0x9E3779B1u;

	/* A plain OR (5.10 has no atomic one): two CPUs at once may lose a
	 * bit, which only lowers the bound. */
	f->peers_seen |= 1ULL << (h >> 26);
}

/* Adds to the counter of the process and peer in `key` (complete), `v` if
 * the caller looked it up already (NULL: not found). When the map is full,
 * to the process's PEER_OTHER entry, and when that is missing too, to its
 * target's fallback counters: the target's totals never lose a
 * byte (docs/kernels.md, "When the traffic map is full"). */
static __always_inline void count_key_at(struct traffic_val *v, struct traffic_key *key,
					 __u64 sent, __u64 received)
{
	if (!v) {
		struct traffic_val zero = {};

		bpf_map_update_elem(&traffic, key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&traffic, key);
	}
	if (!v) {
		struct target_fallback *f = fallback_of(key);

		if (f)
			fold_peer(f, key);
		/* The process's own fallback entry, created when it was
		 * tracked, keeps its totals exact. */
		stat_add(STAT_PEER_OVERFLOW, 1);
		key->family = PEER_OTHER;
		__builtin_memset(key->addr, 0, sizeof(key->addr));
		key->epoch = 0;
		v = bpf_map_lookup_elem(&traffic, key);
		if (!v && f) {
			/* Not even that: the target's totals stay exact. */
			__sync_fetch_and_add(&f->events, 1);
			if (sent)
				__sync_fetch_and_add(&f->sent, sent);
			if (received)
				__sync_fetch_and_add(&f->received, received);
			return;
		}
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

static __always_inline void count_key(struct traffic_key *key, __u64 sent, __u64 received)
{
	count_key_at(bpf_map_lookup_elem(&traffic, key), key, sent, received);
}

/* Fills in the process's generation, target and peer epoch, read from its
 * entry in this program run, as every add to its counters must
 * (docs/kernels.md, "Retiring idle peers"). */
static __always_inline void key_of(struct tracked *t, struct traffic_key *key)
{
	struct tracked now = tracked_load(t);

	key->gen = now.gen;
	key->target = tracked_target(now.target);
	key->epoch = tracked_epoch(now.target);
}

/* Adds `bytes` to the counter of the process `t` (thread group key->tgid)
 * and the peer already in `key`. */
static __always_inline void count(struct tracked *t, struct traffic_key *key, __s64 bytes,
				  bool sent)
{
	key_of(t, key);
	if (sent)
		count_key(key, bytes, 0);
	else
		count_key(key, 0, bytes);
}

static __always_inline void own_on_first_byte(struct sock *sk, __u32 tgid, struct tracked *t);
static __always_inline void name_local_peer(struct sock *sk, struct traffic_key *key);
static __always_inline void account_moved(struct sock *sk, __u32 tgid, __s64 bytes, bool sent);

static __always_inline void account_to(struct tracked *t, __u32 tgid, struct sock *sk, __s64 bytes,
				       bool sent)
{
	if (bytes <= 0 || !sk || !t)
		return;
	struct traffic_key key = { .tgid = tgid };

	read_peer(sk, &key);
	own_on_first_byte(sk, tgid, t);
	name_local_peer(sk, &key);
	count(t, &key, bytes, sent);
}

/* The hash path for a socket read through helpers (kprobe and syscall
 * tracepoint programs); an untracked process's bytes on an owned socket
 * (its entry program stashed the socket only where it may be owned). */
static __always_inline void account(struct sock *sk, __s64 bytes, bool sent)
{
	struct tracked *t;
	__u32 tgid;

	if (bytes <= 0)
		return;
	t = tracked_tgid(&tgid);
	if (t)
		account_to(t, tgid, sk, bytes, sent);
	else
		account_moved(sk, tgid, bytes, sent);
}

#endif
