#!/usr/bin/env python3
"""Builds BENCHMARKS.md (on stdout) from the raw data scripts/bench.sh left in DIR:
machine.txt, footprint.txt, commands.txt, reports/KIND-WORKLOAD-RUN.json (the
ssehub-soak reports) with their .meta.json, and logs/floor-WORKLOAD-RUN.log (the cost
floor's own frames_per_write count). Only numbers measured in that run. The floor
(bench/floor.c) and the axum peer (bench/axum-peer) are columns wherever they have
reports; without any, the page is ssehub vs nchan only.

Usage: summarize.py DIR [--charts CHART_DIR --page PAGE]
  With --charts, one SVG per workload (CHART_DIR/W1.svg ... W5.svg: the servers side by
  side) is written there and linked from the page, relative to PAGE (the Markdown file
  stdout goes to)."""

import glob
import html
import json
import os
import re
import statistics
import sys

args = sys.argv[1:]
out = args.pop(0)
charts_dir = page_path = None
while args:
    flag = args.pop(0)
    if flag == "--charts":
        charts_dir = args.pop(0)
    elif flag == "--page":
        page_path = args.pop(0)
    else:
        sys.exit(f"summarize.py: unknown argument {flag}")
# Columns: ssehub, then the floor and the axum peer (where they have reports), then nchan;
# ratios ssehub/floor, ssehub/axum, ssehub/nchan in that order.
KINDS = ("ssehub", "floor", "axum", "nchan")
PEERS = ("axum", "nchan")  # the products ssehub must be ahead of (the floor is not one)


def kv(path):
    d = {}
    for line in open(path):
        line = line.rstrip("\n")
        if " " in line:
            k, v = line.split(" ", 1)
            d[k] = v
    return d


machine = kv(os.path.join(out, "machine.txt"))
runs_n = int(machine["runs"])

# footprint.txt: "size dynamic N", "start_rss static R KIB", ...
sizes, start_rss, linkage = {}, {}, ""
for line in open(os.path.join(out, "footprint.txt")):
    f = line.split()
    if f[0] == "size":
        sizes[f[1]] = int(f[2])
    elif f[0] == "start_rss":
        start_rss.setdefault(f[1], []).append(int(f[3]))
    elif f[0] == "linkage":
        linkage = " ".join(f[2:])

reports = {}  # (kind, workload) -> [report with "_meta"]
for path in sorted(glob.glob(os.path.join(out, "reports", "*.json"))):
    if path.endswith(".meta.json"):
        continue
    meta = json.load(open(path[: -len(".json")] + ".meta.json"))
    try:
        r = json.load(open(path))
    except (ValueError, OSError):
        r = {}
    r["_meta"] = meta
    reports.setdefault((meta["kind"], meta["workload"]), []).append(r)


def has_floor(w):
    return ("floor", w) in reports


any_floor = any(k == "floor" for k, _ in reports)
any_axum = any(k == "axum" for k, _ in reports)


def columns(w=None):
    """The servers with a column: in workload w, or (None) anywhere in this run."""
    extra = [k for k in ("floor", "axum") if (any(kk == k for kk, _ in reports) if w is None else (k, w) in reports)]
    return ["ssehub"] + extra + ["nchan"]


def header(first, ks):
    """A table head: first column(s), one per server, then ssehub/each other server."""
    names = list(first) + ks + [f"ssehub/{k}" for k in ks[1:]]
    return "| " + " | ".join(names) + " |\n|" + "---|" * len(names)

# The floor prints "floor: frames_written N write_calls N frames_per_write X" on SIGTERM.
floor_fpw = {}  # workload -> [frames per write, one per run that printed it]
for path in sorted(glob.glob(os.path.join(out, "logs", "floor-*.log"))):
    name = os.path.basename(path)[len("floor-"): -len(".log")]
    w = name.rsplit("-", 1)[0]
    with open(path, errors="replace") as f:
        found = re.findall(r"frames_per_write ([0-9.]+)", f.read())
    if found:
        floor_fpw.setdefault(w, []).append(float(found[-1]))


def dig(r, *keys):
    for k in keys:
        if r is None:
            return None
        r = r.get(k) if isinstance(r, dict) else None
    return r


def values(kind, w, fn):
    vs = []
    for r in reports.get((kind, w), []):
        try:
            v = fn(r)
        except (TypeError, KeyError, ZeroDivisionError):
            v = None
        if v is not None:
            vs.append(v)
    return vs


def med(vs):
    return statistics.median(vs) if vs else None


def fmt(v, digits=None):
    if v is None:
        return "–"
    if digits is None:
        a = abs(v)
        digits = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 0.1 else 3
    return f"{v:,.{digits}f}"


def cell(vs, digits=None):
    if not vs:
        return "–"
    m = fmt(med(vs), digits)
    if len(vs) == 1:
        return m
    return f"{m} ({fmt(min(vs), digits)}–{fmt(max(vs), digits)})"


def ratio(a, b):
    a, b = med(a), med(b)
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}"


# ---- metrics per workload: (label, function of a report, digits) ------------------------
def start_kib(r):
    return r["server"]["start"]["rss_kib"]


def end_kib(r):
    return r["server"]["end"]["rss_kib"]


def per_sub(n):
    return lambda r: (end_kib(r) - start_kib(r)) / n


def publish_rate(r):
    return r["events"]["published"] / r["events"]["publish_secs"]


def tool_cpu(r):
    return r["tool"]["cpu_secs"]


def server_cpu(r):
    return r["server"]["cpu_secs_since_baseline"]


def peak_growth(r):
    return r["server"]["peak_rss_kib"] - r["server"]["baseline"]["rss_kib"]


METRICS = {
    "W1a": [
        ("server RSS at start, KiB", start_kib, 0),
        ("server RSS with 1,000 idle subscribers, KiB", end_kib, 0),
        ("KiB per idle subscriber (1,000)", per_sub(1000), 2),
        ("subscribers connected", lambda r: r["clients"]["connected"], 0),
        ("load tool CPU, s", tool_cpu, 2),
    ],
    "W1b": [
        ("server RSS at start, KiB", start_kib, 0),
        ("server RSS with 10,000 idle subscribers, KiB", end_kib, 0),
        ("KiB per idle subscriber (10,000)", per_sub(10000), 2),
        ("subscribers connected", lambda r: r["clients"]["connected"], 0),
        ("load tool CPU, s", tool_cpu, 2),
    ],
    "W2": [
        ("delivered events/s", lambda r: r["events"]["delivered_per_publish_sec"], 0),
        ("published events/s", publish_rate, 0),
        ("server CPU-µs per delivered event", lambda r: r["server"]["cpu_us_per_delivered_event"], 3),
        ("server CPU, s", server_cpu, 2),
        ("publishing window, s", lambda r: r["events"]["publish_secs"], 1),
        ("latency p50, ms", lambda r: r["latency_ms"]["p50"], None),
        ("latency p99, ms", lambda r: r["latency_ms"]["p99"], None),
        ("gaps", lambda r: r["checks"]["gaps"], 0),
        ("subscribers dropped by the server", lambda r: r["clients"]["dropped_by_server"], 0),
        ("load tool CPU, s", tool_cpu, 2),
    ],
    "W3": [
        ("latency p50, ms", lambda r: r["latency_ms"]["p50"], None),
        ("latency p99, ms", lambda r: r["latency_ms"]["p99"], None),
        ("latency max, ms", lambda r: r["latency_ms"]["max"], None),
        ("gaps", lambda r: r["checks"]["gaps"], 0),
        ("server CPU-µs per delivered event", lambda r: r["server"]["cpu_us_per_delivered_event"], 3),
        ("delivered events", lambda r: r["events"]["received"], 0),
        ("subscribers connected", lambda r: r["clients"]["connected"], 0),
        ("subscribers dropped by the server", lambda r: r["clients"]["dropped_by_server"], 0),
        ("publishing window, s", lambda r: r["events"]["publish_secs"], 1),
        ("load tool CPU, s", tool_cpu, 2),
    ],
    "W4": [
        ("slow clients evicted (of 100)", lambda r: r["slow"]["evicted"], 0),
        ("gaps at the 100 readers", lambda r: r["checks"]["gaps"], 0),
        ("server RSS growth (end − baseline), KiB", lambda r: r["server"]["rss_growth_kib"], 0),
        ("server RSS peak − baseline, KiB", peak_growth, 0),
        ("server RSS at baseline, KiB", lambda r: r["server"]["baseline"]["rss_kib"], 0),
        ("latency p99 at readers, ms", lambda r: r["latency_ms"]["p99"], None),
        ("readers dropped by the server", lambda r: r["clients"]["dropped_by_server"], 0),
        ("bytes slow clients drained at the end, MiB", lambda r: r["slow"]["drained_bytes"] / 1048576, 1),
        ("load tool CPU, s", tool_cpu, 2),
    ],
    "W5": [
        ("latency p50, ms", lambda r: r["latency_ms"]["p50"], None),
        ("latency p99, ms", lambda r: r["latency_ms"]["p99"], None),
        ("latency max, ms", lambda r: r["latency_ms"]["max"], None),
        ("gaps", lambda r: r["checks"]["gaps"], 0),
        ("server CPU-µs per delivered event", lambda r: r["server"]["cpu_us_per_delivered_event"], 3),
        ("published events/s", publish_rate, 0),
        ("load tool CPU, s", tool_cpu, 2),
    ],
}

TITLES = {
    "W1a": "W1 idle footprint — 1,000 idle subscribers",
    "W1b": "W1 idle footprint — 10,000 idle subscribers",
    "W2": "W2 fan-out — 1,000 subscribers, ~100-byte events back to back (one publisher connection)",
    "W3": "W3 latency — 10,000 subscribers, 10 events/s",
    "W4": "W4 slow clients — 100 readers + 100 never-reading clients, 100 events/s of 8 KiB",
    "W5": "W5 light load — 100 subscribers, 100 events/s of 8 KiB",
}

present = [w for w in METRICS if any((k, w) in reports for k in KINDS)]


def m(kind, w, label):
    for lab, fn, _ in METRICS[w]:
        if lab == label:
            return values(kind, w, fn)
    raise KeyError(label)


# ---- targets ---------------------------------------------------------------------------
def verdict(value, limit, better, unit="", digits=2):
    """'met'/'missed' with the margin; better is 'le' or 'ge'."""
    if value is None:
        return ("–", "not measured")
    ok = value <= limit if better == "le" else value >= limit
    if limit == 0:
        how = "" if ok else f" by {fmt(value, digits)}{unit}"
    elif better == "le":
        how = f" ({value / limit:.2f}× the limit)" if not ok else f" ({value / limit:.0%} of the limit)"
    else:
        how = f" ({value / limit:.2f}× the target)"
    return (f"{fmt(value, digits)}{unit}", ("met" if ok else "**missed**") + how)


targets = []  # (target, measured, verdict, floor's median on this machine)
mib = 1048576
if "static" in sizes:
    targets.append(("stripped binary (static) ≤ 2 MiB", *verdict(sizes["static"] / mib, 2, "le", " MiB", 2)))
if "dynamic" in sizes:
    targets.append(("stripped binary (dynamic, for reference) ≤ 2 MiB", *verdict(sizes["dynamic"] / mib, 2, "le", " MiB", 2)))
if start_rss.get("static"):
    targets.append(("RSS at start (static) ≤ 2 MiB", *verdict(med(start_rss["static"]) / 1024, 2, "le", " MiB", 2)))
if start_rss.get("dynamic"):
    targets.append(("RSS at start (dynamic, for reference) ≤ 2 MiB", *verdict(med(start_rss["dynamic"]) / 1024, 2, "le", " MiB", 2)))
for w, n in (("W1a", "1,000"), ("W1b", "10,000")):
    if w in present:
        v = med(m("ssehub", w, f"KiB per idle subscriber ({n})"))
        targets.append((f"W1 ≤ 4 KiB per idle subscriber ({n})", *verdict(v, 4, "le", " KiB", 2)))


def floor_at(w, label, unit, digits):
    """The floor's median of that figure, formatted like the target's measured value."""
    v = med(m("floor", w, label)) if has_floor(w) else None
    return "–" if v is None else f"{fmt(v, digits)}{unit}"


if "W2" in present:
    v = med(m("ssehub", "W2", "server CPU-µs per delivered event"))
    targets.append(("W2 ≤ 0.4 server CPU-µs per delivered event", *verdict(v, 0.4, "le", " µs", 3),
                    floor_at("W2", "server CPU-µs per delivered event", " µs", 3)))
    a, b = med(m("ssehub", "W2", "delivered events/s")), med(m("nchan", "W2", "delivered events/s"))
    if a is not None and b:
        targets.append(("W2 ≥ 5× nchan's delivered events/s", *verdict(a / b, 5, "ge", "×", 2)))
if "W3" in present:
    targets.append(("W3 p99 ≤ 60 ms", *verdict(med(m("ssehub", "W3", "latency p99, ms")), 60, "le", " ms", 1),
                    floor_at("W3", "latency p99, ms", " ms", 1)))
    g = m("ssehub", "W3", "gaps")
    targets.append(("W3 no gap (worst run)", *verdict(max(g) if g else None, 0, "le", "", 0)))
    targets.append(("W3 ≤ 5.5 server CPU-µs per delivered event", *verdict(med(m("ssehub", "W3", "server CPU-µs per delivered event")), 5.5, "le", " µs", 2),
                    floor_at("W3", "server CPU-µs per delivered event", " µs", 2)))
if "W4" in present:
    e = m("ssehub", "W4", "slow clients evicted (of 100)")
    targets.append(("W4 100 of 100 slow clients evicted (worst run)", *verdict(min(e) if e else None, 100, "ge", "", 0)))
    g = m("ssehub", "W4", "gaps at the 100 readers")
    targets.append(("W4 0 gaps at readers (worst run)", *verdict(max(g) if g else None, 0, "le", "", 0)))
    gr = m("ssehub", "W4", "server RSS growth (end − baseline), KiB")
    targets.append(("W4 RSS growth ≤ 8 MiB (worst run)", *verdict(max(gr) / 1024 if gr else None, 8, "le", " MiB", 2)))
if "W5" in present:
    targets.append(("W5 p99 ≤ 1 ms", *verdict(med(m("ssehub", "W5", "latency p99, ms")), 1, "le", " ms", 3),
                    floor_at("W5", "latency p99, ms", " ms", 3)))

# ---- the issue-15 targets: ratios to the floor and the peers of this same run ----------
# Which way is better for each summary figure ("ahead of every peer in every row").
LOWER_IS_BETTER = {
    "delivered events/s": False,
    "slow clients evicted (of 100)": False,
}


def med_of(kind, w, label):
    return med(m(kind, w, label)) if (kind, w) in reports else None


def abs_cells(w, label, digits, unit="", kinds=("ssehub", "floor", "axum", "nchan"), fn=med):
    """The absolute figures of the servers, formatted (fn: med, or max/min for worst run)."""
    d = {}
    for k in kinds:
        vs = m(k, w, label) if (k, w) in reports else []
        d[k] = "–" if not vs else f"{fmt(fn(vs), digits)}{unit}"
    return d


def q(a, b):
    return None if a is None or b is None or b == 0 else a / b


targets15 = []  # (target, {kind: absolute figure}, ratio text, verdict)


def add15(name, cells, value, limit, better, unit="×", digits=2, strict=False):
    shown, v = verdict(value, limit, better, unit, digits)
    if strict and value is not None and value == limit:
        v = "**missed** (equal)"
    targets15.append((name, cells, shown, v))


for w, n in (("W1a", "1,000"), ("W1b", "10,000")):
    if w in present:
        label = f"KiB per idle subscriber ({n})"
        add15(f"W1 ≤ 2.5 KiB per idle subscriber ({n})", abs_cells(w, label, 2, " KiB"),
              med_of("ssehub", w, label), 2.5, "le", " KiB", 2)
if "W2" in present:
    label = "server CPU-µs per delivered event"
    add15("W2 CPU per delivered event ≤ 1.3× floor", abs_cells("W2", label, 3, " µs"),
          q(med_of("ssehub", "W2", label), med_of("floor", "W2", label)), 1.3, "le")
    label = "delivered events/s"
    add15("W2 delivered events/s ≥ 0.9× floor", abs_cells("W2", label, 0),
          q(med_of("ssehub", "W2", label), med_of("floor", "W2", label)), 0.9, "ge")
if "W3" in present:
    for label, short, limit in (("latency p99, ms", "p99", 1.15), ("latency p50, ms", "p50", 1.2),
                                ("server CPU-µs per delivered event", "CPU per delivered event", 1.1)):
        unit = " µs" if "CPU" in label else " ms"
        add15(f"W3 {short} ≤ {limit}× floor", abs_cells("W3", label, None, unit),
              q(med_of("ssehub", "W3", label), med_of("floor", "W3", label)), limit, "le")
    g = m("ssehub", "W3", "gaps")
    add15("W3 no gap (worst run)", abs_cells("W3", "gaps", 0, fn=max), max(g) if g else None, 0, "le", "", 0)
if "W4" in present:
    e = m("ssehub", "W4", "slow clients evicted (of 100)")
    add15("W4 100 of 100 never-reading clients evicted (worst run)",
          abs_cells("W4", "slow clients evicted (of 100)", 0, fn=min), min(e) if e else None, 100, "ge", "", 0)
    g = m("ssehub", "W4", "gaps at the 100 readers")
    add15("W4 zero gaps at the readers (worst run)", abs_cells("W4", "gaps at the 100 readers", 0, fn=max),
          max(g) if g else None, 0, "le", "", 0)
    gr = m("ssehub", "W4", "server RSS growth (end − baseline), KiB")
    cells = {k: ("–" if not (k, "W4") in reports or not m(k, "W4", "server RSS growth (end − baseline), KiB")
                 else f"{fmt(max(m(k, 'W4', 'server RSS growth (end − baseline), KiB')) / 1024, 2)} MiB")
             for k in KINDS}
    add15("W4 RSS growth ≤ 8 MiB (worst run)", cells, max(gr) / 1024 if gr else None, 8, "le", " MiB", 2)
    w5p99 = med_of("ssehub", "W5", "latency p99, ms")
    add15("W4 readers' p99 ≤ 1.5× ssehub's W5 p99 of this run"
          + (f" ({fmt(w5p99)} ms)" if w5p99 is not None else " (W5 not run)"),
          abs_cells("W4", "latency p99 at readers, ms", None, " ms"),
          q(med_of("ssehub", "W4", "latency p99 at readers, ms"), w5p99), 1.5, "le")
if "W5" in present:
    label = "latency p99, ms"
    cells = abs_cells("W5", label, None, " ms")
    add15("W5 p99 ≤ 1.1× floor", cells, q(med_of("ssehub", "W5", label), med_of("floor", "W5", label)), 1.1, "le")
    add15("W5 p99 below axum's", cells, q(med_of("ssehub", "W5", label), med_of("axum", "W5", label)), 1, "le",
          strict=True)
    label = "server CPU-µs per delivered event"
    add15("W5 CPU per delivered event ≤ 1.3× floor", abs_cells("W5", label, 3, " µs"),
          q(med_of("ssehub", "W5", label), med_of("floor", "W5", label)), 1.3, "le")
    p99s = m("ssehub", "W5", "latency p99, ms")
    add15("W5 worst run's p99 within 3× the median", abs_cells("W5", "latency p99, ms", None, " ms", fn=max),
          q(max(p99s), med(p99s)) if len(p99s) > 1 else None, 3, "le")


# ---- the summary rows, and "ahead of every peer in every row" --------------------------
HEADLINE = [
    ("W1a", "KiB per idle subscriber (1,000)"),
    ("W1b", "KiB per idle subscriber (10,000)"),
    ("W2", "delivered events/s"),
    ("W2", "server CPU-µs per delivered event"),
    ("W3", "latency p50, ms"),
    ("W3", "latency p99, ms"),
    ("W3", "gaps"),
    ("W3", "server CPU-µs per delivered event"),
    ("W4", "slow clients evicted (of 100)"),
    ("W4", "gaps at the 100 readers"),
    ("W4", "server RSS growth (end − baseline), KiB"),
    ("W4", "latency p99 at readers, ms"),
    ("W5", "latency p50, ms"),
    ("W5", "latency p99, ms"),
    ("W5", "server CPU-µs per delivered event"),
]
def short_of_subscribers(kind, w):
    """True when a run of `kind` in `w` did not get every subscriber connected: its
    latency and CPU figures are then for fewer subscribers than ssehub served, and a
    comparison with them says nothing."""
    return any(f.startswith("clients_not_connected")
               for r in reports.get((kind, w), []) for f in r.get("failed_checks", []))


behind, compared, rows_behind, incomparable = [], 0, 0, []
for w, label in HEADLINE:
    a = med_of("ssehub", w, label)
    lower = LOWER_IS_BETTER.get(label, True)
    peers = [(k, med_of(k, w, label)) for k in PEERS]
    peers = [(k, b) for k, b in peers if b is not None]
    if a is None or not peers:
        continue
    short = [(k, b) for k, b in peers if short_of_subscribers(k, w)]
    incomparable += [f"{w[:2]} {label} ({k})" for k, _ in short]
    peers = [(k, b) for k, b in peers if (k, b) not in short]
    if not peers:
        continue
    compared += 1
    worse = [(k, b) for k, b in peers if ((a > b) if lower else (a < b))]
    rows_behind += bool(worse)
    if worse:
        behind.append(f"{w[:2]} {label} {fmt(a)} (" + ", ".join(f"{k} {fmt(b)}" for k, b in worse) + ")")
if compared:
    ran = ", ".join(k for k in PEERS if any(kk == k for kk, _ in reports))
    note = ("" if not incomparable else
            "; not compared, the peer having connected fewer subscribers than asked in a run: "
            + ", ".join(incomparable))
    targets15.append((f"ahead of (or even with) every peer ({ran}) in every summary row", {},
                      f"{compared - rows_behind} of {compared} rows",
                      ("met" if not behind else "**missed**, behind in: " + "; ".join(behind)) + note))


# ---- charts: one SVG per workload, the servers side by side ----------------------------
COLORS = {"ssehub": "#d9480f", "floor": "#868e96", "axum": "#1971c2", "nchan": "#2f9e44"}
CHARTS = {  # chart -> [(sub-workload, figure, panel title)]
    "W1": [("W1a", "KiB per idle subscriber (1,000)", "KiB per idle subscriber, 1,000"),
           ("W1b", "KiB per idle subscriber (10,000)", "KiB per idle subscriber, 10,000"),
           ("W1b", "server RSS with 10,000 idle subscribers, KiB", "RSS with 10,000 idle, KiB")],
    "W2": [("W2", "delivered events/s", "delivered events/s (higher is better)"),
           ("W2", "server CPU-µs per delivered event", "server CPU-µs per delivered event"),
           ("W2", "latency p99, ms", "latency p99, ms")],
    "W3": [("W3", "latency p50, ms", "latency p50, ms"),
           ("W3", "latency p99, ms", "latency p99, ms"),
           ("W3", "server CPU-µs per delivered event", "server CPU-µs per delivered event")],
    "W4": [("W4", "latency p99 at readers, ms", "readers' latency p99, ms"),
           ("W4", "server RSS growth (end − baseline), KiB", "RSS growth, KiB"),
           ("W4", "slow clients evicted (of 100)", "slow clients evicted (higher is better)")],
    "W5": [("W5", "latency p50, ms", "latency p50, ms"),
           ("W5", "latency p99, ms", "latency p99, ms"),
           ("W5", "server CPU-µs per delivered event", "server CPU-µs per delivered event")],
}
CHART_TITLES = {"W1": "W1 idle footprint", "W2": "W2 fan-out, 1,000 subscribers",
                "W3": "W3 latency, 10,000 subscribers at 10 events/s",
                "W4": "W4 slow clients, 100 readers + 100 never-reading",
                "W5": "W5 light load, 100 subscribers at 100 events/s of 8 KiB"}


def svg_chart(name):
    """The SVG text of chart `name`: one panel per figure (each with its own scale), a
    bar per server (the median; a whisker for min–max when there are several runs), or
    None when no server has any of its figures."""
    panels = []
    for w, label, title in CHARTS[name]:
        if w not in present:
            continue
        bars = [(k, m(k, w, label)) for k in columns(w)]
        bars = [(k, vs) for k, vs in bars if vs or k in ("ssehub", "nchan")]
        if any(vs for _, vs in bars):
            digits = next(d for lab, _, d in METRICS[w] if lab == label)
            panels.append((title, bars, digits))
    if not panels:
        return None
    kinds = [k for k in KINDS if any(k == kk for _, bars, _ in panels for kk, _ in bars)]
    pw, ph, top, bottom, left = 240, 200, 70, 20, 16
    width, height = left + pw * len(panels), top + ph + bottom
    e = html.escape
    runs_note = f"medians of {runs_n} runs, whiskers min–max" if runs_n > 1 else "1 run"
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{left}" y="18" font-size="14" font-weight="bold">{e(CHART_TITLES[name])}</text>',
         f'<text x="{left}" y="34" fill="#555">{e(runs_note)}; each panel has its own scale; '
         f'lower is better unless marked. {e(machine.get("date", ""))}</text>']
    for i, k in enumerate(kinds):  # legend
        x = left + i * 90
        o.append(f'<rect x="{x}" y="44" width="10" height="10" fill="{COLORS[k]}"/>'
                 f'<text x="{x + 14}" y="53">{e(k)}</text>')
    for pi, (title, bars, digits) in enumerate(panels):
        x0 = left + pi * pw
        base = top + ph - 20  # the bars' baseline
        top_v = max((max(vs) for _, vs in bars if vs), default=0) or 1
        scale = (ph - 60) / top_v
        o.append(f'<text x="{x0 + pw / 2 - 8}" y="{top + 12}" text-anchor="middle" font-weight="bold">{e(title)}</text>')
        o.append(f'<line x1="{x0}" y1="{base}" x2="{x0 + pw - 16}" y2="{base}" stroke="#333"/>')
        bw = min(40, (pw - 40) / max(len(bars), 1) - 8)
        for bi, (k, vs) in enumerate(bars):
            bx = x0 + 12 + bi * (bw + 8)
            cx = bx + bw / 2
            o.append(f'<text x="{cx}" y="{base + 14}" text-anchor="middle">{e(k)}</text>')
            if not vs:
                o.append(f'<text x="{cx}" y="{base - 4}" text-anchor="middle" fill="#999">–</text>')
                continue
            v = med(vs)
            h = v * scale
            o.append(f'<rect x="{bx:.1f}" y="{base - h:.1f}" width="{bw:.1f}" height="{h:.1f}" fill="{COLORS[k]}">'
                     f'<title>{e(k)}: {e(cell(vs, digits))}</title></rect>')
            label_y = base - h - 4
            if len(vs) > 1:
                lo, hi = base - min(vs) * scale, base - max(vs) * scale
                o.append(f'<line x1="{cx:.1f}" y1="{lo:.1f}" x2="{cx:.1f}" y2="{hi:.1f}" stroke="#222"/>')
                for y in (lo, hi):
                    o.append(f'<line x1="{cx - 4:.1f}" y1="{y:.1f}" x2="{cx + 4:.1f}" y2="{y:.1f}" stroke="#222"/>')
                label_y = min(label_y, hi - 4)
            o.append(f'<text x="{cx:.1f}" y="{label_y:.1f}" text-anchor="middle">{e(fmt(v, digits))}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


chart_links = {}  # chart name -> link relative to the page
if charts_dir:
    os.makedirs(charts_dir, exist_ok=True)
    page_dir = os.path.dirname(os.path.abspath(page_path)) if page_path else os.getcwd()
    for name in CHARTS:
        text = svg_chart(name)
        if text is None:
            continue
        path = os.path.join(charts_dir, f"{name}.svg")
        with open(path, "w") as f:
            f.write(text)
        chart_links[name] = os.path.relpath(os.path.abspath(path), page_dir)

# ---- the document ----------------------------------------------------------------------
p = print
p("# Benchmarks: ssehub vs nchan" + (" and an axum/tokio peer" if any_axum else ""))
p()
p("Written by `scripts/bench.sh` from the run below; every number on this page was measured")
p("by that run. Regenerate with `scripts/bench.sh` (about a quarter of an hour); try it out")
p("with `scripts/bench.sh --quick` or `--only W2`.")
if machine.get("quick") == "1":
    p()
    p("**This is a `--quick` run: 1 run each, shorter durations. Not for comparison.**")
p()
p("## Setup")
p()
p("| | |")
p("|---|---|")
p(f"| machine | {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory']} RAM, {machine['kernel']} |")
p(f"| ssehub | git {machine['ssehub_rev']}, the static release binary ({linkage or 'static'}); `--threads` default (= cores − 1, plus the request thread) |")
p(f"| nchan | nginx {machine['nginx']}, libnginx-mod-nchan {machine['nchan']} (Debian), 1 worker process |")
if any_axum:
    p(f"| axum | `bench/axum-peer` ({machine.get('axum_peer', 'axum, tokio')}), release (`lto`, one codegen unit), "
      "one tokio worker thread per core, run as `axum-peer --bind 127.0.0.1:PORT --token bench` |")
if any_floor:
    p(f"| floor | `bench/floor.c`, {machine.get('floor_cc', 'gcc')} `-O2 -Wall`, run as `floor PORT 64`; "
      "W2, W3 and W5 only |")
if machine.get("ssehub_args", "none") != "none":
    p(f"| ssehub flags | `{machine['ssehub_args']}` added to every ssehub run (`--ssehub-args`) |")
if machine.get("hog", "none") != "none":
    p(f"| CPU hog | `{machine['hog']}` (`--hog`): a busy neighbour on one core, the floor's runs included |")
if machine.get("taskset", "none") != "none":
    p(f"| pinning | every server and the hog under `taskset -c {machine['taskset']}` |")
p(f"| rustc | {machine['rustc']} |")
p(f"| run | {machine['date']}, {runs_n} run(s) per workload and server, total wall time {int(machine['wall_secs']) // 60} min {int(machine['wall_secs']) % 60} s |")
p()
p("The servers and the load tool (`ssehub-soak`) share the same "
  f"{machine['nproc']} CPUs over loopback, so the load tool's own CPU time is given beside")
p("each figure: where it is near the wall time, the tool, not the server, may be the limit.")
p()
p("How it runs:")
p()
order = "ssehub W1, nchan W1, " + ("axum W1, " if any_axum else "") + "ssehub W2, nchan W2, " + \
    ("axum W2, " if any_axum else "") + ("floor W2, " if any_floor else "") + "…"
p("- Every workload runs on a **freshly started server**, alternating the servers "
  f"({order}), and the whole sequence is repeated; "
  "figures are the **median of the runs with min–max** in brackets; ssehub/X = ssehub median / "
  "X median.")
p("- ssehub: `ssehub --bind 127.0.0.1:PORT --no-demo --publish-token bench --heartbeat 0 "
  "--quiet --queue 100 --max-clients 12000`.")
p("- nchan: `nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'` with `bench/nginx.conf.in`: "
  "`worker_processes 1`, `worker_connections 20000`, `worker_rlimit_nofile 20000`, "
  "`listen … backlog=4096`, publisher `location = /pub` (`nchan_message_buffer_length 1000`), EventSource subscriber "
  "`location = /sub` (`nchan_eventsource_event soak`, `nchan_subscriber_first_message newest`), "
  "one channel, `access_log off`. nchan's publisher answers `201`/`202`; any 2xx counts as published.")
if any_axum:
    p("- axum (a peer, run after nchan: ssehub W2, nchan W2, axum W2, …): `bench/axum-peer`, a "
      "tokio + axum SSE broadcast server built the way ssehub is, driven with the same flags as "
      "ssehub (its paths, `--publish-style ssehub`, `--token bench`): one bounded tokio `mpsc` "
      "channel of 100 events per subscriber, the subscriber evicted (channel dropped, stream "
      "ended, connection closed) when `try_send` finds it full; each event encoded once into one "
      "`Bytes` shared by every subscriber; `TCP_NODELAY`; one worker thread per core; a listen "
      "backlog of 4096 (as ssehub's and the floor's). **A measuring "
      "stick, not a product** and never a dependency of ssehub.")
if any_floor:
    p("- floor (the cost floor, W2, W3 and W5 only, run last: ssehub W2, nchan W2, "
      + ("axum W2, " if any_axum else "") + "floor W2, …): "
      "`floor PORT 64`, built from `bench/floor.c` with `gcc -O2 -Wall`, driven with the same "
      "flags as nchan (`--subscribe-path /sub`, `--publish-style nchan`). A bare SSE broadcast "
      "server in C: one thread, one epoll set; each published body becomes one frame, allocated "
      "once and shared by reference count; each subscriber is written with one `writev` of what "
      "it is owed (up to 64 frames), at most 64 subscribers written per loop turn before it takes "
      "in new requests; `TCP_NODELAY`; a queue bound of 100 frames per subscriber, with eviction "
      "(a subscriber whose queue is full is closed). **Not a product**: what the kernel's loopback "
      "path costs with next to nothing in user space, on this machine, with this tool. "
      "\"frames per write\" is the floor's own count "
      "(frames written / `writev` calls), printed when it exits.")
p("- **Server memory and CPU are those of one process**: ssehub, the axum peer, the floor, and "
  "the nginx **worker** "
  "(the master only forwards signals; its RSS is given in W1). nchan keeps messages and "
  "channels in a shared-memory zone; the pages of it the worker touched count in its RSS.")
p("- `ulimit -n 20000` for servers and tool. Publishing starts once every subscriber is "
  "connected (`--wait-connected`); CPU per delivered event = server CPU from that moment "
  "(the tool's baseline sample) to the end, over the events subscribers received. CPU "
  "times come from `/proc/PID/stat` in 10 ms ticks.")
p("- Latency = receive wall clock − the publisher's wall clock written in the event "
  "(`sent_us`), so it includes the publish request. Gaps are checked with the publisher's "
  "`seq` in the data, never the SSE id (nchan's ids are its own strings).")
p()
p("Exact load commands of the first run (`PORT` and the server pid differ per run):")
p()
p("```sh")
seen = set()
for line in open(os.path.join(out, "commands.txt")):
    head, cmd = line.rstrip("\n").split(": ", 1)
    kind, w = head.split()[:2]
    if (kind, w) in seen:
        continue
    seen.add((kind, w))
    p(f"# {kind} {w}")
    p(cmd)
p("```")
p()

all_cols = columns()
p("## Summary (medians)")
p()
p(header(["workload", "figure"], all_cols))
for w, label in HEADLINE:
    if w not in present:
        continue
    digits = next(d for lab, _, d in METRICS[w] if lab == label)
    vs = {k: m(k, w, label) for k in all_cols}
    p(f"| {w[:2]} | {label} | " + " | ".join(fmt(med(vs[k]), digits) for k in all_cols) + " | "
      + " | ".join(ratio(vs["ssehub"], vs[k]) for k in all_cols[1:]) + " |")
if start_rss:
    srss = {"ssehub": start_rss.get("static", []), "nchan": start_rss.get("nchan_worker", []),
            "axum": start_rss.get("axum", []), "floor": []}
    p("| W1 | server RSS at start, KiB (static ssehub; nchan: the worker) | "
      + " | ".join(fmt(med(srss[k]), 0) for k in all_cols) + " | "
      + " | ".join(ratio(srss["ssehub"], srss[k]) for k in all_cols[1:]) + " |")
p()
if chart_links:
    p("Charts (the servers side by side, per workload): "
      + " · ".join(f"[{name}]({link})" for name, link in chart_links.items()) + ".")
    p()

# The Mercure path (scripts/bench.sh --mercure): the same binary, its subscribers on
# /.well-known/mercure?topic=soak, against the native path of the same run.
MERCURE_ROWS = [("W2", "server CPU-µs per delivered event"), ("W2", "latency p99, ms"),
                ("W2", "delivered events/s"), ("W3", "server CPU-µs per delivered event"),
                ("W3", "latency p99, ms"), ("W3", "gaps")]
if any(k == "ssehub-mercure" for k, _ in reports):
    p("## The Mercure path against the native path (issue 21)")
    p()
    p("The same ssehub binary and flags; the subscribers open `/stream` (native) or "
      "`/.well-known/mercure?topic=soak` (Mercure, an exact 0.x selector), the publisher posts "
      "to `/publish` in both. Medians (range over runs); the issue's target is CPU per "
      "delivered event within 5 % (a Mercure/native ratio of at most 1.05).")
    p()
    p("| workload | figure | native | Mercure | Mercure/native |")
    p("|---|---|---|---|---|")
    for w, label in MERCURE_ROWS:
        if ("ssehub-mercure", w) not in reports:
            continue
        digits = next(d for lab, _, d in METRICS[w] if lab == label)
        a, b = m("ssehub", w, label), m("ssehub-mercure", w, label)
        p(f"| {w} | {label} | {cell(a, digits)} | {cell(b, digits)} | {ratio(b, a)} |")
    p()

p("## Targets (issue 15: ratios to the floor and the peers of this run)")
p()
p("| target | " + " | ".join(all_cols) + " | measured | verdict |")
p("|---|" + "---|" * len(all_cols) + "---|---|")
for name, cells, shown, v in targets15:
    p(f"| {name} | " + " | ".join(cells.get(k, "–") for k in all_cols) + f" | {shown} | {v} |")
p()
p("The server columns give the absolute figures the target is judged from (medians, or the "
  "worst run where the target says so); \"measured\" is the ratio (or figure) held against "
  "the limit. \"Ahead of every peer\" compares ssehub's median with axum's and nchan's in each "
  "row of the summary (lower is better but for delivered events/s and clients evicted; a tie "
  "counts as even).")
p()

p("## Earlier targets (absolute, for information)")
p()
if any_floor:
    p("| target | measured | verdict | floor on this machine |")
    p("|---|---|---|---|")
else:
    p("| target | measured | verdict |")
    p("|---|---|---|")
for name, value, v, *fl in targets:
    p(f"| {name} | {value} | {v} |" + (f" {fl[0] if fl else '–'} |" if any_floor else ""))
p()
p("Medians unless marked \"worst run\".")
p()

p("## Binary and memory at start")
p()
p("| | size (stripped) | RSS at start, KiB |")
p("|---|---|---|")
for build, label in (("static", "ssehub, static (`x86_64-unknown-linux-gnu`, `+crt-static`, `relocation-model=static`)"),
                     ("dynamic", "ssehub, default release build (glibc, dynamic)")):
    if build in sizes:
        p(f"| {label} | {sizes[build]:,} B ({sizes[build] / mib:.2f} MiB) | {cell(start_rss.get(build, []), 0)} |")
if start_rss.get("nchan_worker"):
    mw = [a + b for a, b in zip(start_rss["nchan_worker"], start_rss["nchan_master"])]
    p(f"| nginx + nchan worker | (packages) | {cell(start_rss['nchan_worker'], 0)} |")
    p(f"| nginx + nchan master + worker | | {cell(mw, 0)} |")
if "axum" in sizes or start_rss.get("axum"):
    size = f"{sizes['axum']:,} B ({sizes['axum'] / mib:.2f} MiB)" if "axum" in sizes else "–"
    p(f"| axum peer (`bench/axum-peer`, dynamic) | {size} | {cell(start_rss.get('axum', []), 0)} |")
p()
p("RSS at start: `VmRSS` 0.5 s after `/health` first answered 200, nothing else connected.")
p()

charted = set()
for w in present:
    p(f"## {TITLES[w]}")
    p()
    ks = columns(w)
    p(header(["figure"], ks))
    for label, fn, digits in METRICS[w]:
        vs = {k: values(k, w, fn) for k in ks}
        p(f"| {label} | " + " | ".join(cell(vs[k], digits) for k in ks) + " | "
          + " | ".join(ratio(vs["ssehub"], vs[k]) for k in ks[1:]) + " |")

    def extra_row(label, kind, text):
        p(f"| {label} | " + " | ".join(text if k == kind else "" for k in ks) + " |" + " |" * (len(ks) - 1))

    if has_floor(w):
        extra_row("frames per write (floor's own count)", "floor", cell(floor_fpw.get(w, []), 2))
    if w.startswith("W1"):
        mr = [r["_meta"]["master_rss_kib"] for r in reports.get(("nchan", w), [])]
        if mr:
            extra_row("nginx master RSS (not included above), KiB", "nchan", cell(mr, 0))
    fails = {}
    for kind in KINDS:
        for r in reports.get((kind, w), []):
            for f in r.get("failed_checks", []):
                fails.setdefault((kind, f.split(":")[0]), []).append(f)
            if not r.get("config"):
                fails.setdefault((kind, "no report"), []).append(f"run {r['_meta']['run']}: no report (exit {r['_meta']['exit']})")
    if fails:
        p()
        p("Failed soak checks: " + "; ".join(
            f"{kind}: {', '.join(v)}" for (kind, _), v in sorted(fails.items())) + ".")
    chart = w[:2]
    if chart in chart_links and chart not in charted and (chart != "W1" or w == "W1b" or "W1b" not in present):
        charted.add(chart)
        p()
        p(f"![{CHART_TITLES[chart]}: the servers side by side]({chart_links[chart]})")
    p()

p("## Notes")
p()
p("- KiB per idle subscriber = (RSS with N subscribers − RSS at start) / N, both sampled "
  "by the tool in the same run (the end sample is taken with every subscriber still connected).")
p("- W2's delivered events/s = events received by all subscribers / publishing window. "
  "W4's slow clients are checked at the end of the run: each drains its socket for up to "
  "2 s and counts as evicted when the server has closed the connection.")
p("- The tool samples the server's RSS, CPU and fds at start, once every subscriber is "
  "connected (baseline), every second (the peak) and at the end.")
p("- Raw JSON reports, server and tool logs: `test-output/bench/` (not committed).")

# Hand-written sections kept beside the script, so a regenerated page keeps them: what
# the last full run showed and what changed before it (this-run.md), the earlier analysis
# of the targets (its figures come from the profiles it names), and the measurements of
# private topics and of the history file, which have scripts of their own.
for name in ("this-run.md", "analysis.md", "private-topics.md", "history-file.md", "publish-port.md", "failover.md", "capacity.md", "handover.md", "mercure.md"):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    if os.path.exists(path):
        p()
        with open(path) as f:
            p(f.read().rstrip())

# The section of scripts/bench-cluster.sh (several nodes on one Redis), written by that
# script from its own run; kept at the end of the page when this one is rewritten.
cluster = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cluster.md")
if os.path.exists(cluster):
    p()
    with open(cluster) as f:
        p(f.read().rstrip())
