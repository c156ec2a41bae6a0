#!/usr/bin/env python3
"""Turns a scripts/benchmark run into docs/benchmarks.md and its plot.

    report.py RUN_DIR MARKDOWN SVG

RUN_DIR holds results.tsv (section, name, round, metric, value per line)
and facts.tsv (key, value). Prints whether each goal holds. Medians over
rounds; the spread is the lowest and highest round.
"""
import math
import statistics
import sys
import textwrap
from collections import defaultdict

COST_GOAL = 1.5
CPU_GOAL = 1.0
RSS_GOAL_KB = 20 * 1024

AGENTS = ["none", "netio", "bpftrace", "nethogs"]
PP_AGENTS = ["none", "netio", "bpftrace"]
WORKLOADS = [
    ("pgbench_select_tps", "pgbench -S (TPS)"),
    ("redis_get_rps", "redis-benchmark GET (req/s)"),
    ("redis_set_rps", "redis-benchmark SET (req/s)"),
    ("sysbench_ro_tps", "sysbench oltp_read_only (TPS)"),
]


def load(run):
    rows = []
    for line in open(f"{run}/results.tsv"):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 5 or parts[4] == "":
            continue
        section, name, rnd, metric, value = parts
        rows.append((section, name, rnd, metric, float(value)))
    facts = {}
    for line in open(f"{run}/facts.tsv"):
        k, _, v = line.rstrip("\n").partition("\t")
        facts[k] = v
    return rows, facts


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs, fmt):
    if not xs:
        return "n/a"
    return f"{fmt(min(xs))}–{fmt(max(xs))}"


def f0(x):
    return f"{x:,.0f}"


def f1(x):
    return f"{x:,.1f}"


def f2(x):
    return f"{x:.2f}"


def f3(x):
    return f"{x:.3f}"


def hook_of(prog):
    """(kind, hook) for the programs on sock_send_length / sock_recv_length."""
    if prog.startswith("stage_"):
        return prog, "send"
    # bpftrace names its programs after the tracepoint, cut to 15 characters.
    for prefix, kind in (("tp_sock_", "netio"), ("empty2_", "empty2"), ("empty_", "empty"),
                         ("lookup_", "lookup"), ("storage_", "storage"), ("sock_", "bpftrace")):
        if prog.startswith(prefix):
            rest = prog[len(prefix):]
            if rest.startswith("send"):
                return kind, "send"
            if rest.startswith("recv"):
                return kind, "recv"
    return None


def main():
    run, md_path, svg_path = sys.argv[1:4]
    rows, facts = load(run)
    goals = []
    md = []
    w = md.append

    # ---- per-event cost ----
    cost = defaultdict(list)  # (case, kind, hook) -> [ns]
    cost_r = defaultdict(dict)  # (case, kind, hook) -> {round: ns}
    events = defaultdict(list)
    for section, name, rnd, metric, value in rows:
        if section != "cost":
            continue
        case, _, prog = name.partition(":")
        kh = hook_of(prog)
        if not kh:
            continue
        if metric == "ns_per_event":
            cost[(case, *kh)].append(value)
            cost_r[(case, *kh)][rnd] = value
        elif metric == "events":
            events[(case, *kh)].append(value)

    # ---- ping-pong ----
    pp = defaultdict(list)
    pp_round = defaultdict(dict)  # (agent, metric) -> {round: value}
    for section, name, rnd, metric, value in rows:
        if section == "pingpong" and name in PP_AGENTS:
            pp[(name, metric)].append(value)
            pp_round[(name, metric)][rnd] = value

    # ---- databases ----
    db = defaultdict(dict)  # (workload, agent) -> {round: value}
    for section, name, rnd, metric, value in rows:
        if section == "db" and value > 0:
            db[(name, metric)][rnd] = value

    dbcpu = defaultdict(dict)  # (workload, agent) -> {round: CPU µs per operation}
    for section, name, rnd, metric, value in rows:
        if section == "dbcpu" and value > 0:
            dbcpu[(name, metric)][rnd] = value

    # ---- every system call ----
    sysc = defaultdict(dict)  # agent -> {round: ns per getppid()}
    for section, name, rnd, metric, value in rows:
        if section == "syscall" and metric == "ns_per_call":
            sysc[name][rnd] = value

    scale = {metric: value for section, name, rnd, metric, value in rows if section == "scale"}
    cond = defaultdict(dict)
    for section, name, rnd, metric, value in rows:
        if section == "conditions":
            cond[name][metric] = value

    w("# Benchmarks")
    w("")
    w("Measured by `scripts/benchmark` (one command, as root on Debian 12; it installs")
    w("what it needs, builds netio in release mode, starts private database instances")
    w("on loopback and stops them by PID). This page is its output: every number below")
    w("comes from the run described here. Medians over rounds; the spread is the lowest")
    w("and the highest round.")
    w("")
    w("Reproduce:")
    w("")
    w("    sudo scripts/benchmark                    # about 35 minutes")
    w("    sudo BENCH_QUICK=1 scripts/benchmark      # smoke run, writes only under target/bench/")
    w("")
    w("## The machine and the run")
    w("")
    w("| | |")
    w("|---|---|")
    for k in ("date", "kernel", "cpu", "memory", "os", "netio", "versions", "settings"):
        if k in facts:
            w(f"| {k} | {facts[k]} |")
    loads = [
        (name, c.get("loadavg1"), c.get("busy_processes"))
        for name, c in cond.items()
    ]
    w("")
    w("Load while it ran (1-minute load average, which after the start includes the")
    w("benchmark's own preceding runs; and the number of processes named cargo, rustc,")
    w("cc1 or qemu, i.e. other builds and guests on the machine): " + "; ".join(
        f"{n}: {l:.2f}, {int(b)}" for n, l, b in loads if l is not None) + ".")
    start = cond.get("start", {})
    quiet = start.get("loadavg1", 9) < 0.5 and all((b or 0) == 0 for _, _, b in loads)
    w("")
    if quiet:
        w("The machine was quiet: load below 0.5 at the start, and no other builds or")
        w("guests at any check.")
    else:
        w("**The machine was not quiet during this run**: other work shared its two cores,")
        w("so absolute numbers are low and ratios are noisier than on an idle machine.")
    w("")

    # cost section
    def ratios_to_empty(case, kind, hook):
        """Per round: the program's ns over the empty programs' ns that round."""
        e = cost_r.get(("empty", "empty", hook), {})
        return [v / e[r] for r, v in cost_r.get((case, kind, hook), {}).items() if r in e]

    w("## Cost per event of netio's kernel programs")
    w("")
    w("The kernel's BPF run-time statistics (`kernel.bpf_stats_enabled=1`; `run_time_ns` /")
    w("`run_cnt`, read from `/proc/PID/fdinfo` of the process holding each program, names")
    w("from `bpftool prog show`) over one fixed loopback ping-pong of "
      f"{facts.get('settings', '').split('pingpong=')[-1].split()[0]} round trips of 64 bytes each way")
    w("(`netio-traffic --scenario pingpong`). Each program runs alone on the hooks, in its")
    w("own ping-pong; every round runs each case once, in a rotating order, and each is")
    w("compared with the empty programs' run of the same round (scripts/bench/tool,")
    w("`bench-empty --only=...`). netio runs in three cases: *untracked*, tracking neither")
    w("end (every event takes the path of a process netio does not count); *tracked*,")
    w("tracking both ends (every event is counted), on the socket path; and *tracked, hash")
    w("path*, the same with the socket path turned off (`NETIO_DISABLE_BACKENDS=socket-path`,")
    w("a testing knob): the path of the fentry backend before Linux 5.12 and of the kprobe")
    w("backend. The bpftrace script (scripts/bench/netio.bt, selecting the ping-pong's two")
    w("processes by name) counts every event too. The statistics time only the program")
    w("body, not the tracepoint's dispatch, so the empty program's figure is mostly the")
    w("statistics' own clock reads.")
    w("")
    w("| program | hook | ns per event | / empty (rounds) | events per run |")
    w("|---|---|---|---|---|")
    rows_cost = [
        ("empty", "empty", "empty program"),
        ("untracked", "netio", "netio, process not tracked"),
        ("tracked", "netio", "netio, process tracked (socket path)"),
        ("tracked_hash", "netio", "netio, process tracked, hash path"),
        ("lookup", "lookup", "one hash lookup of the tgid"),
        ("storage", "storage", "one socket-storage lookup and add"),
        ("bpftrace", "bpftrace", "bpftrace script, process counted"),
    ]
    worst = {}
    for case, kind, label in rows_cost:
        for hook in ("send", "recv"):
            n = cost[(case, kind, hook)]
            if not n:
                continue
            rs = ratios_to_empty(case, kind, hook)
            ratio = med(n) / med(cost[("empty", "empty", hook)])
            if case in ("untracked", "tracked"):
                worst[(case, hook)] = ratio
            rtxt = "1" if case == "empty" else f"**{f2(ratio)}** ({spread(rs, f2)})"
            ev = events[(case, kind, hook)]
            w(f"| {label} | sock_{hook}_length | {f1(med(n))} ({spread(n, f1)}) | "
              f"{rtxt} | {f0(med(ev))} |")
    w("")
    w("The ratio is the median program's over the median empty program's; in brackets,")
    w("the lowest and highest of the per-round ratios.")
    w("")
    first, second = cost.get(("empty_pair", "empty", "send")), cost.get(("empty_pair", "empty2", "send"))
    if first and second:
        w("Why alone: in runs with two empty programs on each hook, the one attached second")
        w(f"took {f1(med(second))} ns per event against the first's {f1(med(first))} "
          f"({f2(med(second) / med(first))}x, sock_send_length). A program timed beside")
        w("another is timed on caches the other warmed, and an empty program timed first")
        w("pays for the tracepoint's cold start for both; a ratio between the two mixes")
        w("their positions with their costs.")
        beside = [(h, cost.get(("tracked_beside", "netio", h)), cost.get(("tracked_beside", "empty", h)))
                  for h in ("send", "recv")]
        beside = [(h, n, e) for h, n, e in beside if n and e]
        if beside:
            w("By the method of earlier runs of this benchmark (netio attached after an empty")
            w("program and timed against it in the same runs), netio's socket path measured "
              + ", ".join(f"{f2(med(n) / med(e))}x on sock_{h}_length" for h, n, e in beside) + ".")
        w("")
    stages = [
        ("lookup", "one hash lookup of the tgid"),
        ("stage_reads", "the lookup, then the socket reads of is_inet_tcp() and read_peer() as "
         "4 bpf_probe_read_kernel calls"),
        ("stage_count", "+ the per-CPU hash lookup of the (process, peer) key and the atomic add"),
        ("stage_count_btf", "the same as the line above as a `tp_btf` program: the socket reads "
         "are plain loads"),
        ("tracked_hash", "netio's hash path (tp_sock_send_length, socket path off)"),
        ("tracked", "netio's socket path (tp_sock_send_length)"),
    ]
    if cost.get(("stage_count", "stage_count", "send")):
        w("Where the time of the counted path goes, on `sock_send_length`: programs doing")
        w("the hash path's steps cumulatively (src/empty.bpf.c in scripts/bench/tool), each")
        w("alone on the hook, as above, and netio's two paths.")
        w("")
        w("| program | ns per event | / empty |")
        w("|---|---|---|")
        for case, label in stages:
            kind = "netio" if case.startswith("tracked") else case
            xs, e = cost.get((case, kind, "send")), cost.get(("empty", "empty", "send"))
            if xs and e:
                w(f"| {label} | {f1(med(xs))} ({spread(xs, f1)}) | {f2(med(xs) / med(e))} |")
        w("")
    analysis(w, cost)
    for (case, hook), ratio in worst.items():
        goals.append((f"kernel programs within {COST_GOAL}x of an empty program "
                      f"({case}, sock_{hook}_length): {ratio:.2f}x", ratio <= COST_GOAL))

    # every system call
    if sysc.get("none") and sysc.get("netio"):
        w("## What every system call on the machine pays")
        w("")
        w("The tracepoint backend counts splice(2) and sendfile(2) reading from a socket")
        w("at the `syscalls` tracepoints of those two calls (docs/kernels.md). A program on")
        w("any syscall tracepoint sends every system call of every process through the")
        w("kernel's slow path, counted or not. `bench-syscalls` (scripts/bench/tool) times")
        w("getppid(), the cheapest system call, on one CPU: with no agent, with netio")
        w("tracking nothing it runs, and with the bpftrace script; interleaved in a")
        w("rotating order, the fastest of five batches of a million calls per run. The")
        w("fentry and kprobe backends attach to no syscall tracepoint.")
        w("")
        w("| | ns per getppid() | difference to no agent, median of the rounds' |")
        w("|---|---|---|")
        base = sysc["none"]
        for a in PP_AGENTS:
            xs = sysc.get(a)
            if not xs:
                continue
            diff = ""
            if a != "none":
                ds = [v - base[k] for k, v in xs.items() if k in base]
                rs = [v / base[k] for k, v in xs.items() if k in base]
                diff = (f"{med(ds):+.1f} ns ({spread(ds, lambda x: f'{x:+.1f}')}), "
                        f"{(med(rs) - 1) * 100:+.1f}%")
            vals = list(xs.values())
            w(f"| {a} | {f1(med(vals))} ({spread(vals, f1)}) | {diff} |")
        w("")

    # ping-pong
    w("## End to end: loopback ping-pong")
    w("")
    w("The same ping-pong with no agent, with netio tracking both ends, and with the")
    w("bpftrace script counting both ends (every event counted by each: the agents'")
    w("difference is then as large as this ping-pong can make it; runs before")
    w("2026-11-26 counted the server only, half the events),")
    w("interleaved, rotating which runs first, client and server pinned to one CPU")
    w("(`taskset`): across two CPUs every message waits for the idle one to wake, which")
    w("on this virtual machine took tens of microseconds and varied with the rest of")
    w("the load, hiding everything else. Wall time per round trip as the client saw it,")
    w("throughput (round trips per second, from the wall time), and CPU time (user +")
    w("system of client and server) per round trip; each round trip is four TCP events")
    w("(two sends, two receives), all of them counted.")
    w("")
    w("| | wall per round trip (µs) | round trips/s, ratio to no agent | CPU per round trip (µs) |")
    w("|---|---|---|---|")
    pp_ratio = {}
    base_w = pp_round[("none", "wall_us")]
    for a in PP_AGENTS:
        wa, ca = pp[(a, "wall_us")], pp[(a, "cpu_us")]
        if not wa:
            continue
        tput = f0(1e6 / med(wa))
        if a != "none" and base_w:
            per = [base_w[k] / v for k, v in pp_round[(a, "wall_us")].items() if k in base_w]
            r = med(pp[("none", "wall_us")]) / med(wa)
            pp_ratio[a] = (r, per)
            tput += f", **{f3(r)}** ({spread(per, f3)})"
        w(f"| {a} | {f2(med(wa))} ({spread(wa, f2)}) | {tput} | {f2(med(ca))} ({spread(ca, f2)}) |")
    if pp[("none", "wall_us")] and pp[("netio", "wall_us")]:
        dw = (med(pp[("netio", "wall_us")]) - med(pp[("none", "wall_us")])) * 1000
        dc = (med(pp[("netio", "cpu_us")]) - med(pp[("none", "cpu_us")])) * 1000
        w("")
        w(f"netio's difference to no agent: {dw:+.0f} ns wall and {dc:+.0f} ns CPU per round "
          f"trip ({dw / 4:+.0f} / {dc / 4:+.0f} ns per counted event).")
        if pp[("bpftrace", "wall_us")]:
            bw = (med(pp[("bpftrace", "wall_us")]) - med(pp[("none", "wall_us")])) * 1000
            bc = (med(pp[("bpftrace", "cpu_us")]) - med(pp[("none", "cpu_us")])) * 1000
            w(f"bpftrace's: {bw:+.0f} ns wall and {bc:+.0f} ns CPU per round trip.")
    n, b = pp_ratio.get("netio"), pp_ratio.get("bpftrace")
    nw, bw_ = pp_round[("netio", "wall_us")], pp_round[("bpftrace", "wall_us")]
    pairs = [(nw[k], bw_[k]) for k in nw if k in bw_]
    if n and b and pairs:
        # The rounds' own speed varies more than the agents differ, so the
        # agents are compared round by round: the log of bpftrace's wall
        # time over netio's in the same round (above 0: netio faster), and
        # how likely differences this much on netio's side would be if
        # neither agent were faster (Wilcoxon's signed-rank test, exact,
        # one-sided). The sign test (how many rounds, ignoring by how much)
        # is printed beside it.
        diffs = [math.log(y / x) for x, y in pairs]
        wins = sum(1 for d in diffs if d > 0)
        losses = sum(1 for d in diffs if d < 0)
        p_netio, p_bpftrace = signed_rank_test(diffs), signed_rank_test([-d for d in diffs])
        w("")
        w(f"Round by round: netio's ping-pong was faster than bpftrace's in {wins} of "
          f"{len(pairs)} rounds and slower in {losses}; the median round had bpftrace "
          f"{(math.exp(med(diffs)) - 1) * 100:+.1f}% slower than netio. Wilcoxon's "
          f"signed-rank test on the paired differences: p = {p_netio:.3g} that netio is not "
          f"faster (the sign test alone: p = {sign_test(wins, wins + losses):.3g}). The rounds'")
        w("own speed varies more than the agents differ, which is why they are compared in")
        w("pairs and not by their spreads.")
        shown = True if p_netio < 0.05 else False if p_bpftrace < 0.05 else None
        goals.append((f"ping-pong: netio's throughput cost below bpftrace's (round trips/s "
                      f"ratio to no agent: netio {n[0]:.3f}, bpftrace {b[0]:.3f}; netio "
                      f"faster in {wins} of {len(pairs)} rounds, signed-rank p = {p_netio:.3g})",
                      shown))
    w("")

    # databases
    w("## Database throughput")
    w("")
    w("Private instances on 127.0.0.1 (PostgreSQL 15 `pgbench -S -c 4 -j 2` on a scale-10")
    w("database; Redis 7 `redis-benchmark -t get,set -c 20`; MariaDB `sysbench")
    w("oltp_read_only --threads=4` on 4 tables of 10,000 rows), each run under: no agent;")
    w("netio with the default `netio.conf` (targets mariadbd, postgres, redis-server);")
    w("`bpftrace scripts/bench/netio.bt` (the same counting on the same tracepoints, as a")
    w("bpftrace script: per process and peer, TCP, positive returns, no MSG_PEEK);")
    w("`nethogs -a -t -d 5 lo` (per-process bandwidth from packet capture). The four run")
    w("in a rotating order in each round. Ratio: the agent's median over no agent's median;")
    w("its spread is the lowest and highest per-round ratio against that round's no-agent")
    w("run.")
    w("")
    ratios = ratio_table(w, db, f0, lambda label: label)
    noise = []
    spread_of = {}
    for key, label in WORKLOADS:
        v = list(db.get((key, "none"), {}).values())
        if len(v) > 1:
            spread_of[key] = (max(v) - min(v)) / med(v)
            noise.append(f"{label.split(' (')[0]} {spread_of[key]:.0%}")
    if noise:
        w("")
        w("How far the no-agent runs alone spread (highest minus lowest, over the median): "
          + ", ".join(noise) + ". A difference between agents smaller than that is not")
        w("a measurement of the agent.")
    w("")
    cpu_ratios = {}
    if dbcpu:
        w("The machine's busy CPU time per operation in the same runs (user, nice, system,")
        w("irq and softirq from /proc/stat, both CPUs, the agent's own time included; idle,")
        w("iowait and the time the hypervisor stole are not), in microseconds, with the")
        w("ratio to no agent (above 1 = the agent's cost). Less sensitive than throughput")
        w("to how much CPU the virtual machine gets.")
        w("")
        cpu_ratios = ratio_table(w, dbcpu, f2, lambda label: label.split(" (")[0])
        w("")
    # A difference within the no-agent runs' own spread, or between
    # per-round ranges that overlap, shows nothing.
    def overlap(x, y):
        return bool(x[1] and y[1]) and min(x[1]) <= max(y[1]) and min(y[1]) <= max(x[1])

    for key, label in WORKLOADS:
        n, b = ratios.get((key, "netio")), ratios.get((key, "bpftrace"))
        noisy = n and b and (abs(n[0] - b[0]) < spread_of.get(key, 0) or overlap(n, b))
        if n and b:
            goals.append((f"{label}: netio's throughput cost below bpftrace's "
                          f"(throughput ratio to no agent: netio {n[0]:.3f}, bpftrace {b[0]:.3f}; "
                          f"no-agent spread {spread_of.get(key, 0):.0%})",
                          None if noisy else n[0] >= b[0]))
        n, b = cpu_ratios.get((key, "netio")), cpu_ratios.get((key, "bpftrace"))
        if n and b:
            goals.append((f"{label.split(' (')[0]}: netio's CPU per operation below bpftrace's "
                          f"(ratio to no agent: netio {n[0]:.3f}, bpftrace {b[0]:.3f})",
                          None if overlap(n, b) else n[0] <= b[0]))

    # scale
    w("## netio itself at scale")
    w("")
    if scale:
        w(f"`bench-hold` (scripts/bench/tool) forked {int(scale.get('tracked_processes', 0)) or 'its'}")
        w(f"processes holding {f0(scale.get('connections', 0))} loopback TCP connections, each")
        w("connection moving 64 bytes each way every second (four TCP events per connection")
        w("per second); netio ran with a config targeting them (interval 10 s) and tracked")
        w("every one of them. netio's CPU is user + system time from `/proc/PID/stat` over")
        w("the sampling window after its first records; peak RSS is `VmHWM`.")
        w("")
        w("| | |")
        w("|---|---|")
        w(f"| processes tracked (last target record) | {f0(scale.get('tracked_processes', 0))} |")
        w(f"| connections held | {f0(scale.get('connections', 0))} |")
        w(f"| start to `started` record | {f0(scale.get('started_ms', 0))} ms |")
        w(f"| start to first `traffic` record | {f0(scale.get('first_traffic_ms', 0))} ms (one interval) |")
        w(f"| CPU, sampling window | **{scale.get('cpu_pct', 0):.2f}%** of one core |")
        w(f"| CPU, total since start | {scale.get('cpu_total_s', 0):.2f} s |")
        w(f"| peak RSS (VmHWM) | **{scale.get('rss_peak_kb', 0) / 1024:.1f} MiB** |")
        w("")
        goals.append((f"userspace under {CPU_GOAL}% of one core: {scale.get('cpu_pct', 0):.2f}%",
                      scale.get("cpu_pct", 99) < CPU_GOAL))
        goals.append((f"peak RSS under 20 MB: {scale.get('rss_peak_kb', 0) / 1024:.1f} MiB",
                      scale.get("rss_peak_kb", 1e9) < RSS_GOAL_KB))

    # qemu kernels
    kern = defaultdict(list)
    unsupported = defaultdict(set)
    for section, name, rnd, metric, value in rows:
        if section != "kernels":
            continue
        k, _, mode = name.partition(":")
        if metric == "us_per_rt":
            kern[(k, mode)].append(value)
        elif metric == "unsupported":
            unsupported[k].add(mode)
    kernels = sorted({k for k, _ in kern}, key=lambda v: [int(x) for x in v.split(".")])
    if kernels:
        w("## The backends on other kernels (qemu)")
        w("")
        w("The same ping-pong inside each kernel of scripts/kernels/ (`scripts/kernels/matrix")
        w("--payload scripts/kernels/payloads/pingpong`: 2 vCPUs under TCG emulation, no KVM),")
        w("with no agent and under each backend the kernel supports, netio tracking the")
        w("server. Emulation makes every instruction slow, so only the ratios within one")
        w("kernel mean anything. Microseconds per round trip, median of the rounds, and the")
        w("ratio to no agent.")
        w("")
        modes = ["none", "fentry", "tracepoint", "kprobe"]
        w("| kernel | " + " | ".join(modes) + " |")
        w("|---|" + "---|" * len(modes))
        for k in kernels:
            base = med(kern.get((k, "none"), []))
            cells = []
            for m in modes:
                xs = kern.get((k, m))
                if not xs:
                    cells.append("not supported" if m in unsupported[k] else "n/a")
                elif m == "none":
                    cells.append(f"{f1(med(xs))} ({spread(xs, f1)})")
                else:
                    cells.append(f"{f1(med(xs))}, **{f2(med(xs) / base)}x** ({spread(xs, f1)})")
            w(f"| {k} | " + " | ".join(cells) + " |")
        w("")

    w("## Goals")
    w("")
    def verdict(ok):
        return "not shown (within the noise: the per-round ranges overlap, the difference is within the no-agent spread, or the sign test finds none)" if ok is None else (
            "met" if ok else "**not met**")

    for text, ok in goals:
        w(f"- {verdict(ok)}: {text}")
    hash_ratios = [med(cost[("tracked_hash", "netio", h)]) / med(cost[("empty", "empty", h)])
                   for h in ("send", "recv") if cost.get(("tracked_hash", "netio", h))]
    if hash_ratios:
        w("- for comparison, not what this machine runs: where the socket path is not")
        w("  available (fentry before Linux 5.12, the kprobe backend) netio counts on the")
        w("  hash path, measured here at " + " / ".join(f"{r:.2f}x" for r in hash_ratios)
          + " (send / receive),")
        w(f"  {'within' if max(hash_ratios) <= COST_GOAL else 'above'} the {COST_GOAL}x goal.")
    w("")
    if not kernels:
        w("## Not measured in this run")
        w("")
        w("- fentry vs kprobe vs tracepoint on the qemu kernels (BENCH_KERNELS=0, or the")
        w("  kernel matrix did not run).")
        w("")
    w("![netio benchmark](benchmarks.svg)")
    w("")
    open(md_path, "w").write("\n".join(md))
    svg(svg_path, cost, ratios)
    for text, ok in goals:
        print(f"goal {'NOT SHOWN (noise)' if ok is None else 'met' if ok else 'NOT MET'}: {text}")


def ratio_table(w, data, fmt, label_of):
    """One table of WORKLOADS by AGENTS from data[(workload, agent)] =
    {round: value}: no agent's median and spread, each agent's median with
    its ratio to no agent's and the spread of its per-round ratios. Returns
    {(workload, agent): (ratio, per-round ratios)}."""
    w("| workload | " + " | ".join(AGENTS) + " |")
    w("|---|" + "---|" * len(AGENTS))
    ratios = {}
    for key, label in WORKLOADS:
        base = data.get((key, "none"), {})
        cells = []
        for a in AGENTS:
            vals = data.get((key, a), {})
            if not vals:
                cells.append("n/a")
                continue
            v = list(vals.values())
            if a == "none":
                cells.append(f"{fmt(med(v))} ({spread(v, fmt)})")
                continue
            r = med(v) / med(list(base.values())) if base else float("nan")
            per = [vals[k] / base[k] for k in vals if k in base]
            ratios[(key, a)] = (r, per)
            cells.append(f"{fmt(med(v))}, **{f3(r)}** ({spread(per, f3)})")
        w(f"| {label_of(label)} | " + " | ".join(cells) + " |")
    return ratios


def signed_rank_test(diffs):
    """Wilcoxon's signed-rank test, exact: P(a sum of positive ranks at least
    the observed one) when each difference's sign is a fair coin. Zero
    differences are dropped; tied sizes share their mean rank."""
    d = sorted((abs(x), x > 0) for x in diffs if x != 0)
    n = len(d)
    if n == 0:
        return 1.0
    ranks2 = [0] * n  # twice the rank, so that shared ranks stay integers
    i = 0
    while i < n:
        j = i
        while j + 1 < n and d[j + 1][0] == d[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks2[k] = i + j + 2
        i = j + 1
    observed = sum(r for r, (_, pos) in zip(ranks2, d) if pos)
    counts = {0: 1}
    for r in ranks2:
        nxt = defaultdict(int)
        for total, c in counts.items():
            nxt[total] += c
            nxt[total + r] += c
        counts = nxt
    return sum(c for total, c in counts.items() if total >= observed) / 2 ** n


def sign_test(k, n):
    """P(at least k heads in n fair coin tosses)."""
    from math import comb
    if n == 0:
        return 1.0
    return sum(comb(n, i) for i in range(k, n + 1)) / 2 ** n


def analysis(w, cost):
    """What the cost tables mean, in this run's numbers."""
    def ratio(case, kind=None, hook="send"):
        return med(cost.get((case, kind or case, hook), [])) / med(cost.get(("empty", "empty", hook), []))

    ru, rt, rh = (ratio(c, "netio") for c in ("untracked", "tracked", "tracked_hash"))
    rl, rc, rb, rbt = (ratio(k) for k in ("lookup", "stage_count", "stage_count_btf", "bpftrace"))
    if any(x != x for x in (ru, rt, rh, rl)):
        return
    w("Reading these numbers (sock_send_length, each as a ratio to the empty program):")
    w("")
    w(f"- For a process netio does not track, its program reads the thread group id and")
    w(f"  one slot of a filter in front of the tracked map, and returns: {ru:.2f}x. A hash")
    w(f"  lookup of the thread group id alone is {rl:.2f}x.")
    w(f"- For a tracked process, netio's socket path is at {rt:.2f}x: the filter, one")
    w(f"  lookup of the socket's local storage, a check that the counters there are this")
    w(f"  process's and still current, and an atomic add. The counters move into the")
    w(f"  per-(process, peer) map when the socket is destroyed and whenever netio reads")
    w(f"  (docs/kernels.md).")
    w(f"- The hash path, where the socket path is not available, is at {rh:.2f}x: a hash")
    w(f"  lookup of the process, then one of the (process, peer) key."
      + (" The stage programs show the steps: with the socket reads as" if rc == rc else ""))
    if rc == rc and rb == rb:
        w(f"  `bpf_probe_read_kernel` calls and the second lookup, {rc:.2f}x; as plain loads")
        w(f"  in a `tp_btf` program, {rb:.2f}x.")
    if rbt == rbt:
        w(f"- The bpftrace script's programs, counting the same events, are at {rbt:.2f}x:")
        w(f"  they compare the thread name as a string and key their maps by a formatted")
        w(f"  address.")
    rs_send, rs_recv = ratio("storage"), ratio("storage", hook="recv")
    rt_recv = ratio("tracked", "netio", "recv")
    if rs_send == rs_send and rs_recv == rs_recv and rt_recv == rt_recv:
        floor = (
            f"The floor of any design that keeps a counter per socket, as the socket path"
            f" does: one lookup of the socket's local storage and an atomic add, for every"
            f" TCP event and without asking whose the socket is, is at {rs_send:.2f}x on"
            f" sock_send_length and {rs_recv:.2f}x on sock_recv_length, where netio's socket"
            f" path is at {rt:.2f}x and {rt_recv:.2f}x. The difference, {rt - rs_send:+.2f}x"
            f" and {rt_recv - rs_recv:+.2f}x, is what netio's filter slot and its check of"
            f" the socket's owner, epoch and peer cost in this run.")
        if min(rt - rs_send, rt_recv - rs_recv) < 0:
            floor += (" A negative difference is the run's noise: netio's program does all"
                      " the floor's work and more.")
        w(textwrap.fill(floor, width=84, initial_indent="- ", subsequent_indent="  "))
    w("")


def svg(path, cost, ratios):
    """Two panels: per-event cost, and database throughput against no agent."""
    W, H = 960, 420
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    colors = {"empty": "#999999", "lookup": "#6b9bd1", "netio": "#d1495b",
              "bpftrace": "#edae49", "nethogs": "#66a182"}

    def panel(x0, title, groups, series, vmax, fmt, ref=None, vmin=0.0):
        pw, ph, top = 420, 280, 60

        def ypos(v):
            return top + ph - ph * (min(max(v, vmin), vmax) - vmin) / (vmax - vmin)

        out.append(f'<text x="{x0 + pw / 2}" y="30" text-anchor="middle" font-size="14">{title}</text>')
        out.append(f'<line x1="{x0}" y1="{top + ph}" x2="{x0 + pw}" y2="{top + ph}" stroke="black"/>')
        for i in range(5):
            v = vmin + (vmax - vmin) * i / 4
            y = ypos(v)
            out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + pw}" y2="{y}" stroke="#eeeeee"/>')
            out.append(f'<text x="{x0 - 4}" y="{y + 4}" text-anchor="end">{fmt(v)}</text>')
        if ref is not None:
            y = ypos(ref)
            out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + pw}" y2="{y}" stroke="black" stroke-dasharray="4 3"/>')
        gw = pw / max(1, len(groups))
        bw = gw * 0.8 / max(1, len(series))
        for gi, (glabel, values) in enumerate(groups):
            for si, s in enumerate(series):
                if s not in values:
                    continue
                v, lo, hi = values[s]
                x = x0 + gi * gw + gw * 0.1 + si * bw
                h = top + ph - ypos(v)
                out.append(f'<rect x="{x:.1f}" y="{top + ph - h:.1f}" width="{bw - 2:.1f}" '
                           f'height="{h:.1f}" fill="{colors[s]}"><title>{s}: {v:.3f}</title></rect>')
                if lo is not None:
                    y1, y2 = ypos(lo), ypos(hi)
                    cx = x + (bw - 2) / 2
                    out.append(f'<line x1="{cx:.1f}" y1="{y1:.1f}" x2="{cx:.1f}" y2="{y2:.1f}" stroke="black"/>')
            out.append(f'<text x="{x0 + gi * gw + gw / 2:.1f}" y="{top + ph + 16}" '
                       f'text-anchor="middle">{glabel}</text>')
        for si, s in enumerate(series):
            lx = x0 + si * 100
            out.append(f'<rect x="{lx}" y="{H - 30}" width="10" height="10" fill="{colors[s]}"/>')
            out.append(f'<text x="{lx + 14}" y="{H - 21}">{s}</text>')

    colors.update({"program": "#d1495b"})
    groups = []
    vmax = 1
    for case, kind, label in (("untracked", "netio", "untracked"),
                              ("tracked", "netio", "tracked"),
                              ("tracked_hash", "netio", "hash path"),
                              ("lookup", "lookup", "one lookup"),
                              ("bpftrace", "bpftrace", "bpftrace")):
        vals = {}
        for series, (c, k) in (("empty", ("empty", "empty")), ("program", (case, kind))):
            xs = cost.get((c, k, "send"))
            if xs:
                vals[series] = (med(xs), min(xs), max(xs))
                vmax = max(vmax, max(xs))
        if vals:
            groups.append((label, vals))
    panel(70, "ns per event, sock_send_length (bpf_stats)", groups,
          ["empty", "program"], vmax * 1.1, lambda v: f"{v:.0f}")

    groups = []
    lo_r, hi_r = 0.9, 1.1
    for key, label in WORKLOADS:
        vals = {}
        for a in ("netio", "bpftrace", "nethogs"):
            if (key, a) in ratios:
                r, per = ratios[(key, a)]
                vals[a] = (r, min(per) if per else None, max(per) if per else None)
                lo_r = min([lo_r, r] + per)
                hi_r = max([hi_r, r] + per)
        if vals:
            groups.append((label.split(" (")[0].replace("redis-benchmark ", "redis ")
                           .replace("sysbench oltp_read_only", "sysbench ro"), vals))
    panel(520, "database throughput / no agent (1 = no cost)", groups,
          ["netio", "bpftrace", "nethogs"], hi_r + 0.02, lambda v: f"{v:.2f}", ref=1.0,
          vmin=lo_r - 0.02)
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
