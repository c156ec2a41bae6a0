// SPDX-License-Identifier: GPL-2.0-only
/*
 * The tutorial's method that netio grew from, kept here only to measure it
 * against netio in the kernel matrix (scripts/kernels/matrix): the return
 * of tcp_sendmsg as bytes sent and the `copied` argument of
 * tcp_cleanup_rbuf as bytes received, summed per process (tgid).
 *
 * docs/kernels.md says why netio does not do this: tcp_recvmsg calls
 * tcp_cleanup_rbuf with its running total on every wake-up of a blocking
 * read, so a recv(MSG_WAITALL) fed in small pieces is counted many times.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct counts {
	__u64 sent;
	__u64 received;
	__u64 send_calls;
	__u64 cleanup_calls;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct counts);
} counts SEC(".maps");

static __always_inline struct counts *mine(void)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct counts *c = bpf_map_lookup_elem(&counts, &pid);

	if (!c) {
		struct counts zero = {};

		bpf_map_update_elem(&counts, &pid, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counts, &pid);
	}
	return c;
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(tutorial_tcp_sendmsg, int ret)
{
	struct counts *c;

	if (ret > 0 && (c = mine())) {
		__sync_fetch_and_add(&c->sent, ret);
		__sync_fetch_and_add(&c->send_calls, 1);
	}
	return 0;
}

SEC("kprobe/tcp_cleanup_rbuf")
int BPF_KPROBE(tutorial_tcp_cleanup_rbuf, void *sk, int copied)
{
	struct counts *c;

	if (copied > 0 && (c = mine())) {
		__sync_fetch_and_add(&c->received, copied);
		__sync_fetch_and_add(&c->cleanup_calls, 1);
	}
	return 0;
}
