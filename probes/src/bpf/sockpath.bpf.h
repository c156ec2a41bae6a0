/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The socket path (docs/kernels.md): an event of a tracked process adds to
 * its socket's own pending counters (`sk_accts`), trusted without a lookup
 * while the tracking slot's epoch they were confirmed at is current; the
 * drains move those counters into `traffic`. Also account_btf(), the entry
 * of every program that holds its socket as a BTF pointer, which takes the
 * hash path where the socket path is off, and for Unix sockets.
 */
#ifndef NETIO_SOCKPATH_BPF_H
#define NETIO_SOCKPATH_BPF_H

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
		struct tracked *t = tracked_get(&key.tgid);
		struct tracked now = {};

		/* The peer epoch of this run: the owner's, while it is tracked
		 * as the entry's generation; else one no retiring deletes. */
		if (t)
			now = tracked_load(t);
		key.epoch = now.gen == key.gen ? tracked_epoch(now.target) : PEER_EPOCH_AFTER;
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
	struct tracked *t = tracked_get(&tgid);

	if (!t) {
		/* Untracked, in the slot of a tracked process. */
		if (maybe_owned_btf(sk))
			account_moved(sk, tgid, bytes, sent);
		return;
	}
	if (!tcp_peer_btf(sk, &key)) {
		count_unix(t, tgid, sk, bytes, sent);
		return;
	}
	key_of(t, &key);
	if (!a) {
		/* Its first counted byte: owned, if not accepted or connected
		 * by a tracked process (it was before netio started, or passed);
		 * a loopback client named from then on, in the entry's key. */
		own_socket(sk, tgid, t);
		name_local_peer_btf(sk, &key);
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
	name_local_peer_btf(sk, &key);
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
	if (!(__u32)slot) {
		/* Untracked: one more load, unless the socket may be owned. */
		if (maybe_owned_btf(sk))
			account_moved(sk, tgid, bytes, sent);
		return;
	}
	if (sk_fast) {
		/* Only TCP sockets get storage (the slow path checks). */
		struct sk_acct *a = bpf_sk_storage_get(&sk_accts, sk, 0, 0);
		__u32 epoch = slot >> SLOT_EPOCH_SHIFT;

		if (a && a->tgid == tgid && a->epoch == epoch && same_peer(a, sk))
			acct_add(a, bytes, sent);
		else
			account_sk_slow(a, sk, tgid, epoch, bytes, sent);
		return;
	}
	key.tgid = tgid;
	t = tracked_get(&tgid);
	if (!t) {
		if (maybe_owned_btf(sk))
			account_moved(sk, tgid, bytes, sent);
		return;
	}
	if (tcp_peer_btf(sk, &key)) {
		if (!maybe_owned_btf(sk))
			own_socket(sk, tgid, t);
		name_local_peer_btf(sk, &key);
		count(t, &key, bytes, sent);
	} else {
		count_unix(t, tgid, sk, bytes, sent);
	}
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

#endif
