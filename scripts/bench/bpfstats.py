#!/usr/bin/env python3
"""Prints the kernel's run statistics of the BPF programs a process holds.

    bpfstats.py PID [PID...]

One line per program: PID PROG_ID NAME RUN_TIME_NS RUN_CNT. The programs are
found through the process's file descriptors (/proc/PID/fdinfo lists
prog_id, run_time_ns and run_cnt for each BPF program fd); names come from
`bpftool prog show`. The counts only grow while kernel.bpf_stats_enabled
is 1: take two snapshots and divide the differences for the mean run time
per event.
"""
import json
import os
import subprocess
import sys


def programs(pid):
    seen = {}
    fddir = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fddir):
        try:
            with open(os.path.join(fddir, fd)) as f:
                fields = dict(
                    line.split(":", 1) for line in f.read().splitlines() if ":" in line
                )
        except OSError:
            continue
        # Program fds have run statistics; link fds name a prog_id too.
        if "prog_id" not in fields or "run_cnt" not in fields:
            continue
        pid_ = int(fields["prog_id"])
        seen[pid_] = (int(fields.get("run_time_ns", 0)), int(fields.get("run_cnt", 0)))
    return seen


def main():
    shown = json.loads(
        subprocess.run(
            ["bpftool", "prog", "show", "--json"], check=True, capture_output=True, text=True
        ).stdout
    )
    names = {p["id"]: p.get("name", "?") for p in shown}
    for pid in sys.argv[1:]:
        for prog_id, (ns, cnt) in sorted(programs(pid).items()):
            print(pid, prog_id, names.get(prog_id, "?"), ns, cnt)


if __name__ == "__main__":
    main()
