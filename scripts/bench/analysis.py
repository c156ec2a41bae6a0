"""From a scripts/benchmark run's raw results to the numbers, statistics and verdicts.

Plain functions over plain data, no formatting: render.py turns what `analyse()`
returns into docs/benchmarks.md, plot.py into its plot. Medians over rounds; a
`Summary` keeps the lowest and highest round beside the median for the spreads.
"""
import math
import statistics
from collections import defaultdict
from typing import NamedTuple

COST_GOAL = 1.5
CPU_GOAL = 1.0
RSS_GOAL_KB = 32 * 1024
# The soak: its first sixth (at most 5 minutes) is warm-up; after it, RSS
# is flat when it ends within this much of where it was.
SOAK_WARMUP_S = 300
SOAK_FLAT_KB = 1024

AGENTS = ["none", "netio", "bpftrace", "nethogs"]
PP_AGENTS = ["none", "netio", "bpftrace"]
WORKLOADS = ["pgbench_select_tps", "redis_get_rps", "redis_set_rps", "sysbench_ro_tps"]
HOOKS = ["send", "recv"]
KERNEL_MODES = ["none", "fentry", "tracepoint", "kprobe"]
# The cost table's rows, in order: (case, kind of program).
COST_ROWS = [("empty", "empty"), ("untracked", "netio"), ("tracked", "netio"),
             ("tracked_hash", "netio"), ("lookup", "lookup"), ("storage", "storage"),
             ("bpftrace", "bpftrace")]
# The stage table's rows, in order: the hash path's steps, then netio's two paths.
STAGE_CASES = ["lookup", "stage_reads", "stage_count", "stage_count_btf", "tracked_hash", "tracked"]


class Summary(NamedTuple):
    """A series' median and range; low and high are None for no values."""
    median: float
    low: float | None
    high: float | None


class Goal(NamedTuple):
    """One goal: which (kind), its numbers, and ok (True, False, or None: within the noise)."""
    kind: str
    values: dict
    ok: bool | None


def load(run):
    """(rows, facts) of a run directory: results.tsv's complete lines and facts.tsv."""
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
    """The median, NaN for no values (a case that did not run), which the reports skip."""
    return statistics.median(xs) if xs else float("nan")


def summary(xs):
    """A series' Summary: its median and its lowest and highest round."""
    xs = list(xs)
    return Summary(med(xs), min(xs) if xs else None, max(xs) if xs else None)


def measured(x):
    """False for the NaN a median of nothing gives."""
    return x == x


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
    if n == 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n


# ---- the machine ----


def conditions(rows):
    """{check: {metric: value}} of the load checks, in the run's order."""
    cond = defaultdict(dict)
    for section, name, rnd, metric, value in rows:
        if section == "conditions":
            cond[name][metric] = value
    return cond


def machine(rows, facts):
    """The load at each check, whether the machine was quiet, and the ping-pong's and the
    connection churn's lengths."""
    cond = conditions(rows)
    loads = [(name, c.get("loadavg1"), c.get("busy_processes")) for name, c in cond.items()]
    start = cond.get("start", {})
    quiet = start.get("loadavg1", 9) < 0.5 and all((b or 0) == 0 for _, _, b in loads)
    settings = facts.get("settings", "")
    pingpong = settings.split("pingpong=")[-1].split()[0]
    connects = settings.split("connects=")[-1].split()[0] if "connects=" in settings else "?"
    return {"loads": loads, "quiet": quiet, "pingpong": pingpong, "connects": connects}


# ---- per-event cost ----


def cost_samples(rows):
    """(cost, cost_r, events): per (case, kind, hook), the ns per event of each round
    as a list and as {round: ns}, and the events per run."""
    cost = defaultdict(list)
    cost_r = defaultdict(dict)
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
    return cost, cost_r, events


def cost_table(cost, cost_r, events):
    """The cost table's rows: each program's ns per event, its ratio to the empty
    program's median and the per-round ratios to the empty program's run of the
    same round."""
    table = []
    for case, kind in COST_ROWS:
        for hook in HOOKS:
            n = cost[(case, kind, hook)]
            if not n:
                continue
            e = cost_r.get(("empty", "empty", hook), {})
            rs = [v / e[r] for r, v in cost_r.get((case, kind, hook), {}).items() if r in e]
            table.append({
                "case": case, "hook": hook, "ns": summary(n),
                "ratio": med(n) / med(cost[("empty", "empty", hook)]),
                "rounds": summary(rs), "events": med(events[(case, kind, hook)]),
            })
    return table


def alone(cost):
    """Why each program is timed alone: the second of two empty programs against the
    first, and netio timed beside an empty program; None without the empty_pair case."""
    first = cost.get(("empty_pair", "empty", "send"))
    second = cost.get(("empty_pair", "empty2", "send"))
    if not (first and second):
        return None
    beside = [(h, cost.get(("tracked_beside", "netio", h)),
               cost.get(("tracked_beside", "empty", h))) for h in HOOKS]
    return {
        "first": med(first), "second": med(second), "ratio": med(second) / med(first),
        "beside": [(h, med(n) / med(e)) for h, n, e in beside if n and e],
    }


def stages(cost):
    """The stage table's rows (case, ns, ratio to the empty program); None without stage_count."""
    if not cost.get(("stage_count", "stage_count", "send")):
        return None
    table = []
    for case in STAGE_CASES:
        kind = "netio" if case.startswith("tracked") else case
        xs, e = cost.get((case, kind, "send")), cost.get(("empty", "empty", "send"))
        if xs and e:
            table.append((case, summary(xs), med(xs) / med(e)))
    return table


def reading(cost):
    """The ratios the cost tables' reading cites (NaN where a case did not run);
    None without netio's three cases and the lookup."""
    def ratio(case, kind=None, hook="send"):
        return (med(cost.get((case, kind or case, hook), []))
                / med(cost.get(("empty", "empty", hook), [])))

    r = {c: ratio(c, "netio") for c in ("untracked", "tracked", "tracked_hash")}
    r.update((k, ratio(k)) for k in ("lookup", "stage_count", "stage_count_btf", "bpftrace"))
    if not all(measured(r[k]) for k in ("untracked", "tracked", "tracked_hash", "lookup")):
        return None
    r["storage"], r["storage_recv"] = ratio("storage"), ratio("storage", hook="recv")
    r["tracked_recv"] = ratio("tracked", "netio", "recv")
    return r


def cost_goals(table):
    """netio's untracked and tracked programs against COST_GOAL, send and receive."""
    return [Goal("cost", {"case": row["case"], "hook": row["hook"], "ratio": row["ratio"]},
                 row["ratio"] <= COST_GOAL)
            for row in table if row["case"] in ("untracked", "tracked")]


def hash_path(cost):
    """netio's hash path against the empty program, send then receive, where measured."""
    return [med(cost[("tracked_hash", "netio", h)]) / med(cost[("empty", "empty", h)])
            for h in HOOKS if cost.get(("tracked_hash", "netio", h))]


# ---- every system call ----


def against_none(rows, section, metric, agents):
    """Per agent: its `metric` of `section`, and (but for no agent) the per-round
    differences to no agent's and the median per-round ratio's excess in percent; None
    without both no agent and netio."""
    per = defaultdict(dict)
    for sec, name, rnd, met, value in rows:
        if sec == section and met == metric:
            per[name][rnd] = value
    if not (per.get("none") and per.get("netio")):
        return None
    base = per["none"]
    table = []
    for a in agents:
        xs = per.get(a)
        if not xs:
            continue
        diff = pct = None
        if a != "none":
            diff = summary(v - base[k] for k, v in xs.items() if k in base)
            pct = (med([v / base[k] for k, v in xs.items() if k in base]) - 1) * 100
        table.append({"agent": a, "value": summary(xs.values()), "diff": diff, "pct": pct})
    return table


def syscalls(rows):
    """ns per getppid() per agent, against no agent's."""
    return against_none(rows, "syscall", "ns_per_call", PP_AGENTS)


# ---- loopback connections ----


def connects(rows):
    """µs per loopback connection with no agent and with netio."""
    return against_none(rows, "connect", "us_per_conn", ["none", "netio"])


# ---- ping-pong ----


def pingpong(rows):
    """The end-to-end ping-pong: per agent wall and CPU time per round trip, throughput
    and its ratio to no agent's; the differences to no agent; and netio against
    bpftrace round by round, with the verdict."""
    pp = defaultdict(list)
    pp_round = defaultdict(dict)  # (agent, metric) -> {round: value}
    for section, name, rnd, metric, value in rows:
        if section == "pingpong" and name in PP_AGENTS:
            pp[(name, metric)].append(value)
            pp_round[(name, metric)][rnd] = value
    table = []
    pp_ratio = {}
    base_w = pp_round[("none", "wall_us")]
    for a in PP_AGENTS:
        wa, ca = pp[(a, "wall_us")], pp[(a, "cpu_us")]
        if not wa:
            continue
        row = {"agent": a, "wall": summary(wa), "throughput": 1e6 / med(wa), "ratio": None,
               "cpu": summary(ca)}
        if a != "none" and base_w:
            per = [base_w[k] / v for k, v in pp_round[(a, "wall_us")].items() if k in base_w]
            r = med(pp[("none", "wall_us")]) / med(wa)
            pp_ratio[a] = r
            row["ratio"], row["rounds"] = r, summary(per)
        table.append(row)
    result = {"table": table, "difference": None, "rounds": None, "goal": None}
    if pp[("none", "wall_us")] and pp[("netio", "wall_us")]:
        def extra(a, metric):
            return (med(pp[(a, metric)]) - med(pp[("none", metric)])) * 1000

        d = {"netio": (extra("netio", "wall_us"), extra("netio", "cpu_us")), "bpftrace": None}
        if pp[("bpftrace", "wall_us")]:
            d["bpftrace"] = (extra("bpftrace", "wall_us"), extra("bpftrace", "cpu_us"))
        result["difference"] = d
    n, b = pp_ratio.get("netio"), pp_ratio.get("bpftrace")
    nw, bw = pp_round[("netio", "wall_us")], pp_round[("bpftrace", "wall_us")]
    pairs = [(nw[k], bw[k]) for k in nw if k in bw]
    if n is not None and b is not None and pairs:
        # Round by round, as the rounds' own speed varies more than the agents
        # differ: log(bpftrace's wall time / netio's), above 0 when netio is faster.
        diffs = [math.log(y / x) for x, y in pairs]
        wins = sum(1 for d in diffs if d > 0)
        losses = sum(1 for d in diffs if d < 0)
        p_netio, p_bpftrace = signed_rank_test(diffs), signed_rank_test([-d for d in diffs])
        result["rounds"] = {
            "wins": wins, "losses": losses, "pairs": len(pairs),
            "bpftrace_slower_pct": (math.exp(med(diffs)) - 1) * 100,
            "p_netio": p_netio, "p_sign": sign_test(wins, wins + losses),
        }
        shown = True if p_netio < 0.05 else False if p_bpftrace < 0.05 else None
        result["goal"] = Goal("pingpong", {"netio": n, "bpftrace": b, "wins": wins,
                                           "pairs": len(pairs), "p": p_netio}, shown)
    return result


# ---- databases ----


def db_rounds(rows, section):
    """{(workload, agent): {round: value}} of one of the db and dbcpu sections."""
    data = defaultdict(dict)
    for s, name, rnd, metric, value in rows:
        if s == section and value > 0:
            data[(name, metric)][rnd] = value
    return data


def ratio_table(data):
    """WORKLOADS by AGENTS from data[(workload, agent)] = {round: value}: each cell None
    (no runs) or the median and spread, and but for no agent the ratio of the medians
    to no agent's and the per-round ratios to no agent's run of the same round."""
    table = []
    for key in WORKLOADS:
        base = data.get((key, "none"), {})
        cells = []
        for a in AGENTS:
            vals = data.get((key, a), {})
            if not vals:
                cells.append(None)
                continue
            v = list(vals.values())
            cell = {"agent": a, "value": summary(v)}
            if a != "none":
                cell["ratio"] = med(v) / med(list(base.values())) if base else float("nan")
                cell["per"] = [vals[k] / base[k] for k in vals if k in base]
                cell["rounds"] = summary(cell["per"])
            cells.append(cell)
        table.append((key, cells))
    return table


def ratios_of(table):
    """{(workload, agent): (ratio, per-round ratios)} of a ratio_table."""
    return {(key, c["agent"]): (c["ratio"], c["per"])
            for key, cells in table for c in cells if c and "ratio" in c}


def databases(rows):
    """Throughput and busy CPU per operation under each agent, how far the no-agent
    runs spread, and netio against bpftrace on each, judged against that noise."""
    db, dbcpu = db_rounds(rows, "db"), db_rounds(rows, "dbcpu")
    throughput = ratio_table(db)
    cpu = ratio_table(dbcpu) if dbcpu else None
    spread_of = {}
    for key in WORKLOADS:
        v = list(db.get((key, "none"), {}).values())
        if len(v) > 1:
            spread_of[key] = (max(v) - min(v)) / med(v)
    ratios, cpu_ratios = ratios_of(throughput), ratios_of(cpu or [])

    # A difference within the no-agent runs' own spread, or between
    # per-round ranges that overlap, shows nothing.
    def overlap(x, y):
        return bool(x[1] and y[1]) and min(x[1]) <= max(y[1]) and min(y[1]) <= max(x[1])

    goals = []
    for key in WORKLOADS:
        n, b = ratios.get((key, "netio")), ratios.get((key, "bpftrace"))
        if n and b:
            noisy = abs(n[0] - b[0]) < spread_of.get(key, 0) or overlap(n, b)
            goals.append(Goal("db_throughput", {"workload": key, "netio": n[0], "bpftrace": b[0],
                                                "spread": spread_of.get(key, 0)},
                              None if noisy else n[0] >= b[0]))
        n, b = cpu_ratios.get((key, "netio")), cpu_ratios.get((key, "bpftrace"))
        if n and b:
            goals.append(Goal("db_cpu", {"workload": key, "netio": n[0], "bpftrace": b[0]},
                              None if overlap(n, b) else n[0] <= b[0]))
    return {"throughput": throughput, "cpu": cpu, "spread": spread_of, "ratios": ratios,
            "goals": goals}


# ---- scale ----


def scale(rows):
    """netio's numbers with many processes and connections ({metric: value}), and its goals."""
    s = {metric: value for section, name, rnd, metric, value in rows if section == "scale"}
    goals = []
    if s:
        goals = [Goal("scale_cpu", {"cpu_pct": s.get("cpu_pct", 0)},
                      s.get("cpu_pct", 99) < CPU_GOAL),
                 Goal("scale_rss", {"rss_peak_kb": s.get("rss_peak_kb", 0)},
                      s.get("rss_peak_kb", 1e9) < RSS_GOAL_KB)]
    return {"numbers": s, "goals": goals}


# ---- soak ----


def soak(rows):
    """The soak's samples by time, per-minute figures, its totals and its goals (None: no soak)."""
    samples = defaultdict(dict)
    other = defaultdict(dict)
    for section, name, rnd, metric, value in rows:
        if section != "soak":
            continue
        if name == "sample":
            samples[int(rnd)][metric] = value
        else:
            other[name][metric] = value
    series = [(t, v) for t, v in sorted(samples.items())
              if {"rss_kb", "cpu_s", "records"} <= v.keys()]
    if len(series) < 2:
        return None
    end = series[-1][0]
    warm = min(SOAK_WARMUP_S, end // 6 // 10 * 10)

    def at(t):
        """The last sample at or before t."""
        return [v for s, v in series if s <= t][-1]

    minutes = []
    for m in range(1, end // 60 + 1):
        a, b = at(60 * (m - 1)), at(60 * m)
        minutes.append({"minute": m, "rss_kb": b["rss_kb"],
                        "cpu_pct": (b["cpu_s"] - a["cpu_s"]) * 100 / 60,
                        "records": b["records"] - a["records"]})
    after = [v["rss_kb"] for t, v in series if t >= warm]
    first, last = series[0][1], series[-1][1]
    totals = other["totals"]
    exact = (totals.get("netio_sent") == totals.get("truth_sent")
             and totals.get("netio_received") == totals.get("truth_received"))
    growth = last["rss_kb"] - at(warm)["rss_kb"]
    heavy = int(totals.get("heavy_clients", 0))
    result = {
        "series": [(t, v["rss_kb"], v["cpu_s"], v["records"]) for t, v in series],
        "minutes": minutes, "end_s": end, "warm_s": warm,
        "rss_warm_kb": at(warm)["rss_kb"], "rss_end_kb": last["rss_kb"],
        "rss_max_after_kb": max(after), "rss_growth_kb": growth,
        "rss_peak_kb": other["netio"].get("rss_peak_kb", 0),
        "cpu_pct": (last["cpu_s"] - first["cpu_s"]) * 100 / (end - series[0][0]),
        "records_per_min": (last["records"] - first["records"]) * 60 / (end - series[0][0]),
        "totals": totals, "client": other["client"], "kinds": other["kinds"],
        "degraded": other["degraded"], "netio": other["netio"], "exact": exact,
    }
    result["goals"] = [
        Goal("soak_exact", {k: int(totals.get(k, 0)) for k in
                            ("netio_sent", "truth_sent", "netio_received", "truth_received")},
             exact),
        Goal("soak_rss", {"growth_kb": growth, "warm_s": warm}, growth <= SOAK_FLAT_KB),
    ]
    if heavy:
        result["goals"].append(Goal("soak_threshold", {"raised": int(totals.get("heavy_raised", 0)),
                                                       "heavy": heavy},
                                    totals.get("heavy_raised") == heavy))
    return result


# ---- qemu kernels ----


def kernels(rows):
    """Per kernel, in version order, per KERNEL_MODES: None (did not run), "unsupported",
    or µs per round trip and, but for no agent, the ratio to no agent's median."""
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
    table = []
    for k in sorted({k for k, _ in kern}, key=lambda v: [int(x) for x in v.split(".")]):
        base = med(kern.get((k, "none"), []))
        cells = []
        for m in KERNEL_MODES:
            xs = kern.get((k, m))
            if not xs:
                cells.append("unsupported" if m in unsupported[k] else None)
            elif m == "none":
                cells.append({"us": summary(xs)})
            else:
                cells.append({"us": summary(xs), "ratio": med(xs) / base})
        table.append((k, cells))
    return table


def analyse(rows, facts):
    """Everything docs/benchmarks.md and its plot show, by section; goals in the report's order."""
    cost, cost_r, events = cost_samples(rows)
    table = cost_table(cost, cost_r, events)
    pp = pingpong(rows)
    db = databases(rows)
    sc = scale(rows)
    so = soak(rows)
    goals = cost_goals(table) + ([pp["goal"]] if pp["goal"] else []) + db["goals"] + sc["goals"] \
        + (so["goals"] if so else [])
    return {
        "machine": machine(rows, facts),
        "cost": cost, "cost_table": table, "alone": alone(cost), "stages": stages(cost),
        "reading": reading(cost), "hash_path": hash_path(cost),
        "syscalls": syscalls(rows), "connects": connects(rows), "pingpong": pp,
        "databases": db, "scale": sc["numbers"],
        "soak": so, "kernels": kernels(rows), "goals": goals,
    }
