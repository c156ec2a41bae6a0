/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The few kernel structs netio's programs read, declared with only the fields
 * used. preserve_access_index makes every access a CO-RE relocation, so libbpf
 * fixes offsets against the running kernel's BTF at load time; a whole
 * vmlinux.h (2.8 MB) would compile to the same programs, this keeps diffs
 * reviewable. Field names must match the kernel's (anonymous unions in the
 * kernel are looked through by libbpf).
 */
#ifndef NETIO_KERNEL_TYPES_H
#define NETIO_KERNEL_TYPES_H

#include <linux/types.h>
#include <linux/bpf.h>

/* bpf_tracing.h picks the kernel's pt_regs field names when this is set. */
#define __VMLINUX_H__

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_SEQPACKET 5
#define IPPROTO_TCP 6
#define MSG_PEEK 2
#define S_IFMT 00170000
#define S_IFSOCK 0140000

typedef __u16 umode_t;
typedef long long loff_t;
typedef __u64 size_t;
typedef __s64 ssize_t;
typedef _Bool bool;
#define true 1
#define false 0

#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__be32 u6_addr32[4];
	} in6_u;
};

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
};

struct pid;
struct cred;

struct sock {
	struct sock_common __sk_common;
	__u16 sk_type;
	__u16 sk_protocol;
	/* A Unix socket's peer (SO_PEERCRED): who connected, or listened. */
	struct pid *sk_peer_pid;
	const struct cred *sk_peer_cred;
};

struct socket {
	struct sock *sk;
};

struct super_block {
	__u32 s_dev;
};

struct inode {
	umode_t i_mode;
	unsigned long i_ino;
	struct super_block *i_sb;
};

struct file {
	struct inode *f_inode;
	void *private_data;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live;
};

/* Global ids (kuid_t), not as any user namespace maps them. */
typedef struct {
	__u32 val;
} kuid_t;

struct cred {
	kuid_t uid;
	kuid_t euid;
};

struct hlist_node {
	struct hlist_node *next;
	struct hlist_node **pprev;
};

struct hlist_head {
	struct hlist_node *first;
};

enum pid_type {
	PIDTYPE_PID,
	PIDTYPE_TGID,
	PIDTYPE_PGID,
	PIDTYPE_SID,
	PIDTYPE_MAX,
};

struct upid {
	int nr;
};

/* A PID as the kernel refers to it: numbers[0] is its number in the initial
 * namespace; tasks[PIDTYPE_TGID] holds its thread group's leader while the
 * process lives. */
struct pid {
	struct hlist_head tasks[PIDTYPE_MAX];
	struct upid numbers[1];
};

struct task_struct {
	int pid;
	int tgid;
	char comm[16];
	struct signal_struct *signal;
	struct files_struct *files;
	const struct cred *real_cred;
	struct task_struct *group_leader;
	struct hlist_node pid_links[PIDTYPE_MAX];
	/* Boot-time ns: /proc/PID/stat's starttime, in clock ticks. */
	__u64 start_boottime;
};

struct linux_binprm {
	const char *filename;
	struct file *file;
};

struct msghdr;
struct page;
struct pipe_inode_info;

/* The context of an iterator over a BPF_MAP_TYPE_SK_STORAGE map. */
struct bpf_iter_meta;
struct bpf_map;

struct bpf_iter__bpf_sk_storage_map {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
	struct sock *sk;
	void *value;
};

#pragma clang attribute pop

#endif
