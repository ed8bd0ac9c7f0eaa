#!/usr/bin/env python3
"""Connect rate of GET /stream: N sequential connections, each connect -> send the
request -> read the head and the first comment -> close. Prints connections per second
and, with --pid, the server's CPU-us per connection (from /proc/PID/stat).

Loopback only; bounded by N. Usage:
  scripts/connect-rate.py --port 8080 --n 2000 [--token JWT] [--pid PID]
"""
import argparse
import os
import socket
import sys
import time


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--token", help="sent as Authorization: Bearer")
    ap.add_argument("--pid", type=int, help="the server, to sample its CPU time")
    a = ap.parse_args()
    auth = f"Authorization: Bearer {a.token}\r\n" if a.token else ""
    req = f"GET /stream HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode()
    before = cpu_secs(a.pid) if a.pid else None
    start = time.perf_counter()
    for i in range(a.n):
        s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
        s.sendall(req)
        got = b""
        while b"connected" not in got:
            chunk = s.recv(4096)
            if not chunk:
                sys.exit(f"connection {i}: closed early: {got!r}")
            got += chunk
        if not got.startswith(b"HTTP/1.1 200"):
            sys.exit(f"connection {i}: {got[:200]!r}")
        s.close()
    took = time.perf_counter() - start
    line = f"{a.n} connections in {took:.3f} s: {a.n / took:.0f} per second"
    if before is not None:
        # Let the server finish the last hang-ups before the second sample.
        time.sleep(0.2)
        used = cpu_secs(a.pid) - before
        line += f"; server CPU {used:.2f} s, {used / a.n * 1e6:.1f} us per connection"
    print(line)


if __name__ == "__main__":
    main()
