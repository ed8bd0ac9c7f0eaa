//! Real reverse proxies for the tests: Debian's `nginx` and `caddy`, each started as the
//! current user with its own temporary directory and loopback ports, from the recipes
//! the project ships (`deploy/nginx.conf`, `deploy/Caddyfile`) rendered with the test's
//! addresses; dropping one stops it. Plus a stream client that reads what a proxy sends
//! back (chunked or not).

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Client, MAX_WAIT, Response, SseEvent, SseParser, wait_for};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A shipped file of the repository (e.g. `deploy/nginx.conf`).
pub fn shipped(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// `template` with each `(from, to)` applied; every `from` must occur exactly once, so a
/// shipped file that drifts away from what the tests change fails loudly.
pub fn render(template: &str, edits: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (from, to) in edits {
        let n = out.matches(from).count();
        assert_eq!(n, 1, "{from:?} occurs {n} times in the template:\n{out}");
        out = out.replace(from, to);
    }
    out
}

/// A fresh temporary directory.
fn temp_dir(kind: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ssehub-{kind}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// One running proxy; dropping it kills it and removes its directory.
pub struct Proxy {
    child: Child,
    /// Its temporary directory (configuration, logs, state).
    pub dir: PathBuf,
    /// Where it listens for plain HTTP/1.1.
    pub addr: SocketAddr,
    /// Its HTTPS port (Caddy with `tls internal`), 0 without.
    pub tls_port: u16,
}

impl Proxy {
    /// Its log (standard output and error).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
    }

    /// Waits until `port` accepts connections; panics with the log if the proxy exits.
    fn wait_listening(&mut self, port: u16) {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let ok = wait_for(MAX_WAIT, || {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("proxy exited ({st}) at start; log:\n{}", self.log());
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        assert!(
            ok.is_ok(),
            "proxy not listening on {addr}; log:\n{}",
            self.log()
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `deploy/nginx.conf` rendered for a test: ssehub at `hub`, listening on `port`, with
/// `edits` on top (e.g. `("proxy_read_timeout 60s;", "proxy_read_timeout 2s;")`).
pub fn nginx_site(hub: SocketAddr, port: u16, edits: &[(&str, &str)]) -> String {
    let listen = format!("listen 127.0.0.1:{port};");
    let upstream = format!("server {hub};");
    let mut all = vec![
        ("listen 80;", listen.as_str()),
        ("server 127.0.0.1:8080;", upstream.as_str()),
    ];
    all.extend_from_slice(edits);
    render(&shipped("deploy/nginx.conf"), &all)
}

/// Starts nginx with `site` (a server block, as `deploy/nginx.conf` is) inside a minimal
/// main configuration of its own: one process, no daemon, everything under a temporary
/// directory. `port` is where `site` listens.
pub fn start_nginx(site: &str, port: u16) -> Proxy {
    let dir = temp_dir("nginx");
    std::fs::write(dir.join("site.conf"), site).expect("write site.conf");
    let d = dir.display();
    // One process (no master, no workers): it never switches users, and killing it
    // stops all of it.
    let main = format!(
        "master_process off;\ndaemon off;\nerror_log {d}/error.log info;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/client_body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
    let log = std::fs::File::create(dir.join("proxy.log")).expect("log file");
    // Debian puts nginx in /usr/sbin, which is not on every user's PATH.
    let nginx = std::env::var("NGINX_BIN").unwrap_or_else(|_| {
        let sbin = "/usr/sbin/nginx";
        if Path::new(sbin).exists() {
            sbin
        } else {
            "nginx"
        }
        .to_owned()
    });
    let child = Command::new(nginx)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("run nginx (scripts/test.sh installs Debian's nginx)");
    let mut proxy = Proxy {
        child,
        dir,
        addr: ([127, 0, 0, 1], port).into(),
        tls_port: 0,
    };
    proxy.wait_listening(port);
    proxy
}

/// `deploy/Caddyfile` rendered for a test: ssehub at `hub`, plain HTTP/1.1 on `port`
/// and HTTPS (HTTP/2, `tls internal`) on `tls_port`, both on 127.0.0.1 only, no admin
/// endpoint, no redirect server, the local CA kept out of the system's trust store;
/// `edits` on top.
pub fn caddyfile(hub: SocketAddr, port: u16, tls_port: u16, edits: &[(&str, &str)]) -> String {
    let global = format!(
        "\n{{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n\t\
         http_port {port}\n\thttps_port {tls_port}\n"
    );
    let site =
        format!("https://127.0.0.1:{tls_port}, http://127.0.0.1:{port} {{\n\tbind 127.0.0.1\n");
    let upstream = format!("reverse_proxy {hub} {{");
    let mut all = vec![
        ("\n{\n", global.as_str()),
        ("sse.example.com {\n", site.as_str()),
        ("reverse_proxy 127.0.0.1:8080 {", upstream.as_str()),
    ];
    all.extend_from_slice(edits);
    render(&shipped("deploy/Caddyfile"), &all)
}

/// Starts caddy with `config` (a Caddyfile, see [`caddyfile`]); its data (the local CA)
/// and configuration directories are under a temporary directory.
pub fn start_caddy(config: &str, port: u16, tls_port: u16) -> Proxy {
    let dir = temp_dir("caddy");
    std::fs::write(dir.join("Caddyfile"), config).expect("write Caddyfile");
    let log = std::fs::File::create(dir.join("proxy.log")).expect("log file");
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.join("Caddyfile"))
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("run caddy (scripts/test.sh installs Debian's caddy)");
    let mut proxy = Proxy {
        child,
        dir,
        addr: ([127, 0, 0, 1], port).into(),
        tls_port,
    };
    proxy.wait_listening(port);
    proxy.wait_listening(tls_port);
    proxy
}

/// A `Transfer-Encoding: chunked` decoder, fed in arbitrary pieces.
#[derive(Debug, Default)]
struct Dechunk {
    /// Bytes of chunk data left in the current chunk.
    left: usize,
    /// The current size line (or the CRLF after a chunk's data).
    line: Vec<u8>,
    /// Inside the CRLF after a chunk's data.
    after_data: bool,
    /// The last chunk was read.
    done: bool,
}

impl Dechunk {
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() && !self.done {
            if self.left > 0 {
                let n = self.left.min(input.len());
                out.extend_from_slice(&input[..n]);
                self.left -= n;
                input = &input[n..];
                self.after_data = self.left == 0;
                continue;
            }
            let b = input[0];
            input = &input[1..];
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let line = std::mem::take(&mut self.line);
            if std::mem::take(&mut self.after_data) {
                assert_eq!(line, b"\r", "no CRLF after chunk data");
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            let size = text.trim().split(';').next().unwrap_or_default();
            self.left = usize::from_str_radix(size, 16)
                .unwrap_or_else(|_| panic!("bad chunk size line {text:?}"));
            self.done = self.left == 0;
        }
    }
}

/// A subscriber through a proxy: `GET path` over HTTP/1.1, the body dechunked when the
/// proxy chunks it, events parsed as a browser would.
pub struct ProxyStream {
    client: Client,
    /// The response head.
    pub head: Response,
    chunked: Option<Dechunk>,
    parser: SseParser,
    pending: VecDeque<SseEvent>,
    /// The body so far (dechunked).
    pub body: Vec<u8>,
    /// End of stream seen.
    pub eof: bool,
}

impl ProxyStream {
    /// Connects to `addr`, sends `GET path` with `headers` and checks the `200` stream head.
    pub fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> ProxyStream {
        let mut client = Client::connect(addr);
        let mut req =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        client.send(req.as_bytes());
        let head = client.read_until(b"\r\n\r\n", MAX_WAIT);
        let head = String::from_utf8(head).expect("UTF-8 head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        assert!(
            status_line.starts_with("HTTP/1.1 200"),
            "stream head: {head:?}"
        );
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header colon");
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        let head = Response {
            status: 200,
            status_line,
            headers,
            body: Vec::new(),
        };
        assert_eq!(head.header("Content-Type"), Some("text/event-stream"));
        assert_eq!(head.header("Content-Length"), None, "{head:?}");
        assert_eq!(head.header("Content-Encoding"), None, "{head:?}");
        let chunked = head
            .header("Transfer-Encoding")
            .is_some_and(|t| t.contains("chunked"))
            .then(Dechunk::default);
        let mut s = ProxyStream {
            client,
            head,
            chunked,
            parser: SseParser::new(),
            pending: VecDeque::new(),
            body: Vec::new(),
            eof: false,
        };
        let rest = std::mem::take(&mut s.client.buf);
        s.consume(&rest);
        s
    }

    fn consume(&mut self, bytes: &[u8]) {
        let mut plain = Vec::new();
        match &mut self.chunked {
            Some(d) => d.feed(bytes, &mut plain),
            None => plain.extend_from_slice(bytes),
        }
        self.body.extend_from_slice(&plain);
        let events = self.parser.feed(&plain);
        self.pending.extend(events);
    }

    /// Reads more; false at end of stream or at `deadline`.
    fn pump(&mut self, deadline: Instant) -> bool {
        if self.eof {
            return false;
        }
        match self.client.fill(deadline) {
            Ok(0) => {
                self.eof = true;
                false
            }
            Ok(_) => {
                let bytes = std::mem::take(&mut self.client.buf);
                self.consume(&bytes);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => false,
            Err(_) => {
                self.eof = true;
                false
            }
        }
    }

    /// The next event, or `None` at end of stream or after `within`.
    pub fn next_event(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
            }
            if !self.pump(deadline) {
                return self.pending.pop_front();
            }
        }
    }

    /// The next event; panics if none arrives within 5 s.
    pub fn expect_event(&mut self) -> SseEvent {
        self.next_event(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no event within 5 s (eof: {})", self.eof))
    }

    /// Reads for `within`, which must bring no event and no end of stream; returns the
    /// comments (heartbeats) seen so far.
    pub fn stay_quiet(&mut self, within: Duration) -> usize {
        if let Some(ev) = self.next_event(within) {
            panic!("unexpected event {ev:?}");
        }
        assert!(!self.eof, "the stream ended; body: {:?}", self.body_text());
        self.parser.comments.len()
    }

    /// The body so far, as text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `POST /publish` with a JSON `body` and `token` on a fresh connection through a proxy
/// (which may chunk the answer); returns the status and the answer's JSON.
pub fn publish_through(
    addr: SocketAddr,
    token: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let body = body.to_string();
    let mut client = Client::connect(addr);
    client.send(
        format!(
            "POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    client.read_to_end(Instant::now() + MAX_WAIT);
    let raw = std::mem::take(&mut client.buf);
    let end = super::find(&raw, b"\r\n\r\n").expect("a response head") + 4;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad head {head:?}"));
    let mut answer = Vec::new();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        Dechunk::default().feed(&raw[end..], &mut answer);
    } else {
        answer.extend_from_slice(&raw[end..]);
    }
    let json = serde_json::from_slice(&answer).unwrap_or_else(|e| {
        panic!(
            "answer is not JSON ({e}): {head}{}",
            String::from_utf8_lossy(&answer)
        )
    });
    (status, json)
}
