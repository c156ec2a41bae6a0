/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Process lifecycle, on every backend: a process is tracked at exec when
 * its name or cgroup matches, a child at fork when its parent is tracked,
 * and dropped at exit; each change goes to userspace as a lifecycle event.
 * Generations tell apart the processes that reuse one PID.
 */
#ifndef NETIO_LIFECYCLE_BPF_H
#define NETIO_LIFECYCLE_BPF_H

/* The current process's credentials, as global ids: what /proc/PID/status
 * shows to the init namespace. (bpf_get_current_uid_gid maps them into the
 * process's own user namespace, where anyone can be any uid.) */
static __always_inline const struct cred *current_cred(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, real_cred);
}

/* Whether a process of these real and effective uids may be target's: a
 * target with a `user` constraint allows only its uids (maps.bpf.h,
 * target_uids). */
static __always_inline bool uid_allowed(__u32 target, const struct cred *cred)
{
	struct uid_key k = { .target = target, .uid = UID_CONSTRAINED };

	if (!bpf_map_lookup_elem(&target_uids, &k))
		return true;
	k.uid = BPF_CORE_READ(cred, uid.val);
	if (!bpf_map_lookup_elem(&target_uids, &k))
		return false;
	k.uid = BPF_CORE_READ(cred, euid.val);
	return bpf_map_lookup_elem(&target_uids, &k) != NULL;
}

static __always_inline void emit(__u32 kind, __u32 tgid, __u32 ppid, struct tracked *t,
				 __u32 matched, struct linux_binprm *bprm)
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
	e->target = t ? tracked_target(t->target) : 0;
	e->matched = matched;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->filename[0] = 0;
	e->uid = BPF_CORE_READ(current_cred(), euid.val);
	e->exe_dev = 0;
	e->exe_ino = 0;
	e->started_ns = 0;
	if (bprm) {
		bpf_probe_read_kernel_str(e->filename, sizeof(e->filename),
					  BPF_CORE_READ(bprm, filename));
		e->exe_dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev);
		e->exe_ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
	}
	bpf_ringbuf_submit(e, 0);
}

/* Puts t in `tracked` for tgid, keeping its slot's count (docs/kernels.md,
 * "Still tracked"): one more, before it, for an entry that was empty, the
 * same for one that held something (userspace never empties an entry, so
 * it cannot empty it meanwhile); either way the slot's epoch moves on.
 * False when the PID is beyond the array (pid_max raised after load). The
 * entry is written in one 8-byte store, as userspace reads it. */
static __always_inline bool track_insert(__u32 tgid, struct tracked *t)
{
	__u64 *e = (__u64 *)bpf_map_lookup_elem(&tracked, &tgid);
	__u64 *slot = track_slot(tgid);
	__u64 v;

	if (!e)
		return false;
	__builtin_memcpy(&v, t, sizeof(v));
	if (*e == 0)
		__sync_fetch_and_add(slot, SLOT_ONE);
	*(volatile __u64 *)e = v;
	__sync_fetch_and_add(slot, SLOT_EPOCH_STEP);
	return true;
}

/* Empties tgid's entry, whatever it held (a process's, or one userspace
 * untracked); its slot's count goes down after the entry is empty. Only
 * here, at exit, does an entry become empty. */
static __always_inline void track_delete(__u32 tgid)
{
	__u64 *e = (__u64 *)bpf_map_lookup_elem(&tracked, &tgid);

	if (!e || *e == 0)
		return;
	*(volatile __u64 *)e = 0;
	__sync_fetch_and_add(track_slot(tgid), SLOT_EPOCH_STEP - SLOT_ONE);
}

/* Starts tracking tgid under target with a fresh generation, and creates
 * its fallback traffic entry. Returns false when its PID is beyond the
 * tracked array. */
static __always_inline bool track(__u32 tgid, __u32 target, struct tracked *out)
{
	struct tracked t = { .target = target };
	struct traffic_key key = {};
	struct traffic_val zero = {};

	__u32 zero_idx = 0;
	__u32 *counter = bpf_map_lookup_elem(&gens, &zero_idx);

	if (!counter)
		return false;
	/* Preemption is off in these tracepoints, so the increment cannot
	 * interleave on one CPU; the CPU id in the low bits keeps CPUs apart.
	 * A count whose kept bits are all zero is skipped: on CPU 0 it would
	 * make GEN_NONE. */
	*counter += 1;
	if ((*counter & (GEN_KERNEL_MASK >> 8)) == 0)
		*counter += 1;
	t.gen = ((*counter << 8) | (bpf_get_smp_processor_id() & 0xff)) & GEN_KERNEL_MASK;
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
	pt = tracked_get(&ptgid);
	if (!pt)
		return 0;
	if (!track(ctgid, tracked_target(pt->target), &t))
		t.gen = 0;
	emit(EV_FORK, ctgid, ptgid, &t, 0, NULL);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(raw_tp_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	/* systemd forks, moves the child into the unit's cgroup, then execs:
	 * the exec is where a unit's process is first seen. */
	__u64 cg = bpf_get_current_cgroup_id();
	struct comm_key ck = {};
	struct tracked *cur, t = {};
	/* The target it is tracked for (base), the one the match is for
	 * (want), and how it matched. */
	__u32 *name, *group, base, want, matched;

	const struct cred *cred = current_cred();

	bpf_get_current_comm(ck.comm, sizeof(ck.comm));
	name = bpf_map_lookup_elem(&names, &ck);
	group = bpf_map_lookup_elem(&cgroups, &cg);
	cur = tracked_get(&tgid);
	/* A name or cgroup matches only for a user its target allows (setuid
	 * programs are applied by now): another user's look-alike is never
	 * tracked, so none of its bytes is counted. A tracked process stays
	 * what it was. */
	if (name && !uid_allowed(*name, cred))
		name = NULL;
	if (group && !uid_allowed(*group, cred))
		group = NULL;
	/* A name that fills the comm may be only a longer one's first 15
	 * bytes: the process stays what it was (its tracking, else its
	 * cgroup's target) until userspace confirms the full name, under a new
	 * generation if that could move it to the name's target. (Each pointer
	 * tested on its own: the verifier refuses a pointer OR.) */
	matched = MATCH_PREFIX;
	if (name && ck.comm[NETIO_COMM_MATCH - 1] && cur) {
		base = tracked_target(cur->target);
		want = *name;
	} else if (name && ck.comm[NETIO_COMM_MATCH - 1] && group) {
		base = *group;
		want = *name;
	} else if (name) {
		matched = MATCH_NAME;
		base = want = *name;
	} else if (group) {
		matched = MATCH_CGROUP;
		base = want = *group;
	} else {
		if (cur) {
			/* Still the same process, still the target's: what a
			 * database child execs (COPY ... PROGRAM, archive_command)
			 * stays counted. */
			t = *cur;
			emit(EV_EXEC, tgid, 0, &t, 0, bprm);
		}
		return 0;
	}
	if (cur && tracked_target(cur->target) == want)
		t = *cur;
	else if (!track(tgid, base, &t))
		t.gen = 0;
	emit(EV_EXEC, tgid, 0, &t, matched, bprm);
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
	cur = tracked_get(&tgid);
	if (cur)
		t = *cur;
	/* An entry userspace untracked is emptied too, unreported. */
	track_delete(tgid);
	if (cur)
		emit(EV_EXIT, tgid, 0, &t, 0, NULL);
	return 0;
}

#endif
