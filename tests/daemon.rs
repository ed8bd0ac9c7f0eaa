//! Running as a daemon (#22): systemd's notify protocol and watchdog, socket activation
//! through `systemd-socket-activate`, the units through `systemd-analyze verify`, and
//! the static binary alone in an empty root with `ssehub probe` as its health check.
//! scripts/test.sh installs the `systemd` package these tools come from.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Client, MAX_WAIT, get, spawn_binary, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_ssehub");

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("ssehub-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Proc {
    fn term(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -TERM failed");
    }

    fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

/// The service manager's end: a datagram socket in a temp dir.
struct NotifyListener {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: TempDir,
}

impl NotifyListener {
    fn new() -> NotifyListener {
        let dir = TempDir::new("notify");
        let path = dir.0.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifyListener {
            socket,
            path,
            _dir: dir,
        }
    }

    /// Every message received within `within`, until `stop` says enough.
    fn collect(&self, within: Duration, mut stop: impl FnMut(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return got;
            }
            self.socket.set_read_timeout(Some(left)).expect("timeout");
            let Ok(n) = self.socket.recv(&mut buf) else {
                return got;
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = stop(&msg);
            got.push(msg);
            if done {
                return got;
            }
        }
    }

    /// Waits (bounded) for a message containing `line`; all messages until then.
    fn expect(&self, line: &str) -> Vec<String> {
        let got = self.collect(MAX_WAIT, |m| m.lines().any(|l| l == line));
        assert!(
            got.last().is_some_and(|m| m.lines().any(|l| l == line)),
            "no {line} within {MAX_WAIT:?}; got {got:?}"
        );
        got
    }
}

/// The binary with `NOTIFY_SOCKET` (and a watchdog of `watchdog_ms`, and `extra` env).
fn spawn_notified(notify: &NotifyListener, watchdog_ms: u64, extra: &[(&str, &Path)]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--bind",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--no-demo",
        "--grace",
        "1",
    ])
    .env("NOTIFY_SOCKET", &notify.path)
    .env("WATCHDOG_USEC", (watchdog_ms * 1000).to_string())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().expect("spawn ssehub"))
}

#[test]
fn notify_socket_sees_ready_status_watchdog_and_stopping() {
    let notify = NotifyListener::new();
    let mut bin = spawn_notified(&notify, 200, &[]);
    let first = notify.expect("READY=1");
    assert!(
        first.last().unwrap().contains("STATUS=serving: 0 clients"),
        "{first:?}"
    );
    let mut seen = notify.expect("WATCHDOG=1");
    seen.extend(notify.expect("WATCHDOG=1"));
    assert!(seen.iter().any(|m| m.starts_with("STATUS=")), "{seen:?}");
    bin.term();
    let last = notify.expect("STOPPING=1");
    assert!(last.last().unwrap().contains("STATUS=stopping"), "{last:?}");
    let status = bin.wait_exit(MAX_WAIT).expect("exited after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn no_watchdog_while_the_accept_loop_is_stalled() {
    // The test hook SSEHUB_TEST_STALL_ACCEPT: while its file exists, the accept loop
    // pauses (asynchronously: the request thread, where the watchdog runs, stays free).
    let notify = NotifyListener::new();
    let dir = TempDir::new("stall");
    let stall = dir.0.join("stall");
    let _bin = spawn_notified(&notify, 200, &[("SSEHUB_TEST_STALL_ACCEPT", &stall)]);
    notify.expect("READY=1");
    notify.expect("WATCHDOG=1");
    std::fs::write(&stall, b"").expect("create the stall file");
    // At most two periods (100 ms each) may still end in a WATCHDOG=1: the one already
    // answered, and the one whose answer raced the file.
    let _ = notify.collect(Duration::from_millis(350), |_| false);
    let stalled = notify.collect(Duration::from_millis(800), |_| false);
    assert!(
        stalled.iter().any(|m| m.starts_with("STATUS=")),
        "the watchdog task itself keeps running: {stalled:?}"
    );
    assert!(
        !stalled.iter().any(|m| m.contains("WATCHDOG=1")),
        "WATCHDOG=1 sent while the accept loop was stalled: {stalled:?}"
    );
    std::fs::remove_file(&stall).expect("remove the stall file");
    notify.expect("WATCHDOG=1");
}

/// A free port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn status_of(addr: SocketAddr, path: &str) -> u16 {
    Client::connect(addr).request(&get(path)).status
}

#[test]
fn socket_activation_serves_a_public_and_an_admin_socket() {
    let (public, admin) = (free_port(), free_port());
    let public: SocketAddr = format!("127.0.0.1:{public}").parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let mut act = Command::new("systemd-socket-activate");
    act.args(["-l", &public.to_string(), "--fdname=public"])
        .args(["-l", &admin.to_string(), "--fdname=admin"])
        .args([BIN, "--no-demo", "--threads", "1", "--grace", "1"])
        .args(["--bind", "127.0.0.1:1"]) // ignored: the inherited listeners replace it
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut bin = Proc(act.spawn().expect(
        "run systemd-socket-activate (Debian package systemd; scripts/test.sh installs it)",
    ));
    // systemd-socket-activate listens first, then starts ssehub on the first connection.
    wait_for(MAX_WAIT, || std::net::TcpStream::connect(public).is_ok())
        .expect("the public socket listens");
    assert_eq!(status_of(public, "/health"), 200);
    assert_eq!(status_of(public, "/"), 200);
    assert_eq!(status_of(public, "/stats"), 404);
    assert_eq!(status_of(public, "/metrics"), 404);
    let mut publish = Client::connect(public);
    let r = publish.request(b"POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx");
    assert_eq!(r.status, 404, "publishing on the public socket");
    let mut stream = Client::connect(public);
    stream.send(&get("/stream"));
    let head = stream.read_until(b"\r\n\r\n", MAX_WAIT);
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert_eq!(status_of(admin, "/stats"), 200);
    assert_eq!(status_of(admin, "/metrics"), 200);
    assert_eq!(status_of(admin, "/health"), 200);
    bin.term();
    let st = bin.wait_exit(MAX_WAIT).expect("exited after SIGTERM");
    assert!(st.success(), "{st:?}");
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut bin.0.stderr.take().unwrap(), &mut err);
    assert!(
        err.contains(&format!("listening on {public} (public)")),
        "{err}"
    );
    assert!(err.contains(&format!("listening on {admin}\n")), "{err}");
    assert!(!err.contains("listening on 127.0.0.1:1\n"), "{err}");
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    // `verify` insists that ExecStart= names an executable: the units are copied with
    // the path of the binary under test in place of /usr/local/bin/ssehub.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let dir = TempDir::new("units");
    let names = ["ssehub.service", "ssehub.socket", "ssehub-admin.socket"];
    for name in names {
        let text = std::fs::read_to_string(root.join(name)).expect("read the unit");
        std::fs::write(dir.0.join(name), text.replace("/usr/local/bin/ssehub", BIN))
            .expect("write the unit");
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(names)
        .current_dir(&dir.0)
        .output()
        .expect("run systemd-analyze (Debian package systemd; scripts/test.sh installs it)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(dir.0.join("ssehub.service"))
        .output()
        .expect("run systemd-analyze security");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Overall exposure level for ssehub.service: 1."),
        "{text}"
    );
}

#[test]
fn probe_exits_0_on_2xx_and_1_otherwise() {
    let bin = spawn_binary(&["--no-demo"]);
    let run = |url: String| {
        let out = Command::new(BIN)
            .args(["probe", &url])
            .output()
            .expect("probe");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.lines().count(), 1, "{err:?}");
        (out.status.code(), err)
    };
    assert_eq!(run(format!("http://{}/health", bin.addr)).0, Some(0));
    let (code, err) = run(format!("http://{}/nope", bin.addr));
    assert_eq!(code, Some(1));
    assert!(err.contains("404"), "{err}");
    let closed = free_port();
    assert_eq!(run(format!("http://127.0.0.1:{closed}/health")).0, Some(1));
    assert_eq!(run("ftp://x/".to_owned()).0, Some(1));
}

/// The static binary: `SSEHUB_STATIC_BIN`, or the one scripts/build-static.sh makes, or
/// a debug build of the same (built here once, with the cargo that runs the tests).
fn static_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SSEHUB_STATIC_BIN") {
        return p.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let triple = root.join("target/x86_64-unknown-linux-gnu");
    for profile in ["release", "debug"] {
        let p = triple.join(profile).join("ssehub");
        if p.exists() && is_static(&p) {
            return p;
        }
    }
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--bin", "ssehub"])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C relocation-model=static",
        )
        .current_dir(root)
        .status()
        .expect("run cargo build (static)");
    assert!(status.success(), "static build: {status}");
    triple.join("debug/ssehub")
}

/// Whether `ldd` finds no dynamic dependency in `path`.
fn is_static(path: &Path) -> bool {
    Command::new("ldd")
        .arg(path)
        .output()
        .map(|o| !String::from_utf8_lossy(&o.stdout).contains("=>"))
        .unwrap_or(false)
}

/// `args` run inside `root` as an unprivileged user: `chroot --userspec` as root, else
/// an unprivileged user namespace (`unshare -r --root`).
fn in_root(root: &Path, args: &[&str]) -> Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut cmd = if is_root {
        let mut c = Command::new("chroot");
        c.args(["--userspec=65532:65532"]).arg(root);
        c
    } else {
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-root-user", "--mount", "--root"])
            .arg(root);
        c
    };
    // Nothing from this environment but PATH (to find chroot or unshare themselves).
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

#[test]
fn the_static_binary_serves_alone_in_an_empty_root_and_probes_itself() {
    let bin = static_binary();
    assert!(
        is_static(&bin),
        "{} has dynamic dependencies",
        bin.display()
    );
    let root = TempDir::new("scratch");
    std::fs::copy(&bin, root.0.join("ssehub")).expect("copy the binary");
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let mut server = Proc(
        in_root(
            &root.0,
            &["/ssehub", "--bind", &bind, "--threads", "1", "--grace", "1"],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server in the empty root"),
    );
    let url = format!("http://127.0.0.1:{port}/health");
    let healthy = wait_for(MAX_WAIT, || {
        in_root(&root.0, &["/ssehub", "probe", &url])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    assert!(
        healthy.is_ok(),
        "ssehub probe never succeeded in the empty root"
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(status_of(addr, "/health"), 200);
    server.term();
    let st = server.wait_exit(MAX_WAIT).expect("exited after SIGTERM");
    assert!(st.success(), "{st:?}");
    let out = in_root(&root.0, &["/ssehub", "probe", &url])
        .output()
        .expect("probe");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a stopped server probes unhealthy"
    );
}
