"""Fills benchmarks.md.in with what analysis.analyse() found: docs/benchmarks.md.

The template holds the document's prose; this file only formats the run's numbers
into its placeholders (string.Template), its tables' rows and its goal lines, and
says which of its conditional parts the run has. The template's directives, each
an HTML comment alone on its line:

    <!-- # a note -->              dropped
    <!-- if NAME -->, <!-- if not NAME -->, <!-- else -->, <!-- end -->
                                   the part kept when NAME's value is not empty
    <!-- fill --> ... <!-- end -->  one list item, wrapped to FILL_WIDTH

and a placeholder alone on its line takes a list: the lines of a table or list.
"""
import os
import re
import textwrap
from string import Template

from analysis import COST_GOAL, CPU_GOAL, RSS_GOAL_KB, SOAK_FLAT_KB, measured

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmarks.md.in")
FILL_WIDTH = 84
DIRECTIVE = re.compile(r"<!-- (#.*|if (not )?(\w+)|else|end|fill) -->")
LIST = re.compile(r"\$\{(\w+)\}")
# The facts of the machine and the run, in the table's order.
FACTS = ["date", "kernel", "cpu", "memory", "os", "netio", "versions", "settings"]

COST_LABELS = {
    "empty": "empty program",
    "untracked": "netio, process not tracked",
    "tracked": "netio, process tracked (socket path)",
    "tracked_hash": "netio, process tracked, hash path",
    "lookup": "one hash lookup of the tgid",
    "storage": "one socket-storage lookup and add",
    "bpftrace": "bpftrace script, process counted",
}
STAGE_LABELS = {
    "lookup": "one hash lookup of the tgid",
    "stage_reads": "the lookup, then the socket reads of is_inet_tcp() and read_peer() as "
                   "4 bpf_probe_read_kernel calls",
    "stage_count": "+ the per-CPU hash lookup of the (process, peer) key and the atomic add",
    "stage_count_btf": "the same as the line above as a `tp_btf` program: the socket reads "
                       "are plain loads",
    "tracked_hash": "netio's hash path (tp_sock_send_length, socket path off)",
    "tracked": "netio's socket path (tp_sock_send_length)",
}
# Each workload's name and its throughput's unit.
WORKLOAD_NAMES = {
    "pgbench_select_tps": ("pgbench -S", "TPS"),
    "redis_get_rps": ("redis-benchmark GET", "req/s"),
    "redis_set_rps": ("redis-benchmark SET", "req/s"),
    "sysbench_ro_tps": ("sysbench oltp_read_only", "TPS"),
}
GOALS = {
    "cost": "kernel programs within {goal}x of an empty program ({case}, sock_{hook}_length): "
            "{ratio:.2f}x",
    "pingpong": "ping-pong: netio's throughput cost below bpftrace's (round trips/s ratio to no "
                "agent: netio {netio:.3f}, bpftrace {bpftrace:.3f}; netio faster in {wins} of "
                "{pairs} rounds, signed-rank p = {p:.3g})",
    "db_throughput": "{label}: netio's throughput cost below bpftrace's (throughput ratio to no "
                     "agent: netio {netio:.3f}, bpftrace {bpftrace:.3f}; no-agent spread "
                     "{spread:.0%})",
    "db_cpu": "{name}: netio's CPU per operation below bpftrace's (ratio to no agent: netio "
              "{netio:.3f}, bpftrace {bpftrace:.3f})",
    "scale_cpu": "userspace under {goal}% of one core: {cpu_pct:.2f}%",
    "scale_rss": "peak RSS under {goal_mib} MiB: {rss_mib:.1f} MiB",
    "soak_exact": "soak: netio's target totals equal the servers' own counts (sent {netio_sent:,} "
                  "of {truth_sent:,} bytes, received {netio_received:,} of {truth_received:,})",
    "soak_rss": "soak: RSS flat after warm-up (within {flat_mib} MiB from minute {warm_min} to the "
                "end): {growth_mib:+.2f} MiB",
    "soak_threshold": "soak: every heavy client raised the per-peer threshold under its own "
                      "address: {raised} of {heavy}",
}
VERDICTS = {
    True: "met",
    False: "**not met**",
    None: "not shown (within the noise: the per-round ranges overlap, the difference is within "
          "the no-agent spread, or the sign test finds none)",
}


# The number formats of the tables.


def f0(x):
    return f"{x:,.0f}"


def f1(x):
    return f"{x:,.1f}"


def f2(x):
    return f"{x:.2f}"


def f3(x):
    return f"{x:.3f}"


def spread(s, fmt):
    """A Summary's range, lowest–highest."""
    if s.low is None:
        return "n/a"
    return f"{fmt(s.low)}–{fmt(s.high)}"


def workload_label(key):
    """A workload's name with its throughput's unit, as the throughput table names it."""
    name, unit = WORKLOAD_NAMES[key]
    return f"{name} ({unit})"


def goal_text(goal):
    """A goal's sentence, for the Goals list and report.py's output."""
    v = dict(goal.values)
    if goal.kind == "cost":
        v["goal"] = COST_GOAL
    elif goal.kind == "scale_cpu":
        v["goal"] = CPU_GOAL
    elif goal.kind == "scale_rss":
        v["rss_mib"], v["goal_mib"] = v["rss_peak_kb"] / 1024, RSS_GOAL_KB // 1024
    elif goal.kind == "soak_rss":
        v.update(growth_mib=v["growth_kb"] / 1024, flat_mib=SOAK_FLAT_KB / 1024,
                 warm_min=f"{v['warm_s'] / 60:.3g}")
    elif goal.kind in ("db_throughput", "db_cpu"):
        v["label"], v["name"] = workload_label(v["workload"]), WORKLOAD_NAMES[v["workload"]][0]
    return GOALS[goal.kind].format(**v)


def ratio(x):
    """A ratio of the cost reading, or None where a case did not run."""
    return f"{x:.2f}" if measured(x) else None


# ---- the template ----


def parse(text):
    """The template as a tree: lines, {"if", "not", "then", "else"} and {"fill"} nodes."""
    root = []
    stack = [(None, root)]
    for line in text.split("\n"):
        m = DIRECTIVE.fullmatch(line)
        if not m:
            stack[-1][1].append(line)
            continue
        word = m.group(1)
        if word.startswith("#"):
            continue
        if word == "else":
            node = stack[-1][0]
            stack[-1] = (node, node["else"])
        elif word == "end":
            stack.pop()
        else:
            node = {"fill": []} if word == "fill" else \
                {"if": m.group(3), "not": bool(m.group(2)), "then": [], "else": []}
            stack[-1][1].append(node)
            stack.append((node, node["fill"] if word == "fill" else node["then"]))
    if len(stack) != 1:
        raise ValueError(f"{TEMPLATE}: an if or fill without its end")
    return root


def expand(nodes, values):
    """The output lines of a parsed template."""
    out = []
    for node in nodes:
        if isinstance(node, str):
            m = LIST.fullmatch(node)
            if m and isinstance(values[m.group(1)], list):
                out.extend(values[m.group(1)])
            else:
                out.append(Template(node).substitute(values))
        elif "fill" in node:
            item = " ".join(line.strip() for line in expand(node["fill"], values))
            out.append(textwrap.fill(item.removeprefix("- "), width=FILL_WIDTH,
                                     initial_indent="- ", subsequent_indent="  "))
        else:
            keep = bool(values[node["if"]]) != node["not"]
            out.extend(expand(node["then"] if keep else node["else"], values))
    return out


# ---- each section's values ----


def machine_values(m, facts):
    """The machine and the run: its facts and the load while it ran."""
    return {
        "facts": [f"| {k} | {facts[k]} |" for k in FACTS if k in facts],
        "loads": "; ".join(f"{n}: {load:.2f}, {int(b)}"
                           for n, load, b in m["loads"] if load is not None),
        "quiet": m["quiet"],
        "pingpong": m["pingpong"],
        "connects_n": m["connects"],
        "run_date": facts.get("date", "?"),
        "run_netio": facts.get("netio", "?"),
    }


def cost_values(a):
    """The cost section: its tables, why alone, the reading; and the hash path's goal line."""
    rows = []
    for row in a["cost_table"]:
        ratio_text = "1" if row["case"] == "empty" else \
            f"**{f2(row['ratio'])}** ({spread(row['rounds'], f2)})"
        rows.append(f"| {COST_LABELS[row['case']]} | sock_{row['hook']}_length | "
                    f"{f1(row['ns'].median)} ({spread(row['ns'], f1)}) | {ratio_text} | "
                    f"{f0(row['events'])} |")
    v = {"cost_rows": rows}
    alone = a["alone"]
    v["alone"] = bool(alone)
    if alone:
        v.update(first=f1(alone["first"]), second=f1(alone["second"]),
                 second_over_first=f2(alone["ratio"]),
                 beside=", ".join(f"{f2(r)}x on sock_{h}_length" for h, r in alone["beside"]))
    v["stages"] = a["stages"] is not None
    v["stage_rows"] = [f"| {STAGE_LABELS[case]} | {f1(ns.median)} ({spread(ns, f1)}) | {f2(r)} |"
                       for case, ns, r in a["stages"] or []]
    r = a["reading"]
    v["reading"] = r is not None
    if r:
        v.update((k, ratio(r[k])) for k in ("untracked", "tracked", "tracked_hash", "lookup",
                                            "stage_count", "stage_count_btf", "bpftrace"))
        v["floor"] = None
        if measured(r["storage"]) and measured(r["storage_recv"]) and measured(r["tracked_recv"]):
            d_send, d_recv = r["tracked"] - r["storage"], r["tracked_recv"] - r["storage_recv"]
            v.update(storage=f2(r["storage"]), storage_recv=f2(r["storage_recv"]),
                     tracked_recv=f2(r["tracked_recv"]), floor=f"{d_send:+.2f}",
                     floor_recv=f"{d_recv:+.2f}", floor_negative=min(d_send, d_recv) < 0)
    hp = a["hash_path"]
    v["hash_path"] = " / ".join(f"{x:.2f}x" for x in hp)
    if hp:
        v["within_or_above"] = "within" if max(hp) <= COST_GOAL else "above"
    v["cost_goal"] = f"{COST_GOAL}"
    return v


def against_none_rows(table, unit, digits):
    """A table of analysis.against_none as markdown rows: the value and its spread, and
    the difference to no agent."""
    fmt = lambda x: f"{x:,.{digits}f}"
    signed = lambda x: f"{x:+.{digits}f}"
    rows = []
    for row in table or []:
        diff = ""
        if row["diff"]:
            diff = (f"{signed(row['diff'].median)} {unit} ({spread(row['diff'], signed)}), "
                    f"{row['pct']:+.1f}%")
        rows.append(f"| {row['agent']} | {fmt(row['value'].median)} "
                    f"({spread(row['value'], fmt)}) | {diff} |")
    return rows


def syscall_values(table):
    """What every system call pays."""
    return {"syscalls": table is not None, "syscall_rows": against_none_rows(table, "ns", 1)}


def connect_values(table):
    """What every loopback connection pays."""
    return {"connects": table is not None, "connect_rows": against_none_rows(table, "µs", 2)}


def pingpong_values(pp):
    """The end-to-end ping-pong."""
    rows = []
    for row in pp["table"]:
        tput = f0(row["throughput"])
        if row["ratio"] is not None:
            tput += f", **{f3(row['ratio'])}** ({spread(row['rounds'], f3)})"
        rows.append(f"| {row['agent']} | {f2(row['wall'].median)} ({spread(row['wall'], f2)}) | "
                    f"{tput} | {f2(row['cpu'].median)} ({spread(row['cpu'], f2)}) |")
    v = {"pingpong_rows": rows, "difference": pp["difference"] is not None, "rounds": pp["rounds"]}
    d = pp["difference"]
    if d:
        dw, dc = d["netio"]
        v.update(netio_wall=f"{dw:+.0f}", netio_cpu=f"{dc:+.0f}", netio_wall_event=f"{dw / 4:+.0f}",
                 netio_cpu_event=f"{dc / 4:+.0f}", bpftrace_wall=None)
        if d["bpftrace"]:
            bw, bc = d["bpftrace"]
            v.update(bpftrace_wall=f"{bw:+.0f}", bpftrace_cpu=f"{bc:+.0f}")
    r = pp["rounds"]
    if r:
        v.update(wins=r["wins"], pairs=r["pairs"], losses=r["losses"],
                 bpftrace_slower=f"{r['bpftrace_slower_pct']:+.1f}",
                 p_netio=f"{r['p_netio']:.3g}", p_sign=f"{r['p_sign']:.3g}")
    return v


def ratio_rows(table, fmt, label_of):
    """The rows of a table of WORKLOADS by AGENTS (analysis.ratio_table)."""
    rows = []
    for key, cells in table:
        texts = []
        for c in cells:
            if c is None:
                texts.append("n/a")
            elif "ratio" not in c:
                texts.append(f"{fmt(c['value'].median)} ({spread(c['value'], fmt)})")
            else:
                texts.append(f"{fmt(c['value'].median)}, **{f3(c['ratio'])}** "
                             f"({spread(c['rounds'], f3)})")
        rows.append(f"| {label_of(key)} | " + " | ".join(texts) + " |")
    return rows


def database_values(db):
    """The database workloads' throughput and CPU per operation."""
    spreads = ", ".join(f"{WORKLOAD_NAMES[key][0]} {s:.0%}" for key, s in db["spread"].items())
    return {
        "throughput_rows": ratio_rows(db["throughput"], f0, workload_label),
        "noise": spreads,
        "cpu_rows": db["cpu"] and ratio_rows(db["cpu"], f2, lambda key: WORKLOAD_NAMES[key][0]),
    }


def scale_values(s):
    """netio itself at scale; the section's heading stays without its numbers."""
    v = {"scale": bool(s)}
    if s:
        v.update(
            processes=f"{int(s.get('tracked_processes', 0)) or 'its'}",
            connections=f0(s.get("connections", 0)),
            pid_max=f0(s.get("pid_max", 0)),
            tracked_processes=f0(s.get("tracked_processes", 0)),
            started_ms=f0(s.get("started_ms", 0)),
            first_traffic_ms=f0(s.get("first_traffic_ms", 0)),
            cpu_first_pct=f"{s.get('cpu_first_pct', 0):.2f}",
            cpu_pct=f"{s.get('cpu_pct', 0):.2f}",
            cpu_total_s=f"{s.get('cpu_total_s', 0):.2f}",
            rss_peak=f"{s.get('rss_peak_kb', 0) / 1024:.1f}",
            rss_end=f"{s.get('rss_kb', 0) / 1024:.1f}",
            scale_records=f0(s.get("records_per_min", 0)),
            scale_degraded=f0(s.get("degraded", 0)),
        )
    return v


def mib(kb):
    return f"{kb / 1024:.1f}"


def soak_values(so):
    """The soak: its setup from the client's summary, its totals, RSS and CPU, per minute."""
    v = {"soak": bool(so)}
    if not so:
        return v
    t, c, k = so["totals"], so["client"], so["kinds"]
    step = max(1, len(so["minutes"]) // 6)
    rows = [f"| {m['minute']} | {mib(m['rss_kb'])} | {m['cpu_pct']:.2f} | {f0(m['records'])} |"
            for m in so["minutes"] if m["minute"] % step == 0 or m["minute"] == 1]

    def same(a, b):
        d = int(t.get(a, 0)) - int(t.get(b, 0))
        return "**exact**" if d == 0 else f"**differ by {d:+,}**"
    kinds = ", ".join(f"{name} {f0(n)}" for name, n in sorted(k.items(), key=lambda x: -x[1]))
    degraded = ", ".join(f"{name} {f0(n)}" for name, n in sorted(so["degraded"].items())) or "none"
    v.update(
        soak_length=f"{so['end_s'] / 60:.0f} minutes" if so["end_s"] >= 120 else f"{so['end_s']} s",
        soak_fork_conns=f0(c.get("fork_conns", 0)), soak_long_conns=f0(c.get("long_conns", 0)),
        soak_up=f0(c.get("up", 0)), soak_down=f0(c.get("down", 0)),
        soak_heavy_every=f0(c.get("heavy_every", 0)), soak_heavy_secs=f0(c.get("heavy_secs", 0)),
        soak_heavy_rate=mib(c.get("heavy_rate", 0) / 1024),
        soak_addresses=f0(t.get("client_addresses", 0)),
        soak_fork=f0(t.get("fork_connections", 0)), soak_long=f0(t.get("long_connections", 0)),
        soak_failures=f0(t.get("client_failures", 0)),
        soak_sent=f0(t.get("truth_sent", 0)), soak_netio_sent=f0(t.get("netio_sent", 0)),
        soak_received=f0(t.get("truth_received", 0)),
        soak_netio_received=f0(t.get("netio_received", 0)),
        soak_sent_same=same("netio_sent", "truth_sent"),
        soak_received_same=same("netio_received", "truth_received"),
        soak_warm_min=f"{so['warm_s'] / 60:.3g}", soak_rss_warm=mib(so["rss_warm_kb"]),
        soak_rss_end=mib(so["rss_end_kb"]), soak_rss_max=mib(so["rss_max_after_kb"]),
        soak_rss_peak=mib(so["rss_peak_kb"]), soak_growth=f"{so['rss_growth_kb'] / 1024:+.2f}",
        soak_cpu=f"{so['cpu_pct']:.2f}", soak_records=f0(t.get("records", 0)),
        soak_records_min=f0(so["records_per_min"]), soak_kinds=kinds, soak_degraded=degraded,
        soak_heavy=f0(t.get("heavy_clients", 0)), soak_raised=f0(t.get("heavy_raised", 0)),
        soak_other_breaches=f0(t.get("other_breaches", 0)),
        soak_other_records=f0(t.get("other_peer_records", 0)),
        soak_rows=rows, soak_peers=int(so["netio"].get("peers", 0)),
    )
    return v


def kernel_values(table):
    """The backends on the qemu kernels."""
    rows = []
    for k, cells in table:
        texts = []
        for c in cells:
            if c is None:
                texts.append("n/a")
            elif c == "unsupported":
                texts.append("not supported")
            elif "ratio" not in c:
                texts.append(f"{f1(c['us'].median)} ({spread(c['us'], f1)})")
            else:
                texts.append(f"{f1(c['us'].median)}, **{f2(c['ratio'])}x** ({spread(c['us'], f1)})")
        rows.append(f"| {k} | " + " | ".join(texts) + " |")
    return {"kernels": bool(table), "kernel_rows": rows}


def document(a, facts):
    """docs/benchmarks.md for the analysis a of a run with these facts."""
    values = machine_values(a["machine"], facts)
    values.update(cost_values(a))
    values.update(syscall_values(a["syscalls"]))
    values.update(connect_values(a["connects"]))
    values.update(pingpong_values(a["pingpong"]))
    values.update(database_values(a["databases"]))
    values.update(scale_values(a["scale"]))
    values.update(soak_values(a["soak"]))
    values.update(kernel_values(a["kernels"]))
    values["goals"] = [f"- {VERDICTS[g.ok]}: {goal_text(g)}" for g in a["goals"]]
    with open(TEMPLATE) as f:
        return "\n".join(expand(parse(f.read()), values))
