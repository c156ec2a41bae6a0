#!/usr/bin/env python3
"""Turns a scripts/benchmark run into docs/benchmarks.md and its plot.

    report.py RUN_DIR MARKDOWN SVG

RUN_DIR holds results.tsv (section, name, round, metric, value per line)
and facts.tsv (key, value). Prints whether each goal holds. analysis.py finds
the numbers and verdicts, render.py fills the template benchmarks.md.in with
them, plot.py draws the plots (SVG, and soak.svg beside it for a soak); a run
of some sections only keeps the rest of an existing MARKDOWN (merge.py) and
its SVG.
"""
import os
import sys

import analysis
import merge
import plot
import render

ALL_SECTIONS = ["cost", "connect", "databases", "scale", "soak", "kernels"]

STDOUT_VERDICTS = {True: "met", False: "NOT MET", None: "NOT SHOWN (noise)"}


def main():
    run, md_path, svg_path = sys.argv[1:4]
    rows, facts = analysis.load(run)
    a = analysis.analyse(rows, facts)
    md = render.document(a, facts)
    ran = facts.get("sections", " ".join(ALL_SECTIONS)).split()
    partial = not set(ALL_SECTIONS) <= set(ran)
    if partial and os.path.exists(md_path):
        md = merge.merge(md, open(md_path).read(), ran)
    open(md_path, "w").write(md)
    if not partial or not os.path.exists(svg_path) or {"cost", "databases"} & set(ran):
        plot.svg(svg_path, a["cost"], a["databases"]["ratios"])
    if a["soak"]:
        plot.soak_svg(os.path.join(os.path.dirname(svg_path), "soak.svg"), a["soak"])
    for goal in a["goals"]:
        print(f"goal {STDOUT_VERDICTS[goal.ok]}: {render.goal_text(goal)}")


if __name__ == "__main__":
    main()
