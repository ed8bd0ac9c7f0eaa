#!/usr/bin/env python3
"""Measures the RSS of a running ssehub with N idle subscribers (loopback only).

Usage: scripts/idle-rss.py PID PORT N
Opens N `GET /stream` connections to 127.0.0.1:PORT, waits until each got its
preamble, then prints the server's VmRSS before and after, and per subscriber.
Bounded: every socket has a 10 s timeout; it closes everything and exits.
"""
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def main():
    pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    before = rss_kib(pid)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    for s in socks:
        got = b""
        while b": connected" not in got:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("server closed a subscriber")
            got += chunk
    time.sleep(1)
    after = rss_kib(pid)
    print(f"subscribers={n} rss_before_kib={before} rss_after_kib={after} "
          f"per_subscriber_kib={(after - before) / n:.2f}")
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
