//! One master, two replicas and three sentinels on loopback (Debian's `redis-server` and
//! `redis-sentinel`), for the failover tests. Sentinels notice a dead master within a
//! second (`down-after-milliseconds 1000`) so that a test stays short. With
//! [`SentinelSet::start_tls`] every server and sentinel speaks TLS only (`port 0`,
//! `tls-port`), replication and the sentinels' links too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::MAX_WAIT;

/// How long three sentinels may take to see the master, its replicas and each other.
const SET_UP_WAIT: Duration = Duration::from_secs(30);
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
    /// With TLS: the directory holding `ca.crt`, `server.crt` and `server.key`.
    tls: Option<PathBuf>,
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
        SentinelSet::start_with(None)
    }

    /// As [`SentinelSet::start`], everything over TLS only, with the CA and the server
    /// certificate (for 127.0.0.1) in `certs` (`ca.crt`, `server.crt`, `server.key`).
    pub fn start_tls(certs: &Path) -> SentinelSet {
        SentinelSet::start_with(Some(certs.to_path_buf()))
    }

    /// The TLS settings of a server or sentinel on `port` (`port 0`, `tls-port`), as
    /// `name value` pairs.
    fn tls_settings(certs: &Path, port: u16) -> Vec<(String, String)> {
        let f = |n: &str| certs.join(n).display().to_string();
        [
            ("tls-port", port.to_string()),
            ("tls-cert-file", f("server.crt")),
            ("tls-key-file", f("server.key")),
            ("tls-ca-cert-file", f("ca.crt")),
            ("tls-auth-clients", "no".into()),
            ("tls-replication", "yes".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A server of the set: on a free TCP port, or with TLS on a free TLS port only;
    /// `extra` arguments after.
    fn server_of(tls: Option<&Path>, extra: &[&str]) -> RedisServer {
        let Some(certs) = tls else {
            return RedisServer::start_tcp(extra);
        };
        let port = free_port();
        let mut args: Vec<String> = Vec::new();
        for (k, v) in SentinelSet::tls_settings(certs, port) {
            args.push(format!("--{k}"));
            args.push(v);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut srv = RedisServer::start(&args);
        srv.port = port;
        srv
    }

    fn start_with(tls: Option<PathBuf>) -> SentinelSet {
        let master = SentinelSet::server_of(tls.as_deref(), &["--repl-diskless-sync-delay", "0"]);
        let mport = master.port.to_string();
        let mut servers = vec![master];
        for _ in 0..2 {
            servers.push(SentinelSet::server_of(
                tls.as_deref(),
                &[
                    "--replicaof",
                    "127.0.0.1",
                    &mport,
                    "--repl-diskless-sync-delay",
                    "0",
                ],
            ));
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
            let listen = match &tls {
                None => format!("port {port}\n"),
                Some(certs) => {
                    let mut l = "port 0\n".to_owned();
                    for (k, v) in SentinelSet::tls_settings(certs, port) {
                        l.push_str(&format!("{k} {v}\n"));
                    }
                    l
                }
            };
            std::fs::write(
                &conf,
                format!(
                    "{listen}bind 127.0.0.1\ndir {}\n\
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
            tls,
        };
        // Sentinels find each other through hello messages sent every 2 s on the
        // master; beside a full parallel test run that took more than MAX_WAIT once
        // (`num-other-sentinels` still 1 after 10 s), so the set gets a longer bound.
        let deadline = Instant::now() + SET_UP_WAIT;
        for &p in &set.sentinel_ports {
            loop {
                let m = set.cli(p, &["SENTINEL", "master", MASTER]);
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

    /// The `redis-sentinel://` URL of the set (`rediss-sentinel://` with TLS).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinel_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let scheme = match self.tls {
            Some(_) => "rediss-sentinel",
            None => "redis-sentinel",
        };
        format!("{scheme}://{}/{MASTER}", hosts.join(","))
    }

    /// `redis-cli` on TCP `port` of the set (a server or a sentinel; with `--tls` and the
    /// CA when the set speaks TLS), its output trimmed.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let Some(certs) = &self.tls else {
            return cli_tcp(port, args);
        };
        let ca = certs.join("ca.crt").display().to_string();
        let mut all = vec!["--tls", "--cacert", &ca];
        all.extend_from_slice(args);
        cli_tcp(port, &all)
    }

    /// The master's port as the first sentinel that answers names it.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinel_ports.iter().find_map(|&p| {
            let a = self.cli(p, &["SENTINEL", "get-master-addr-by-name", MASTER]);
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
