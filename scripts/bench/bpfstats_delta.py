#!/usr/bin/env python3
"""Prints, per program, the mean run time per event between two bpfstats.py snapshots.

    bpfstats_delta.py BEFORE AFTER LABEL ROUND

Two results.tsv lines (cost, LABEL:NAME, ROUND, metric, value) for each program
in both snapshots that ran in between: ns_per_event and events.
"""
import sys


def load(path):
    """{(pid, prog_id): (name, run_time_ns, run_cnt)} of one snapshot."""
    d = {}
    for line in open(path):
        pid, prog_id, name, ns, cnt = line.split()
        d[(pid, prog_id)] = (name, int(ns), int(cnt))
    return d


def main():
    before, after, label, rnd = sys.argv[1:5]
    a, b = load(before), load(after)
    for k, (name, ns, cnt) in sorted(b.items()):
        if k not in a:
            continue
        dns, dcnt = ns - a[k][1], cnt - a[k][2]
        if dcnt > 0:
            print(f"cost\t{label}:{name}\t{rnd}\tns_per_event\t{dns / dcnt:.2f}")
            print(f"cost\t{label}:{name}\t{rnd}\tevents\t{dcnt}")


if __name__ == "__main__":
    main()
