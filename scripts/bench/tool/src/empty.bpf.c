// SPDX-License-Identifier: GPL-2.0-only
/*
 * Baselines for the per-event cost of netio's tracepoint backend
 * (scripts/benchmark): programs on the same raw tracepoints as netio's
 * tp_sock_send_length / tp_sock_recv_length.
 *
 * empty_*: return at once. What the kernel's run-time statistics show for
 * them is the floor any program on the hook pays (mostly the statistics'
 * own clock reads).
 *
 * lookup_*: one hash lookup of the current thread group id in a map that
 * holds nothing, which is all netio's programs should do for a process
 * they do not track. Attached only with `bench-empty --lookup`.
 *
 * stage_*: the steps of netio's path for a tracked process, cumulatively,
 * on sock_send_length, to show where its time goes (`bench-empty
 * --stages`). Each does them for every event, tracked or not:
 *   stage_reads      the tgid lookup, then the socket reads of
 *                    is_inet_tcp() and read_peer() (bpf_probe_read_kernel
 *                    through BPF_CORE_READ, as a raw_tp program must);
 *   stage_count      and the per-CPU hash lookup of the (process, peer)
 *                    key and the atomic add, as account_to() does;
 *   stage_count_btf  the same as stage_count in a tp_btf program, where
 *                    the socket's fields are plain loads.
 * These are the steps of netio's hash path; its socket path is timed as
 * netio itself.
 *
 * storage_*: one lookup of the socket's local storage (made on the socket's
 * first event) and an atomic add to it, for every TCP event: the floor of
 * any design that keeps a counter per socket, as netio's socket path does,
 * without its check of whose the socket is.
 *
 * empty2_*: a second pair of empty programs, attached after empty_* to show
 * what a program costs when it runs right after another on the same hook.
 *
 * scripts/benchmark attaches each of them alone (`bench-empty
 * --only=NAME,...`): a program timed after others on its hook runs on
 * caches they warmed and looks cheaper than it is alone.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "netio.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} bench_tracked SEC(".maps");

SEC("raw_tp/sock_send_length")
int empty_send(void *ctx)
{
	return 0;
}

SEC("raw_tp/sock_recv_length")
int empty_recv(void *ctx)
{
	return 0;
}

SEC("raw_tp/sock_send_length")
int empty2_send(void *ctx)
{
	return 0;
}

SEC("raw_tp/sock_recv_length")
int empty2_recv(void *ctx)
{
	return 0;
}

static __always_inline int lookup_tgid(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 *v = bpf_map_lookup_elem(&bench_tracked, &tgid);

	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("raw_tp/sock_send_length")
int lookup_send(void *ctx)
{
	return lookup_tgid();
}

SEC("raw_tp/sock_recv_length")
int lookup_recv(void *ctx)
{
	return lookup_tgid();
}

/* ---- stages of the tracked path ------------------------------------------ */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct traffic_key);
	__type(value, struct traffic_val);
} bench_traffic SEC(".maps");

/* Where the stages leave what they read, so the compiler keeps the reads. */
__u64 sink;

static __always_inline bool stage_peer(struct sock *sk, struct traffic_key *key)
{
	if (!sk)
		return false;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return false;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return false;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		key->family = PEER_INET;
		bpf_core_read(key->addr, 4, &sk->__sk_common.skc_daddr);
	} else {
		key->family = PEER_INET6;
		bpf_core_read(key->addr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	return true;
}

static __always_inline void stage_add(struct traffic_key *key, int ret)
{
	struct traffic_val *v = bpf_map_lookup_elem(&bench_traffic, key);

	if (!v) {
		struct traffic_val zero = {};

		bpf_map_update_elem(&bench_traffic, key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&bench_traffic, key);
	}
	if (v)
		__sync_fetch_and_add(&v->sent, ret);
}

SEC("raw_tp/sock_send_length")
int BPF_PROG(stage_reads, struct sock *sk, int ret, int flags)
{
	struct traffic_key key = {};

	lookup_tgid();
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	if (ret > 0 && stage_peer(sk, &key))
		sink = key.addr[0] + key.family;
	return 0;
}

SEC("raw_tp/sock_send_length")
int BPF_PROG(stage_count, struct sock *sk, int ret, int flags)
{
	struct traffic_key key = {};

	lookup_tgid();
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	if (ret > 0 && stage_peer(sk, &key))
		stage_add(&key, ret);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(stage_count_btf, struct sock *sk, int ret, int flags)
{
	struct traffic_key key = {};

	lookup_tgid();
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	if (ret <= 0 || !sk)
		return 0;
	__u16 family = sk->__sk_common.skc_family;
	if ((family != AF_INET && family != AF_INET6) || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (family == AF_INET) {
		key.family = PEER_INET;
		__builtin_memcpy(key.addr, &sk->__sk_common.skc_daddr, 4);
	} else {
		key.family = PEER_INET6;
		__builtin_memcpy(key.addr, &sk->__sk_common.skc_v6_daddr, 16);
	}
	stage_add(&key, ret);
	return 0;
}

/* ---- the socket path's floor --------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct traffic_val);
} bench_storage SEC(".maps");

static __always_inline void storage_add(struct sock *sk, int ret, bool sent)
{
	struct traffic_val *v;

	if (ret <= 0 || !sk || sk->sk_protocol != IPPROTO_TCP)
		return;
	v = bpf_sk_storage_get(&bench_storage, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!v)
		return;
	if (sent)
		__sync_fetch_and_add(&v->sent, ret);
	else
		__sync_fetch_and_add(&v->received, ret);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(storage_send, struct sock *sk, int ret, int flags)
{
	storage_add(sk, ret, true);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(storage_recv, struct sock *sk, int ret, int flags)
{
	storage_add(sk, ret, false);
	return 0;
}
