/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Loopback TCP clients named by process (docs/kernels.md, "Local TCP
 * clients"): a connection to a loopback address (127/8, ::1) is remembered,
 * by its client's address and port pair, as the process that called
 * connect(), from the end of its handshake until the client's socket
 * closes. A tracked process that owns the other end (owner.bpf.h) takes
 * the client into its socket's owner entry, and its bytes with that client
 * are keyed by address and client process, not by address alone.
 */
#ifndef NETIO_LOCAL_BPF_H
#define NETIO_LOCAL_BPF_H

/* Who connected: the thread group, as the kernel saw it in connect(). */
struct local_client {
	__u32 pid;
	__u32 uid;
	__u64 started_ns;
	char comm[NETIO_COMM_LEN];
};

/* A connection as its client holds it: IPv4 (IPv4-mapped IPv6 too) in word
 * 0 with family AF_INET; ports in host order. */
struct local_conn {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u32 family;
};

/* Client sockets (their address) from connect() to the end of the
 * handshake: the source port is picked after SYN_SENT is set, and the
 * handshake may end in softirq, in no task of the client's. Both maps are
 * sized by the loader; a full one is counted (STAT_LOCAL_FULL). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct local_client);
} local_connecting SEC(".maps");

/* Established loopback connections by their client's view, until the
 * client's socket closes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct local_conn);
	__type(value, struct local_client);
} local_clients SEC(".maps");

static __always_inline bool loopback4(__u32 addr)
{
	return (bpf_ntohl(addr) >> 24) == 127;
}

static __always_inline bool loopback6(const __u32 w[4])
{
	return w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == bpf_htonl(1);
}

static __always_inline bool mapped4(const __u32 w[4])
{
	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff);
}

/* The socket's connection as it holds it (local address and port first),
 * if its peer is a loopback address. Through helpers, for any socket. */
static __always_inline bool local_conn_of(struct sock *sk, struct local_conn *c)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	__builtin_memset(c, 0, sizeof(*c));
	if (family == AF_INET) {
		c->saddr[0] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		c->daddr[0] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	} else if (family == AF_INET6) {
		bpf_core_read(c->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(c->daddr, 16, &sk->__sk_common.skc_v6_daddr);
		if (mapped4(c->daddr)) {
			/* A dual-stack socket with an IPv4 peer: as the IPv4
			 * socket at the other end holds the pair. */
			family = AF_INET;
			c->saddr[0] = c->saddr[3];
			c->daddr[0] = c->daddr[3];
			c->saddr[1] = c->saddr[2] = c->saddr[3] = 0;
			c->daddr[1] = c->daddr[2] = c->daddr[3] = 0;
		}
	} else {
		return false;
	}
	c->family = family;
	c->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return family == AF_INET ? loopback4(c->daddr[0]) : loopback6(c->daddr);
}

/* Remembers the connecting process of a socket entering SYN_SENT towards a
 * loopback address: called in connect(), in the connecting task. */
static __always_inline void local_connect(struct sock *sk)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct local_client who = {};
	struct local_conn c;
	__u64 k = (__u64)sk;

	if (!local_conn_of(sk, &c))
		return;
	who.pid = bpf_get_current_pid_tgid() >> 32;
	who.uid = BPF_CORE_READ(task, real_cred, euid.val);
	who.started_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	bpf_get_current_comm(who.comm, sizeof(who.comm));
	if (bpf_map_update_elem(&local_connecting, &k, &who, BPF_ANY))
		stat_add(STAT_LOCAL_FULL, 1);
}

/* A client socket's handshake ended: established, its connecting process
 * goes under the connection's pair; failed, it is forgotten. */
static __always_inline void local_handshake_done(struct sock *sk, bool established)
{
	__u64 k = (__u64)sk;
	struct local_client *who = bpf_map_lookup_elem(&local_connecting, &k);
	struct local_conn c;

	if (!who)
		return;
	if (established && local_conn_of(sk, &c) &&
	    bpf_map_update_elem(&local_clients, &c, who, BPF_ANY))
		stat_add(STAT_LOCAL_FULL, 1);
	bpf_map_delete_elem(&local_connecting, &k);
}

/* A socket closes: if it was a loopback client, its connection is gone. */
static __always_inline void local_close(struct sock *sk)
{
	struct local_conn c;

	if (local_conn_of(sk, &c))
		bpf_map_delete_elem(&local_clients, &c);
}

/* The client at the other end of a tracked process's socket, if a loopback
 * client connected it while netio ran and has not closed it: the socket's
 * pair, turned round, is the client's. */
static __always_inline struct local_client *local_client_of(struct sock *sk)
{
	struct local_conn c, k;

	if (!local_conn_of(sk, &c))
		return NULL;
	__builtin_memcpy(k.saddr, c.daddr, sizeof(k.saddr));
	__builtin_memcpy(k.daddr, c.saddr, sizeof(k.daddr));
	k.sport = c.dport;
	k.dport = c.sport;
	k.family = c.family;
	return bpf_map_lookup_elem(&local_clients, &k);
}

#endif
