// SPDX-License-Identifier: GPL-2.0-only
/*
 * netio's kernel side: per-process, per-peer TCP byte counters. This file
 * holds the counting hooks, by backend; docs/kernels.md says what each
 * counts and why.
 *
 * One object holds every backend. The loader turns autoload off for all
 * counting programs but those of the backend it picked, so only they are
 * relocated and loaded; each kernel-version variant of a hook is its own
 * named program.
 *
 * What is counted: the positive return of every send and receive on a TCP
 * or Unix stream or seqpacket socket by a tracked thread group; MSG_PEEK
 * reads consume nothing and count nothing. Never tcp_cleanup_rbuf's `copied`: it is a running total that
 * recvmsg passes again on every wake-up of a blocking read.
 *
 *   netio.h          the contract with the Rust loader
 *   maps.bpf.h       every map and global
 *   count.bpf.h      the hash path: peers, the (process, peer) counters, loss stats
 *   local.bpf.h      loopback TCP connections: which process connected each
 *   owner.bpf.h      whose socket it is: bytes untracked processes move on it,
 *                    and the loopback client at its other end
 *   unix.bpf.h       Unix stream and seqpacket sockets: the peer process
 *   sockpath.bpf.h   the socket path: track slots, socket-local counters, drains
 *   lifecycle.bpf.h  tracking at fork, exec and exit
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "netio.h"

char LICENSE[] SEC("license") = "GPL";

#include "maps.bpf.h"
#include "count.bpf.h"
#include "local.bpf.h"
#include "owner.bpf.h"
#include "unix.bpf.h"
#include "sockpath.bpf.h"

/* Anchors so the contract's structs and enums land in the skeleton's BTF
 * for Rust. The enums' are tentative definitions: they go after the other
 * globals in .bss and move none of them. */
struct lifecycle_event _lifecycle_event = {};
struct traffic_key _traffic_key = {};
struct traffic_val _traffic_val = {};
struct target_fallback _target_fallback = {};
struct tracked _tracked = {};
struct comm_key _comm_key = {};
struct uid_key _uid_key = {};
struct unix_peer _unix_peer = {};
struct local_peer _local_peer = {};
enum netio_len _netio_len;
enum netio_peer _netio_peer;
enum netio_gen _netio_gen;
enum netio_slot _netio_slot;
enum netio_stat _netio_stat;
enum netio_match _netio_match;
enum netio_event_kind _netio_event_kind;
enum netio_stash_kind _netio_stash_kind;
enum netio_uid _netio_uid;
enum netio_owner _netio_owner;
enum netio_peer_epoch _netio_peer_epoch;

/* ---- tracepoint backend (Linux 6.3+) ---------------------------------- */

/* tp_btf, not raw_tp: the socket is a BTF pointer, read with plain loads
 * (docs/kernels.md, "Backends"). */

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

/* The TCP or Unix stream socket a descriptor names, or NULL; *unix says
 * which. A Unix seqpacket socket has no splice_read of its own: splice
 * reads it through recvmsg, which sock_recv_length sees. */
static __always_inline struct sock *counted_sock_of_fd(__u64 fd, bool *unix)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;

	*unix = false;
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

	if (is_inet_tcp(sk))
		return sk;
	*unix = true;
	if (is_unix_stream(sk) && BPF_CORE_READ(sk, sk_type) == SOCK_STREAM)
		return sk;
	return NULL;
}

static __always_inline struct sock *tcp_sock_of_fd(__u64 fd)
{
	bool unix;
	struct sock *sk = counted_sock_of_fd(fd, &unix);

	return unix ? NULL : sk;
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

/* The stash's flags for a splice from a Unix socket. */
#define SPLICE_FROM_UNIX 1

static __always_inline void splice_enter(__u64 fd)
{
	struct tracked *t = current_tracked();
	bool unix;
	struct sock *sk = counted_sock_of_fd(fd, &unix);

	if (!sk)
		return;
	if (unix) {
		if (t)
			stash_put(sk, SPLICE_FROM_UNIX, STASH_SPLICE);
		return;
	}
	/* An untracked process's splice, too, where its socket may be owned. */
	if (t || maybe_owned(sk))
		stash_put(sk, 0, STASH_SPLICE);
}

static __always_inline void splice_exit(__s64 ret)
{
	__u32 flags = 0;
	struct sock *sk = stash_take(STASH_SPLICE, &flags);

	if (sk && flags == SPLICE_FROM_UNIX)
		account_unix(sk, ret, false);
	else if (sk)
		account(sk, ret, false);
}

/* The sockets a tracked process accepts, owned before their first byte:
 * the new descriptor is the syscall's return. */
static __always_inline void accept_exit(__s64 fd)
{
	__u32 tgid;
	struct tracked *t = tracked_tgid(&tgid);

	if (t && fd >= 0)
		own_socket(tcp_sock_of_fd(fd), tgid, t);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_exit_accept4(struct syscall_exit_ctx *ctx)
{
	accept_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_exit_accept(struct syscall_exit_ctx *ctx)
{
	accept_exit(ctx->ret);
	return 0;
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

/* Splice from a socket (splice, sendfile, io_uring). tcp_splice_read, not
 * tcp_read_sock: docs/kernels.md says why. */
SEC("fexit/tcp_splice_read")
int BPF_PROG(fexit_tcp_splice_read, struct socket *sock, loff_t *ppos,
	     struct pipe_inode_info *pipe, size_t len, unsigned int flags, ssize_t ret)
{
	account_btf(sock->sk, ret, false);
	return 0;
}

/* The sockets a tracked process accepts (fentry and kprobe backends), by
 * inet_csk_accept's signature: (sk, arg) from 6.10, (sk, flags, err, kern)
 * before. */
SEC("fexit/inet_csk_accept")
int BPF_PROG(fexit_inet_csk_accept, struct sock *sk, void *arg, struct sock *ret)
{
	__u32 tgid;
	struct tracked *t = tracked_tgid(&tgid);

	if (t && ret)
		own_socket(ret, tgid, t);
	return 0;
}

SEC("fexit/inet_csk_accept")
int BPF_PROG(fexit_inet_csk_accept_flags, struct sock *sk, int flags, int *err, bool kern,
	     struct sock *ret)
{
	__u32 tgid;
	struct tracked *t = tracked_tgid(&tgid);

	if (t && ret)
		own_socket(ret, tgid, t);
	return 0;
}

/* Unix stream and seqpacket sockets (unix.bpf.h), by their proto_ops: the
 * same signatures on every kernel netio supports. A seqpacket socket's
 * splice reads through recvmsg, and its sendfile writes through sendmsg. */
SEC("fexit/unix_stream_sendmsg")
int BPF_PROG(fexit_unix_stream_sendmsg, struct socket *sock, struct msghdr *msg, size_t len,
	     int ret)
{
	account_btf(sock->sk, ret, true);
	return 0;
}

SEC("fexit/unix_stream_recvmsg")
int BPF_PROG(fexit_unix_stream_recvmsg, struct socket *sock, struct msghdr *msg, size_t size,
	     int flags, int ret)
{
	if (!(flags & MSG_PEEK))
		account_btf(sock->sk, ret, false);
	return 0;
}

SEC("fexit/unix_seqpacket_sendmsg")
int BPF_PROG(fexit_unix_seqpacket_sendmsg, struct socket *sock, struct msghdr *msg, size_t len,
	     int ret)
{
	account_btf(sock->sk, ret, true);
	return 0;
}

SEC("fexit/unix_seqpacket_recvmsg")
int BPF_PROG(fexit_unix_seqpacket_recvmsg, struct socket *sock, struct msghdr *msg, size_t size,
	     int flags, int ret)
{
	if (!(flags & MSG_PEEK))
		account_btf(sock->sk, ret, false);
	return 0;
}

SEC("fexit/unix_stream_splice_read")
int BPF_PROG(fexit_unix_stream_splice_read, struct socket *sock, loff_t *ppos,
	     struct pipe_inode_info *pipe, size_t size, unsigned int flags, ssize_t ret)
{
	account_btf(sock->sk, ret, false);
	return 0;
}

/* sendfile and splice to a Unix stream socket before Linux 6.5. */
SEC("fexit/unix_stream_sendpage")
int BPF_PROG(fexit_unix_stream_sendpage, struct socket *sock, struct page *page, int offset,
	     size_t size, int flags, ssize_t ret)
{
	account_btf(sock->sk, ret, true);
	return 0;
}

/* ---- kprobe backend ------------------------------------------------------ */

/* An untracked process's call is stashed only where its socket may be
 * owned (owner.bpf.h). */

SEC("kretprobe/inet_csk_accept")
int BPF_KRETPROBE(krp_inet_csk_accept, struct sock *ret)
{
	__u32 tgid;
	struct tracked *t = tracked_tgid(&tgid);

	if (t && ret)
		own_socket(ret, tgid, t);
	return 0;
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(kp_tcp_sendmsg, struct sock *sk)
{
	if (current_tracked() || maybe_owned(sk))
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
	if (current_tracked() || maybe_owned(sk))
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
	if (current_tracked() || maybe_owned(sk))
		stash_put(sk, flags, STASH_RECV);
	return 0;
}

SEC("kprobe/tcp_recvmsg")
int BPF_KPROBE(kp_tcp_recvmsg_nonblock, struct sock *sk, struct msghdr *msg, size_t len,
	       int nonblock, int flags)
{
	if (current_tracked() || maybe_owned(sk))
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
	struct sock *sk = BPF_CORE_READ(sock, sk);

	if (current_tracked() || maybe_owned(sk))
		stash_put(sk, 0, STASH_SPLICE);
	return 0;
}

SEC("kretprobe/tcp_splice_read")
int BPF_KRETPROBE(krp_tcp_splice_read, long ret)
{
	struct sock *sk = stash_take(STASH_SPLICE, NULL);

	account(sk, ret, false);
	return 0;
}

/* Unix stream and seqpacket sockets: only a tracked process's calls are
 * stashed (no untracked process's bytes count on them). */
static __always_inline void unix_enter(struct socket *sock, __u32 flags, __u32 kind)
{
	if (current_tracked())
		stash_put(BPF_CORE_READ(sock, sk), flags, kind);
}

static __always_inline void unix_return(long ret, __u32 kind, bool sent)
{
	__u32 flags = 0;
	struct sock *sk = stash_take(kind, &flags);

	if (!(flags & MSG_PEEK))
		account_unix(sk, ret, sent);
}

SEC("kprobe/unix_stream_sendmsg")
int BPF_KPROBE(kp_unix_stream_sendmsg, struct socket *sock)
{
	unix_enter(sock, 0, STASH_SEND);
	return 0;
}

SEC("kretprobe/unix_stream_sendmsg")
int BPF_KRETPROBE(krp_unix_stream_sendmsg, int ret)
{
	unix_return(ret, STASH_SEND, true);
	return 0;
}

SEC("kprobe/unix_stream_recvmsg")
int BPF_KPROBE(kp_unix_stream_recvmsg, struct socket *sock, struct msghdr *msg, size_t size,
	       int flags)
{
	unix_enter(sock, flags, STASH_RECV);
	return 0;
}

SEC("kretprobe/unix_stream_recvmsg")
int BPF_KRETPROBE(krp_unix_stream_recvmsg, int ret)
{
	unix_return(ret, STASH_RECV, false);
	return 0;
}

SEC("kprobe/unix_seqpacket_sendmsg")
int BPF_KPROBE(kp_unix_seqpacket_sendmsg, struct socket *sock)
{
	unix_enter(sock, 0, STASH_SEND);
	return 0;
}

SEC("kretprobe/unix_seqpacket_sendmsg")
int BPF_KRETPROBE(krp_unix_seqpacket_sendmsg, int ret)
{
	unix_return(ret, STASH_SEND, true);
	return 0;
}

SEC("kprobe/unix_seqpacket_recvmsg")
int BPF_KPROBE(kp_unix_seqpacket_recvmsg, struct socket *sock, struct msghdr *msg, size_t size,
	       int flags)
{
	unix_enter(sock, flags, STASH_RECV);
	return 0;
}

SEC("kretprobe/unix_seqpacket_recvmsg")
int BPF_KRETPROBE(krp_unix_seqpacket_recvmsg, int ret)
{
	unix_return(ret, STASH_RECV, false);
	return 0;
}

SEC("kprobe/unix_stream_splice_read")
int BPF_KPROBE(kp_unix_stream_splice_read, struct socket *sock)
{
	unix_enter(sock, 0, STASH_SPLICE);
	return 0;
}

SEC("kretprobe/unix_stream_splice_read")
int BPF_KRETPROBE(krp_unix_stream_splice_read, long ret)
{
	unix_return(ret, STASH_SPLICE, false);
	return 0;
}

SEC("kprobe/unix_stream_sendpage")
int BPF_KPROBE(kp_unix_stream_sendpage, struct socket *sock)
{
	unix_enter(sock, 0, STASH_SEND);
	return 0;
}

SEC("kretprobe/unix_stream_sendpage")
int BPF_KRETPROBE(krp_unix_stream_sendpage, long ret)
{
	unix_return(ret, STASH_SEND, true);
	return 0;
}

/* ---- process lifecycle (every backend) ------------------------------------ */

/* Included last, so the lifecycle programs stay last in the object, whose
 * order is the order libbpf loads them and the loader attaches them in. */
#include "lifecycle.bpf.h"
