//! A real `redis-server` (Debian's) for the tests: each test starts its own, on a unix
//! socket in a temporary directory (or on a free TCP port), with no persistence unless
//! asked; dropping it stops it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{MAX_WAIT, TestServer, publish_json, start};

/// The publish token of the nodes [`node`] starts.
pub const NODE_TOKEN: &str = "k";

/// An in-process ssehub node on the shared stream at `url` (no demo, a heartbeat every
/// second, publishing with [`NODE_TOKEN`]), with `extra` flags.
pub fn node(url: &str, extra: &[&str]) -> TestServer {
    let mut args = vec![
        "--no-demo",
        "--heartbeat",
        "1",
        "--publish-token",
        NODE_TOKEN,
        "--redis",
        url,
    ];
    args.extend_from_slice(extra);
    start(&args)
}

/// Publishes `data` through `srv`; the id the answer carries.
pub fn publish(srv: &TestServer, data: &str) -> String {
    let r = publish_json(srv.addr, NODE_TOKEN, &serde_json::json!({"data": data}));
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["id"].as_str().expect("id").to_owned()
}

/// One running Redis server.
pub struct RedisServer {
    pub child: Child,
    pub dir: PathBuf,
    /// The unix socket path.
    pub socket: PathBuf,
    /// The TCP port (0: TCP off).
    pub port: u16,
    extra: Vec<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl RedisServer {
    /// A server on a unix socket only, with `extra` arguments (e.g. `--requirepass x`).
    pub fn start(extra: &[&str]) -> RedisServer {
        RedisServer::launch(0, extra, None)
    }

    /// A server on a unix socket and a free TCP port on 127.0.0.1.
    pub fn start_tcp(extra: &[&str]) -> RedisServer {
        RedisServer::launch(free_port(), extra, None)
    }

    fn launch(port: u16, extra: &[&str], dir: Option<PathBuf>) -> RedisServer {
        let dir = dir.unwrap_or_else(|| {
            let d = std::env::temp_dir().join(format!(
                "ssehub-redis-{}-{}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(&d).expect("temp dir");
            d
        });
        let socket = dir.join("redis.sock");
        let _ = std::fs::remove_file(&socket);
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--unixsocket".into(),
            socket.display().to_string(),
            "--unixsocketperm".into(),
            "700".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        let srv = RedisServer {
            child,
            dir,
            socket,
            port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        srv.wait_ready();
        srv
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + MAX_WAIT;
        while Instant::now() < deadline {
            if self.socket.exists() && std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }

    /// `unix://` URL of this server (with `auth`, e.g. `:pw@`).
    pub fn unix_url(&self, auth: &str) -> String {
        format!("unix://{auth}{}", self.socket.display())
    }

    /// `redis://` URL on TCP.
    pub fn tcp_url(&self, auth: &str) -> String {
        assert!(self.port != 0, "started without TCP");
        format!("redis://{auth}127.0.0.1:{}", self.port)
    }

    /// The TCP address (for a test proxy in front of it).
    pub fn tcp_addr(&self) -> std::net::SocketAddr {
        assert!(self.port != 0, "started without TCP");
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut all = vec!["-s".to_string(), self.socket.display().to_string()];
        if let Some(i) = self.extra.iter().position(|a| a == "--requirepass") {
            all.push("-a".into());
            all.push(self.extra[i + 1].clone());
            all.push("--no-auth-warning".into());
        }
        all.extend(args.iter().map(|s| s.to_string()));
        let out = Command::new("redis-cli")
            .args(&all)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Kills the server (as a crash would) and starts it again on the same socket, port
    /// and directory, with the same arguments.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let extra: Vec<String> = self.extra.clone();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let next = RedisServer::launch(self.port, &extra, Some(self.dir.clone()));
        let old = std::mem::replace(self, next);
        std::mem::forget(old);
    }

    /// Stops the server for good.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
