#!/usr/bin/env python3
"""The "Several nodes on one Redis" section of BENCHMARKS.md, from the reports of one
scripts/bench-cluster.sh run (test-output/bench-cluster/). Usage: cluster_summary.py DIR"""

import json
import os
import sys

d = sys.argv[1]
KINDS = [("single", "ssehub, 1 node, no Redis"), ("ssehub", "ssehub, 3 nodes on Redis"),
         ("nchan", "nchan, 3 nginx on Redis")]
TITLES = {
    "L": "L: latency, 3 x 1,000 subscribers, 100 events/s",
    "T": "T: fan-out, 3 x 1,000 subscribers, 100-byte events back to back",
}


def kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(" ")
            out[k] = v
    return out


machine = kv(os.path.join(d, "machine.txt"))
reports = {}
for w in TITLES:
    for k, _ in KINDS:
        p = os.path.join(d, "reports", f"{w}-{k}.json")
        try:
            with open(p) as f:
                reports[(w, k)] = json.load(f)
        except (OSError, ValueError):
            reports[(w, k)] = None
commands = {}
with open(os.path.join(d, "commands.txt")) as f:
    for line in f:
        head, _, cmd = line.rstrip("\n").partition(": ")
        commands[tuple(head.split())] = cmd


def procs(r):
    """(node CPU s since baseline, Redis CPU s since baseline or None)."""
    s = (r.get("server") or {}).get("cpu_secs_since_baseline")
    extra = r.get("extra_processes") or []
    nodes = [s] + [e.get("cpu_secs_since_baseline") for e in (extra[:-1] if extra else [])]
    redis = extra[-1].get("cpu_secs_since_baseline") if extra else None
    if any(n is None for n in nodes):
        return None, redis
    return sum(nodes), redis


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float) and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}" if isinstance(v, float) else f"{v:,}"


def row(label, fn, digits=2):
    cells = []
    for k, _ in KINDS:
        r = reports[(w, k)]
        try:
            cells.append(fmt(fn(r), digits) if r else "no report")
        except (KeyError, TypeError, ZeroDivisionError):
            cells.append("–")
    return f"| {label} | " + " | ".join(cells) + " |"


def text_row(label, fn):
    cells = [fn(reports[(w, k)]) if reports[(w, k)] else "no report" for k, _ in KINDS]
    return f"| {label} | " + " | ".join(cells) + " |"


def per_node(r):
    c = r.get("cluster")
    if not c:
        return f"{r['clients']['connected']:,}"
    return " / ".join(f"{n['steady']:,}" for n in c["nodes"])


def checks(r):
    return "passed" if r["ok"] else "failed: " + ", ".join(r["failed_checks"])


def order(r):
    c = r.get("cluster")
    if not c:
        return "–"
    o = c["order"]
    return f"{o['comparisons_same'] + o['mismatches']:,} blocks of 64 compared, {o['mismatches']} differed"


def per_event_us(secs, n):
    return None if secs is None or not n else secs * 1e6 / n


p = print
p("## Several nodes on one Redis")
p()
p(f"Written by `scripts/bench-cluster.sh` ({machine.get('date')}, ssehub git "
  f"{machine.get('ssehub_rev')}, the release binary; Redis {machine.get('redis')} with "
  f"`--save '' --appendonly no` on TCP 127.0.0.1; {machine.get('nginx')}, "
  f"libnginx-mod-nchan {machine.get('nchan')}; {machine.get('nproc')} CPUs, "
  f"{machine.get('kernel')}; one run per figure, {machine.get('wall_secs')} s in all). "
  "Rerun with `scripts/bench-cluster.sh`.")
p()
p(f"**The machine is shared and noisy**: {machine.get('nproc')} cores for three nodes (or nginx workers), "
  "Redis and the load tool, and other engineers' builds and tests beside them. One run "
  "each: read differences under about 20 % as noise, and the latencies as what two "
  "shared cores give, not what the servers need.")
p()
p("- **single**: one ssehub node, no Redis (`--bind 127.0.0.1:PORT --no-demo "
  "--publish-token bench --heartbeat 0 --quiet --queue 100 --max-clients 12000`), all "
  "3,000 subscribers on it.")
p("- **ssehub x3**: three such nodes with `--redis redis://127.0.0.1:PORT`, 1,000 "
  "subscribers each; the publisher posts to the first node, which answers once Redis "
  "has the entry; every node's reader delivers it.")
p("- **nchan x3**: three nginx instances with `bench/nginx-redis.conf.in` (one worker "
  "each, `bench/nginx.conf.in` with `nchan_redis_pass` to an upstream "
  "`nchan_redis_server redis://127.0.0.1:PORT`), 1,000 subscribers each, publishing to "
  "the first one's `/pub`.")
p("- Node CPU is all three nodes' (the nginx workers') CPU time from the moment every "
  "subscriber was connected to the end, over the events subscribers received; Redis "
  "CPU is Redis's own from `/proc/PID/stat` over the same window, per published "
  "event. The tool checks one order across the nodes (same events, same order, same ids "
  "at every subscriber).")
p()
for w, title in TITLES.items():
    p(f"### {title}")
    p()
    p("| figure | " + " | ".join(t for _, t in KINDS) + " |")
    p("|---|" + "---|" * len(KINDS))
    p(row("latency p50, ms", lambda r: r["latency_ms"]["p50"]))
    p(row("latency p99, ms", lambda r: r["latency_ms"]["p99"]))
    p(row("latency max, ms", lambda r: r["latency_ms"]["max"]))
    p(row("published events/s", lambda r: r["events"]["published"] / r["events"]["publish_secs"], 0))
    p(row("delivered events/s", lambda r: float(r["events"]["delivered_per_publish_sec"]), 0))
    p(row("node CPU-µs per delivered event (all nodes)",
          lambda r: per_event_us(procs(r)[0], r["events"]["received"]), 3))
    p(row("Redis CPU-µs per published event",
          lambda r: per_event_us(procs(r)[1], r["events"]["published"]), 1))
    p(row("Redis CPU, s", lambda r: procs(r)[1]))
    p(row("load tool CPU, s", lambda r: r["tool"]["cpu_secs"]))
    p(text_row("subscribers per node", per_node))
    p(text_row("checks", checks))
    p(text_row("one order across nodes", order))
    p()
p("Commands (`PORT` and pids differ per run; nchan's `--url`s end in its subscriber "
  "location through `--subscribe-path /sub`):")
p()
p("```sh")
p("scripts/bench-cluster.sh")
for (w, k), cmd in commands.items():
    p(f"# {w} {k}")
    p(cmd)
p("```")

# Hand-written notes on what a run showed (kept beside the script, so a rerun keeps them;
# they name the run they were written from).
notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cluster-notes.md")
if os.path.exists(notes):
    p()
    with open(notes) as f:
        p(f.read().rstrip())
