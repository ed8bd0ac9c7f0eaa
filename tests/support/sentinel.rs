//! One master, two replicas and three sentinels on loopback (Debian's `redis-server` and
//! `redis-sentinel`), for the failover tests. Sentinels notice a dead master within a
//! second (`down-after-milliseconds 1000`) so that a test stays short.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::MAX_WAIT;
use super::redis::RedisServer;

/// The name the sentinels know the master by.
pub const MASTER: &str = "mymaster";

/// A master, its replicas and the sentinels watching them; dropping it stops them all.
pub struct SentinelSet {
    /// The servers: `[0]` is the first master, then the replicas.
    pub servers: Vec<RedisServer>,
    /// The sentinels' TCP ports.
    pub sentinel_ports: Vec<u16>,
    sentinels: Vec<(Child, PathBuf)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `redis-cli -p port args…`, its output trimmed.
pub fn cli_tcp(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The value after `key` in a flat `key\nvalue\n…` listing.
fn field<'a>(listing: &'a str, key: &str) -> Option<&'a str> {
    let lines: Vec<&str> = listing.lines().collect();
    let i = lines.iter().position(|l| *l == key)?;
    lines.get(i + 1).copied()
}

impl SentinelSet {
    /// Starts the master, two replicas (waits for their link), then three sentinels
    /// (waits until each knows both replicas and the two other sentinels).
    pub fn start() -> SentinelSet {
        let master = RedisServer::start_tcp(&["--repl-diskless-sync-delay", "0"]);
        let mport = master.port.to_string();
        let mut servers = vec![master];
        for _ in 0..2 {
            servers.push(RedisServer::start_tcp(&[
                "--replicaof",
                "127.0.0.1",
                &mport,
                "--repl-diskless-sync-delay",
                "0",
            ]));
        }
        let deadline = Instant::now() + MAX_WAIT;
        for r in &servers[1..] {
            while !r
                .cli(&["INFO", "replication"])
                .contains("master_link_status:up")
            {
                assert!(Instant::now() < deadline, "replica did not sync");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut sentinels = Vec::new();
        let mut sentinel_ports = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = servers[0].dir.join(format!("sentinel-{port}"));
            std::fs::create_dir_all(&dir).expect("sentinel dir");
            let conf = dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor {MASTER} 127.0.0.1 {mport} 2\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 4000\n\
                     sentinel parallel-syncs {MASTER} 2\n",
                    dir.display()
                ),
            )
            .expect("sentinel.conf");
            let child = Command::new("redis-sentinel")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-sentinel must be installed (scripts/test.sh installs it)");
            sentinels.push((child, dir));
            sentinel_ports.push(port);
        }
        let set = SentinelSet {
            servers,
            sentinel_ports,
            sentinels,
        };
        let deadline = Instant::now() + MAX_WAIT;
        for &p in &set.sentinel_ports {
            loop {
                let m = cli_tcp(p, &["SENTINEL", "master", MASTER]);
                if field(&m, "num-slaves") == Some("2")
                    && field(&m, "num-other-sentinels") == Some("2")
                {
                    break;
                }
                assert!(Instant::now() < deadline, "sentinel {p} not ready: {m}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        set
    }

    /// The `redis-sentinel://` URL of the set.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinel_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis-sentinel://{}/{MASTER}", hosts.join(","))
    }

    /// The master's port as the first sentinel that answers names it.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinel_ports.iter().find_map(|&p| {
            let a = cli_tcp(p, &["SENTINEL", "get-master-addr-by-name", MASTER]);
            a.lines().nth(1)?.parse().ok()
        })
    }

    /// The server on `port`.
    pub fn server(&self, port: u16) -> &RedisServer {
        self.servers
            .iter()
            .find(|s| s.port == port)
            .expect("a server of the set")
    }

    /// Waits (up to `within`) until the sentinels name a master other than `old`; the
    /// new port and when it was first seen.
    pub fn wait_promotion(&self, old: u16, within: Duration) -> (u16, Instant) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(p) = self.master_port().filter(|&p| p != old) {
                return (p, Instant::now());
            }
            assert!(Instant::now() < deadline, "no promotion within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`, `KILL`) to the server on `port`.
    pub fn signal(&self, port: u16, signal: &str) {
        let pid = self.server(port).child.id().to_string();
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for (child, dir) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
        for s in &self.servers {
            // A stopped server would not die of SIGTERM; SIGKILL from Drop is enough.
            let _ = Command::new("kill")
                .args(["-CONT", &s.child.id().to_string()])
                .status();
        }
    }
}
