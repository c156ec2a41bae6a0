"""Keeps what a partial run of scripts/benchmark did not measure from the page as it was.

A run of some sections (BENCH_SECTIONS) renders a page with only their numbers;
`merge()` takes that page's parts for those sections, and everything else from
the page the last runs wrote: the other sections' text by their `## ` headings
and, in the Goals list, the other sections' goal lines.
"""
import re

# Each section's headings, and the goal lines it writes (a pattern found in
# the first line of the item).
SECTIONS = {
    "cost": (["Cost per event of netio's kernel programs", "What every system call on the "
              "machine pays", "End to end: loopback ping-pong"],
             r"kernel programs within|ping-pong: "),
    "connect": (["What every loopback connection on the machine pays"], r"$^"),
    "databases": (["Database throughput"],
                  r"netio's throughput cost below|netio's CPU per operation below"),
    "scale": (["netio itself at scale"], r": (userspace under|peak RSS under)"),
    "soak": (["The soak: "], r": soak: "),
    "kernels": (["The backends on other kernels", "Not measured in this run"], r"$^"),
    # The cost section's note after the goals (the hash path), last in the list.
    "cost_note": ([], r"^- for comparison, not what this machine runs"),
}


def chunks(text):
    """[(heading, text)] at each `## ` line; the part before the first has heading ""."""
    out = [["", []]]
    for line in text.split("\n"):
        if line.startswith("## "):
            out.append([line[3:], []])
        out[-1][1].append(line)
    return [(h, "\n".join(lines)) for h, lines in out]


def section_of(heading):
    for name, (headings, _) in SECTIONS.items():
        if any(heading.startswith(h) for h in headings):
            return name
    return None


def goal_items(text):
    """The Goals chunk as (head, [items], tail): list items with their continuation lines."""
    lines = text.split("\n")
    first = next((i for i, l in enumerate(lines) if l.startswith("- ")), None)
    if first is None:
        # No goal of its own (a run of sections that have none): the list
        # goes between the heading and what follows it (the plot).
        rest = next((i for i, l in enumerate(lines) if i > 0 and l.strip()), len(lines))
        return lines[:1] + [""], [], [""] + lines[rest:]
    items, i = [], first
    while i < len(lines) and (lines[i].startswith("- ") or lines[i].startswith("  ")):
        if lines[i].startswith("- "):
            items.append([lines[i]])
        else:
            items[-1].append(lines[i])
        i += 1
    return lines[:first], ["\n".join(x) for x in items], lines[i:]


def goal_section(item):
    first = item.split("\n")[0]
    for name, (_, pattern) in SECTIONS.items():
        if re.search(pattern, first):
            return "cost" if name == "cost_note" else name
    return None


def merge(new, old, ran):
    """The page: `new`'s parts for the sections in `ran` and the ones of no section,
    `old`'s for the rest, in the order of the sections."""
    new_chunks, old_chunks = chunks(new), chunks(old)
    out = []
    # The template's order: a heading only the old page has goes before the
    # heading that came after it there.
    old_order = [h for h, _ in old_chunks]
    merged = [h for h, _ in new_chunks]
    for i, h in enumerate(old_order):
        if h in merged:
            continue
        after = next((n for n in old_order[i + 1:] if n in merged), None)
        merged.insert(merged.index(after) if after is not None else len(merged), h)
    new_d, old_d = dict(new_chunks), dict(old_chunks)
    for h in merged:
        sec = section_of(h)
        if h == "The machine and the run":
            # It describes the run of the sections whose numbers need its load.
            sec = "cost" if "cost" in ran else "databases"
        if h == "Goals" and h in old_d and h in new_d:
            out.append(merge_goals(new_d[h], old_d[h], ran))
        elif sec is None or sec in ran:
            if h in new_d:
                out.append(new_d[h])
        elif h in old_d:
            out.append(old_d[h])
    return "\n".join(out)


def merge_goals(new, old, ran):
    """The old list's goal lines of the sections not run, the new list's of those run,
    in the sections' order; the rest of the chunk from the new page."""
    head, new_items, tail = goal_items(new)
    _, old_items, _ = goal_items(old)
    keep = [i for i in old_items if goal_section(i) not in ran]
    fresh = [i for i in new_items if goal_section(i) in ran]
    names = list(SECTIONS)
    rank = {n: k for k, n in enumerate(names)}

    def position(item):
        if re.search(SECTIONS["cost_note"][1], item):
            return rank["cost_note"]
        return rank.get(goal_section(item), len(names))
    items = sorted(keep + fresh, key=position)
    return "\n".join(head + items + tail)
