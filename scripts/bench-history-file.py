#!/usr/bin/env python3
"""The history file's costs (issue #12), in one run: publishes per second and
publish->receive latency with no file and with --fsync never, interval and always
(100 subscribers, ssehub-soak back to back); the file's size over a long run against its
bound; the start-up time with a full history file; and group commit (issue #19): publishes
per second and syncs per publish with 1, 16 and 64 concurrent publishers for --fsync never
and always, and always with each sync slowed by 2 ms (the SSEHUB_TEST_SYNC_DELAY_MS test
hook), as a slow disk would.

Usage: scripts/bench-history-file.py [--runs 3] [--duration 10] [--long 60] [--dir DIR]
       [--quick] [--group-only] [--group-duration 5]
Needs the release binaries (cargo build --release --workspace --bins; CARGO_TARGET_DIR is honoured).
The file lives in DIR (default /tmp/ssehub-bench-hf). Prints a Markdown summary and the
exact commands; every figure is the median of --runs runs (fresh server and file each).
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
SSEHUB = os.path.join(TARGET, "release", "ssehub")
SOAK = os.path.join(TARGET, "release", "ssehub-soak")
TOKEN = "bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_cmd(port, extra):
    return [SSEHUB, "--bind", f"127.0.0.1:{port}", "--no-demo", "--publish-token", TOKEN,
            "--heartbeat", "0", "--quiet"] + extra


def answers(port):
    """Whether the server answers GET /health (a listening socket alone is not enough:
    the kernel completes handshakes before the server accepts)."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
        s.settimeout(0.5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        return s.recv(16).startswith(b"HTTP/1.1 200")


def start(port, extra):
    """Starts a server; (process, seconds until it answered /health)."""
    t0 = time.monotonic()
    p = subprocess.Popen(server_cmd(port, extra), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    while True:
        try:
            if answers(port):
                return p, time.monotonic() - t0
            raise OSError("not yet")
        except OSError:
            if p.poll() is not None:
                sys.exit(f"server exited: {p.stderr.read()}")
            if time.monotonic() - t0 > 120:
                sys.exit("server did not start")
            time.sleep(0.001)


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def soak_args(port, duration, clients, body, rate="max"):
    return [SOAK, "--url", f"http://127.0.0.1:{port}", "--token", TOKEN, "--clients",
            str(clients), "--publish-rate", rate, "--body-size", str(body),
            "--wait-connected", "--progress", "0", "--duration", str(duration)]


def soak(port, duration, clients=100, body=100, rate="max"):
    out = subprocess.run(soak_args(port, duration, clients, body, rate),
                         capture_output=True, text=True)
    r = json.loads(out.stdout)
    ev = r["events"]
    secs = ev["publish_secs"] or r["active_secs"]
    return {
        "ok": r["ok"],
        "failed": r["failed_checks"],
        "publishes_per_sec": ev["published"] / secs,
        "p50": r["latency_ms"]["p50"],
        "p99": r["latency_ms"]["p99"],
        "published": ev["published"],
    }


MODES = [("no file", None), ("never", "never"), ("interval", "interval"),
         ("always", "always")]


def mode_flags(mode, path):
    if mode is None:
        return []
    return ["--history-file", path, "--fsync", mode]


def fresh(dirname):
    shutil.rmtree(dirname, ignore_errors=True)
    os.makedirs(dirname)


def throughput(args):
    """Modes interleaved, `runs` rounds: {mode: [results]}."""
    path = os.path.join(args.dir, "history")
    results = {name: [] for name, _ in MODES}
    for _ in range(args.runs):
        for name, mode in MODES:
            fresh(args.dir)
            port = free_port()
            p, _ = start(port, mode_flags(mode, path))
            results[name].append(soak(port, args.duration))
            stop(p)
    return results


def file_bound(args):
    """One long run, 1000 events/s of 8 KiB: the file's size sampled every 100 ms."""
    fresh(args.dir)
    path = os.path.join(args.dir, "history")
    caps = ["--history", "1000", "--history-bytes", "2097152"]
    port = free_port()
    p, _ = start(port, caps + mode_flags("interval", path))
    sizes = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                sizes.append(os.path.getsize(path))
            except OSError:
                pass
            time.sleep(0.1)

    t = threading.Thread(target=sample)
    t.start()
    r = soak(port, args.long, clients=100, body=8192, rate="1000")
    done.set()
    t.join()
    stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats"))
    stop(p)
    return {"max": max(sizes), "final": sizes[-1], "samples": len(sizes),
            "published": r["published"], "ok": r["ok"], "failed": r["failed"],
            "stats_history": stats["history"], "caps": caps}


def publish_burst(port, n, body):
    """Publishes n events on one keep-alive connection, as fast as the answers come."""
    s = socket.create_connection(("127.0.0.1", port))
    data = json.dumps({"data": "x" * body})
    req = (f"POST /publish HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {TOKEN}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n{data}"
           ).encode()
    f = s.makefile("rb")
    for _ in range(n):
        s.sendall(req)
        length = 0
        while True:
            line = f.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            if line == b"\r\n":
                break
        f.read(length)
    s.close()


def startup(args):
    """Start-up time with no file and with a full file (just under its compaction point),
    for the default caps and for large ones. Warm page cache."""
    cases = [
        ("default caps (1000 events / 4 MiB), 4 KiB events", [], 1999, 4096),
        ("100,000 events / 256 MiB, 1 KiB events",
         ["--history", "100000", "--history-bytes", str(256 << 20)], 199_999, 1024),
    ]
    out = []
    for label, caps, n, body in cases[:1] if args.quick else cases:
        fresh(args.dir)
        path = os.path.join(args.dir, "history")
        port = free_port()
        p, _ = start(port, caps + mode_flags("never", path))
        publish_burst(port, n, body)
        stop(p)
        size = os.path.getsize(path)
        with_file, without = [], []
        for _ in range(args.runs):
            port = free_port()
            p, secs = start(port, caps + mode_flags("never", path))
            with_file.append(secs)
            stop(p)
            port = free_port()
            p, secs = start(port, caps)
            without.append(secs)
            stop(p)
        out.append({"case": label, "events": n, "file_bytes": size,
                    "with_file_ms": statistics.median(with_file) * 1000,
                    "no_file_ms": statistics.median(without) * 1000,
                    "runs_ms": [round(x * 1000, 1) for x in with_file]})
    return out


def publisher(port, seconds, body):
    """One publisher: POSTs back to back on one keep-alive connection for `seconds`;
    the publishes answered 200."""
    s = socket.create_connection(("127.0.0.1", port))
    data = json.dumps({"data": "x" * body})
    req = (f"POST /publish HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {TOKEN}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n{data}"
           ).encode()
    f = s.makefile("rb")
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        s.sendall(req)
        status = f.readline()
        length = 0
        while True:
            line = f.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            if line in (b"\r\n", b""):
                break
        f.read(length)
        if status.startswith(b"HTTP/1.1 200"):
            done += 1
    s.close()
    return done


def publishers_in_process(port, seconds, body, n):
    """`n` publisher threads in this process; their total."""
    counts = [0] * n

    def run(i):
        counts[i] = publisher(port, seconds, body)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts)


GROUP_MODES = [("never", "never", 0), ("always", "always", 0),
               ("always, sync +2 ms", "always", 2)]


def group_commit(args):
    """{(mode label, publishers): {publishes_per_sec, syncs_per_publish}}: fresh server
    and file per cell; publishers spread over up to 4 processes (Python's lock)."""
    from concurrent.futures import ProcessPoolExecutor
    out = {}
    for label, mode, delay in GROUP_MODES:
        for n in (1, 16, 64):
            fresh(args.dir)
            path = os.path.join(args.dir, "history")
            port = free_port()
            cmd = [c for c in server_cmd(port, mode_flags(mode, path)) if c != "--quiet"]
            env = dict(os.environ, SSEHUB_TEST_SYNC_DELAY_MS=str(delay))
            log = open(os.path.join(args.dir, "server.log"), "w")
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
            t0 = time.monotonic()
            while True:
                try:
                    if answers(port):
                        break
                except OSError:
                    pass
                if p.poll() is not None or time.monotonic() - t0 > 60:
                    sys.exit(f"server did not start: {cmd}")
                time.sleep(0.01)
            procs = min(n, 4)
            split = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
            t0 = time.monotonic()
            with ProcessPoolExecutor(procs) as ex:
                total = sum(ex.map(publishers_in_process, [port] * procs,
                                   [args.group_duration] * procs, [100] * procs, split))
            secs = time.monotonic() - t0
            stop(p)
            log.close()
            syncs = 0
            for line in open(os.path.join(args.dir, "server.log")):
                if " syncs, last offset " in line:
                    syncs = int(line.split(" syncs, ")[0].rsplit(" ", 1)[1])
            out[(label, n)] = {"publishes": total, "publishes_per_sec": total / secs,
                               "syncs": syncs, "syncs_per_publish": syncs / max(total, 1)}
    return out


def print_group(args):
    print("\ngroup commit: server", " ".join(server_cmd("PORT", [
        "--history-file", f"{args.dir}/history", "--fsync", "MODE"])).replace(" --quiet", ""),
        "[SSEHUB_TEST_SYNC_DELAY_MS=2]")
    print(f"load: N publishers (threads over up to 4 processes), each POSTing 100-byte "
          f"JSON events back to back on one keep-alive connection for "
          f"{args.group_duration} s")
    g = group_commit(args)
    print("\n| --fsync | publishers | publishes/s | syncs/publish | publishes/sync | "
          "vs never |")
    print("|---|---|---|---|---|---|")
    for label, _, _ in GROUP_MODES:
        for n in (1, 16, 64):
            r = g[(label, n)]
            per = r["publishes"] / r["syncs"] if r["syncs"] else float("inf")
            ratio = r["publishes_per_sec"] / g[("never", n)]["publishes_per_sec"]
            print(f"| {label} | {n} | {r['publishes_per_sec']:,.0f} | "
                  f"{r['syncs_per_publish']:.3f} | {per:.1f} | {ratio:.2f}x |")
    print("\ngroup runs:", json.dumps({f"{k[0]} / {k[1]}": v for k, v in g.items()}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--long", type=float, default=60)
    ap.add_argument("--dir", default="/tmp/ssehub-bench-hf")
    ap.add_argument("--quick", action="store_true", help="1 short run each, small files")
    ap.add_argument("--group-only", action="store_true",
                    help="only the group-commit table (issue #19)")
    ap.add_argument("--group-duration", type=float, default=5)
    args = ap.parse_args()
    if args.quick:
        args.runs, args.duration, args.long = 1, 4, 5
    fs = subprocess.run(["df", "-T", os.path.dirname(args.dir.rstrip("/")) or "/"],
                        capture_output=True, text=True).stdout.splitlines()[-1].split()
    print(f"file system of {args.dir}: {fs[1]} on {fs[0]}; {os.cpu_count()} CPUs; "
          f"load {os.getloadavg()[0]:.1f}")
    if args.group_only:
        print_group(args)
        return
    print("\nserver:", " ".join(server_cmd("PORT", ["[--history-file", f"{args.dir}/history",
                                                  "--fsync", "MODE]"])))
    print("load:  ", " ".join(soak_args("PORT", args.duration, 100, 100)))
    res = throughput(args)
    print(f"\n| history file | publishes/s | publish→receive p50, ms | p99, ms | all checks |")
    print("|---|---|---|---|---|")
    for name, _ in MODES:
        rs = res[name]
        med = lambda k: statistics.median(r[k] for r in rs)
        print(f"| {name} | {med('publishes_per_sec'):,.0f} | {med('p50'):.2f} | "
              f"{med('p99'):.2f} | {'ok' if all(r['ok'] for r in rs) else 'FAILED'} |")
    print("\nruns:", json.dumps({k: [(round(r["publishes_per_sec"]), r["p99"]) for r in v]
                                 for k, v in res.items()}))
    b = file_bound(args)
    print("\nlong run:", " ".join(server_cmd("PORT", b["caps"] + mode_flags(
        "interval", f"{args.dir}/history"))))
    print("load:    ", " ".join(soak_args("PORT", args.long, 100, 8192, "1000")))
    print(f"file bound: {json.dumps(b)}")
    for s in startup(args):
        print(f"start-up: {json.dumps(s)}")
    print_group(args)


if __name__ == "__main__":
    main()
