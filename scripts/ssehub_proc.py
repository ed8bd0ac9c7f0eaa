"""Helpers the measuring scripts share (scripts/drain-rate.py, scripts/subscribe-cost.py):
a free loopback port, waiting for a started ssehub to answer /health, and a process's CPU
time and RSS from /proc."""
import os
import socket
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(proc, port, binary):
    """Waits (10 s at most) until the server at `port` answers /health with 200."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc, port
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"{os.path.basename(sys.argv[0])}: {binary} did not come up on port {port}")


def proc_cpu_secs(pid):
    """User + system CPU time of `pid`, in seconds (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid):
    """Resident set size of `pid`, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
