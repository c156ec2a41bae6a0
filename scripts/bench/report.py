#!/usr/bin/env python3
"""Turns a scripts/benchmark run into docs/benchmarks.md and its plot.

    report.py RUN_DIR MARKDOWN SVG

RUN_DIR holds results.tsv (section, name, round, metric, value per line)
and facts.tsv (key, value). Prints whether each goal holds. analysis.py finds
the numbers and verdicts, render.py fills the template benchmarks.md.in with
them, plot.py draws the plot.
"""
import sys

import analysis
import plot
import render

STDOUT_VERDICTS = {True: "met", False: "NOT MET", None: "NOT SHOWN (noise)"}


def main():
    run, md_path, svg_path = sys.argv[1:4]
    rows, facts = analysis.load(run)
    a = analysis.analyse(rows, facts)
    md = render.document(a, facts)
    open(md_path, "w").write(md)
    plot.svg(svg_path, a["cost"], a["databases"]["ratios"])
    for goal in a["goals"]:
        print(f"goal {STDOUT_VERDICTS[goal.ok]}: {render.goal_text(goal)}")


if __name__ == "__main__":
    main()
