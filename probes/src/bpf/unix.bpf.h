/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unix stream and seqpacket sockets (docs/kernels.md, "Unix sockets"): a
 * tracked process's bytes on them, keyed by the process at the other end as
 * the socket's credentials name it. Always the hash path: a local client is
 * one key per process, and the socket path's drains are TCP's. Datagram
 * sockets (journald's, syslog's) carry logs, not a database's traffic, and
 * are not counted.
 */
#ifndef NETIO_UNIX_BPF_H
#define NETIO_UNIX_BPF_H

/* Whether netio counts the socket's bytes as Unix traffic. */
static __always_inline bool is_unix_stream(struct sock *sk)
{
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
		return false;
	__u16 type = BPF_CORE_READ(sk, sk_type);

	return type == SOCK_STREAM || type == SOCK_SEQPACKET;
}

/* The socket's peer process into the key (netio.h, struct unix_peer): its
 * PID and effective uid from the credentials connect() or socketpair() left,
 * and the start time of the thread group leader the PID still names, if it
 * names one. */
static __always_inline struct task_struct *read_unix_peer(struct sock *sk,
							  struct traffic_key *key)
{
	struct unix_peer p = {};
	struct task_struct *task = NULL;
	struct pid *pid = BPF_CORE_READ(sk, sk_peer_pid);

	if (pid) {
		struct hlist_node *leader = BPF_CORE_READ(pid, tasks[PIDTYPE_TGID].first);

		p.pid = BPF_CORE_READ(pid, numbers[0].nr);
		if (leader) {
			task = (void *)leader -
			       bpf_core_field_offset(struct task_struct, pid_links[PIDTYPE_TGID]);
			p.started_ns = BPF_CORE_READ(task, start_boottime);
		}
	}
	p.uid = BPF_CORE_READ(sk, sk_peer_cred, euid.val);
	key->family = PEER_UNIX;
	__builtin_memcpy(key->addr, &p, sizeof(p));
	return task;
}

/* Names the peer process of a counter just made, while it lives: a client
 * that exits within the interval is named all the same (docs/records.md,
 * "Local clients"). Once per counter, so as often as peers come. */
static __always_inline void emit_unix_peer(const struct traffic_key *key, struct task_struct *peer)
{
	struct lifecycle_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	struct unix_peer p;

	if (!e) {
		stat_add(STAT_EVENTS_DROPPED, 1);
		return;
	}
	__builtin_memcpy(&p, key->addr, sizeof(p));
	e->kind = EV_UNIX_PEER;
	e->tgid = p.pid;
	e->ppid = key->tgid;
	e->gen = key->gen;
	e->target = key->target;
	e->matched = 0;
	e->comm[0] = 0;
	if (peer)
		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), &peer->comm);
	e->filename[0] = 0;
	e->uid = p.uid;
	e->exe_dev = 0;
	e->exe_ino = 0;
	e->started_ns = p.started_ns;
	bpf_ringbuf_submit(e, 0);
}

/* Adds a tracked process's bytes on a Unix stream or seqpacket socket;
 * nothing for any other socket. */
static __always_inline void count_unix(struct tracked *t, __u32 tgid, struct sock *sk,
				       __s64 bytes, bool sent)
{
	struct traffic_key key = { .tgid = tgid };
	struct traffic_val zero = {};
	struct traffic_val *v;
	struct task_struct *peer;

	if (!is_unix_stream(sk))
		return;
	peer = read_unix_peer(sk, &key);
	key_of(t, &key);
	v = bpf_map_lookup_elem(&traffic, &key);
	if (!v && bpf_map_update_elem(&traffic, &key, &zero, BPF_NOEXIST) == 0)
		emit_unix_peer(&key, peer);
	count_key_at(v, &key, sent ? bytes : 0, sent ? 0 : bytes);
}

/* account() for a Unix socket's hooks (kprobe and syscall tracepoint
 * programs): only tracked processes' bytes count. */
static __always_inline void account_unix(struct sock *sk, __s64 bytes, bool sent)
{
	struct tracked *t;
	__u32 tgid;

	if (bytes <= 0 || !sk)
		return;
	t = tracked_tgid(&tgid);
	if (t)
		count_unix(t, tgid, sk, bytes, sent);
}

#endif
