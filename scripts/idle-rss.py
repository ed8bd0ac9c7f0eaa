#!/usr/bin/env python3
"""Measures the RSS of a running ssehub with N idle subscribers (loopback only), and
the kernel's memory for their sockets.

Usage: scripts/idle-rss.py PID PORT N [--json]
Opens N `GET /stream` connections to 127.0.0.1:PORT, waits until each got its
preamble, then prints the server's VmRSS before and after, and per subscriber; and
the kernel's `Slab` (/proc/meminfo) and TCP `mem` pages (/proc/net/sockstat) before
and after, per connection (both ends are on this machine: a server alone holds about
half of the Slab figure). `Slab` is machine-wide: other work moves it too; the socket
caches of /proc/slabinfo (TCP, sock_inode_cache, dentry, filp, eventpoll_*; root only)
move less.
Bounded: every socket has a 10 s timeout; it closes everything and exits.
"""
import json
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


# The slab caches a TCP socket's memory sits in (`/proc/slabinfo`, readable as root):
# the socket, its inode, dentry and file, its epoll entries.
SOCKET_CACHES = ("TCP", "sock_inode_cache", "dentry", "filp", "eventpoll_epi", "eventpoll_pwq")


def socket_slab_kib():
    """Bytes in use in SOCKET_CACHES, in KiB (None without /proc/slabinfo)."""
    try:
        lines = open("/proc/slabinfo").readlines()[2:]
    except OSError:
        return None
    total = 0
    for line in lines:
        f = line.split()
        if f[0] in SOCKET_CACHES:
            total += int(f[1]) * int(f[3])  # active objects x object size
    return total / 1024


def kernel():
    """(Slab KiB, TCP socket buffer KiB, TCP sockets allocated, socket caches KiB)."""
    slab = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                slab = int(line.split()[1])
    tcp_mem, alloc = 0, 0
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                fields = line.split()[1:]
                kv = dict(zip(fields[::2], fields[1::2]))
                tcp_mem = int(kv.get("mem", 0)) * 4
                alloc = int(kv.get("alloc", 0))
    return slab, tcp_mem, alloc, socket_slab_kib()


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    pid, port, n = int(args[0]), int(args[1]), int(args[2])
    before = rss_kib(pid)
    k_before = kernel()
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
    # The server gives a burst's heap holes back once a second of it was quiet
    # (src/server/release.rs, looking every second): sample after that.
    time.sleep(3)
    after = rss_kib(pid)
    k_after = kernel()
    per = (after - before) / n
    slab = (k_after[0] - k_before[0]) / n
    tcp = (k_after[1] - k_before[1]) / n
    sock = None if k_after[3] is None else (k_after[3] - k_before[3]) / n
    if "--json" in sys.argv:
        print(json.dumps({"subscribers": n, "rss_before_kib": before, "rss_after_kib": after,
                          "per_subscriber_kib": per, "slab_per_connection_kib": slab,
                          "tcp_mem_per_connection_kib": tcp,
                          "socket_slab_per_connection_kib": sock,
                          "tcp_sockets": k_after[2] - k_before[2]}))
    else:
        print(f"subscribers={n} rss_before_kib={before} rss_after_kib={after} "
              f"per_subscriber_kib={per:.2f} slab_per_connection_kib={slab:.2f} "
              f"tcp_mem_per_connection_kib={tcp:.2f} "
              f"socket_slab_per_connection_kib={sock if sock is None else round(sock, 2)} "
              f"tcp_sockets={k_after[2] - k_before[2]}")
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
