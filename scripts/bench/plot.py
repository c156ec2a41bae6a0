"""The plot of docs/benchmarks.md (benchmarks.svg), from what analysis.analyse() found.

Two panels: the per-event cost of each program against the empty one on
sock_send_length, and each agent's database throughput against no agent's.
"""
from analysis import WORKLOADS, med

# The workloads' names under the throughput panel's bars.
SHORT_NAMES = {
    "pgbench_select_tps": "pgbench -S",
    "redis_get_rps": "redis GET",
    "redis_set_rps": "redis SET",
    "sysbench_ro_tps": "sysbench ro",
}


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
    for key in WORKLOADS:
        vals = {}
        for a in ("netio", "bpftrace", "nethogs"):
            if (key, a) in ratios:
                r, per = ratios[(key, a)]
                vals[a] = (r, min(per) if per else None, max(per) if per else None)
                lo_r = min([lo_r, r] + per)
                hi_r = max([hi_r, r] + per)
        if vals:
            groups.append((SHORT_NAMES[key], vals))
    panel(520, "database throughput / no agent (1 = no cost)", groups,
          ["netio", "bpftrace", "nethogs"], hi_r + 0.02, lambda v: f"{v:.2f}", ref=1.0,
          vmin=lo_r - 0.02)
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def soak_svg(path, so):
    """The soak (soak.svg): netio's RSS, CPU and records per minute over the run, side by side."""
    W, H, pw, ph, top = 960, 300, 250, 190, 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    end_min = max(so["end_s"] / 60, 1)
    rss = [(t / 60, kb / 1024) for t, kb, _, _ in so["series"]]
    # CPU and records over the minute before each sample (from the start, in
    # the first minute): records come once an interval, so a shorter window
    # would show the intervals rather than the rate.
    cpu, recs = [], []
    for t, _, cpu_s, n in so["series"][1:]:
        t0, _, cpu0, n0 = [p for p in so["series"] if p[0] >= t - 60][0]
        if t > t0:
            cpu.append((t / 60, (cpu_s - cpu0) * 100 / (t - t0)))
            recs.append((t / 60, (n - n0) * 60 / (t - t0)))
    for i, (title, points) in enumerate((("netio RSS (MiB)", rss),
                                          ("netio CPU (% of one core, last minute)", cpu),
                                          ("records a minute (last minute)", recs))):
        x0 = 60 + i * (pw + 60)
        vmax = max([v for _, v in points] + [1e-9]) * 1.15

        def xy(m, v):
            return x0 + pw * m / end_min, top + ph - ph * v / vmax

        out.append(f'<text x="{x0 + pw / 2}" y="30" text-anchor="middle" font-size="14">{title}</text>')
        for k in range(5):
            v = vmax * k / 4
            y = top + ph - ph * k / 4
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + pw}" y2="{y:.1f}" stroke="#eeeeee"/>')
            label = f"{v:.1f}" if vmax < 20 else f"{v:,.0f}"
            out.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        out.append(f'<line x1="{x0}" y1="{top + ph}" x2="{x0 + pw}" y2="{top + ph}" stroke="black"/>')
        for k in range(5):
            m = end_min * k / 4
            out.append(f'<text x="{x0 + pw * k / 4:.1f}" y="{top + ph + 16}" '
                       f'text-anchor="middle">{m:.3g}</text>')
        out.append(f'<text x="{x0 + pw / 2}" y="{top + ph + 34}" text-anchor="middle">minutes</text>')
        if so["warm_s"]:
            wx, _ = xy(so["warm_s"] / 60, 0)
            out.append(f'<line x1="{wx:.1f}" y1="{top}" x2="{wx:.1f}" y2="{top + ph}" '
                       f'stroke="black" stroke-dasharray="4 3"><title>end of warm-up</title></line>')
        line = " ".join("{:.1f},{:.1f}".format(*xy(m, v)) for m, v in points)
        out.append(f'<polyline points="{line}" fill="none" stroke="#d1495b" stroke-width="1.5"/>')
    out.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">dashed: end of warm-up</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")
