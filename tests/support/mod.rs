//! Test support: an in-process server, the real binary, a raw TCP client with deadlines,
//! and a small WHATWG-conformant SSE parser. Used by every module of `tests/tests.rs`.

#![allow(dead_code)]

pub mod proxy;
pub mod redis;
pub mod sentinel;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ssehub::config::Command as Cmd;
use ssehub::server::Handle;
use ssehub::sse::Event;
use ssehub::stats::Snapshot;
use ssehub::{Config, Hub, Log, Server, Shutdown};
use ssehub::{Envelope, EventId, Port, Topic};

/// The longest any single wait in these tests may take.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// A short wait, for things that should happen "at once".
pub const SHORT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------
// In-process server
// ---------------------------------------------------------------------------------------

/// A library server running on its own thread; dropping it shuts it down.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub hub: Hub,
    pub port: Port,
    pub handle: Handle,
    pub log: Arc<Mutex<Vec<String>>>,
    join: Option<JoinHandle<Snapshot>>,
}

/// Starts an in-process server on `127.0.0.1:0` with `args` on top of test defaults
/// (one executor thread, a 1 s grace period); a later flag wins over an earlier one.
pub fn start(args: &[&str]) -> TestServer {
    let mut all = vec!["--bind", "127.0.0.1:0", "--threads", "1", "--grace", "1"];
    all.extend_from_slice(args);
    let config = match Config::from_args(all.iter().copied(), |_| None) {
        Ok(Cmd::Run(c)) => *c,
        other => panic!("bad test config {args:?}: {other:?}"),
    };
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let log = Log::new(move |l| sink.lock().unwrap().push(l.to_string()));
    let shutdown = Shutdown::new();
    let server = Server::bind(config, log, shutdown.clone()).expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let hub = server.hub().clone();
    let port = server.port().clone();
    let handle = server.handle();
    let join = std::thread::Builder::new()
        .name("test-server".into())
        .spawn(move || server.run_threaded())
        .expect("spawn server thread");
    TestServer {
        addr,
        shutdown,
        hub,
        port,
        handle,
        log: lines,
        join: Some(join),
    }
}

impl TestServer {
    /// Publishes `data` (with an optional event name) on `topic` through the server's
    /// publish port; returns the id.
    pub fn publish(&self, topic: &str, name: Option<&str>, data: &str) -> EventId {
        let mut ev = Event::new(data).expect("valid data");
        if let Some(n) = name {
            ev = ev.with_name(n).expect("valid name");
        }
        let envelope = Envelope::on(Topic::new(topic).expect("valid topic"));
        let receipt =
            futures_lite::future::block_on(self.port.publish(envelope, ev)).expect("published");
        receipt.id.parse().expect("a hub id")
    }

    /// Waits until the hub holds exactly `n` subscribers.
    pub fn wait_subscribers(&self, n: usize, within: Duration) {
        let hub = self.hub.clone();
        wait_for(within, || hub.len() == n)
            .unwrap_or_else(|_| panic!("hub has {} subscribers, wanted {n}", self.hub.len()));
    }

    /// Stops the server and returns its final counters, within `within`.
    pub fn stop(mut self, within: Duration) -> Option<Snapshot> {
        self.shutdown.trigger();
        let join = self.join.take()?;
        wait_for(within, || join.is_finished()).ok()?;
        join.join().ok()
    }

    /// A fresh connection to this server.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(join) = self.join.take()
            && wait_for(Duration::from_secs(5), || join.is_finished()).is_ok()
        {
            let _ = join.join();
        }
    }
}

/// Polls `cond` every 5 ms until it holds or `within` passes.
pub fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------------------

/// The `ssehub` binary, started and listening; dropping it kills it.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every stderr line, including the ones before `listening on`.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

/// Starts the binary on `127.0.0.1:0` with `args` and waits (10 s at most) for its
/// `ssehub: listening on ADDR` line. Standard input is a pipe.
pub fn spawn_binary(args: &[&str]) -> Binary {
    let mut all = vec!["--bind", "127.0.0.1:0", "--threads", "1"];
    all.extend_from_slice(args);
    spawn_binary_via(env!("CARGO_BIN_EXE_ssehub"), &all)
}

/// Like [`spawn_binary`], for a `program` that runs the binary itself (e.g. `sh -c
/// "ulimit -n 64 && exec ssehub ..."`; with `exec`, the child's pid is the server's).
pub fn spawn_binary_via(program: &str, args: &[&str]) -> Binary {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ssehub");
    let stderr = child.stderr.take().expect("piped stderr");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel::<String>();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + MAX_WAIT;
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(a) = line.strip_prefix("ssehub: listening on ") {
                    break a.trim().parse().expect("listen address");
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ssehub did not report listening; stderr: {:?}",
                    lines.lock().unwrap()
                );
            }
        }
    };
    Binary {
        child,
        addr,
        stderr: lines,
    }
}

impl Binary {
    /// Sends `signal` (e.g. `TERM`) with `kill(1)`.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    /// Waits for the process to exit, within `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether some stderr line contains `needle`, waiting up to `within`.
    pub fn stderr_has(&self, needle: &str, within: Duration) -> bool {
        wait_for(within, || {
            self.stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
        })
        .is_ok()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The soak tool's binary (`soak/`, a package of its own, so Cargo gives this package no
/// `CARGO_BIN_EXE_` for it): built here with the cargo that runs these tests, in the same
/// profile, once per test run; its path is beside the server's.
pub fn soak_binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let server = std::path::Path::new(env!("CARGO_BIN_EXE_ssehub"));
            let dir = server.parent().expect("the binaries' directory");
            let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            build
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "ssehub-soak",
                    "--bin",
                    "ssehub-soak",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if dir.file_name().is_some_and(|p| p == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build -p ssehub-soak");
            assert!(status.success(), "cargo build -p ssehub-soak: {status}");
            let soak = dir.join("ssehub-soak");
            assert!(soak.exists(), "no {}", soak.display());
            soak
        })
        .clone()
}

/// Output of a binary run that is expected to end by itself.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` (no implicit flags) and waits up to 10 s for it to end.
pub fn run_binary(args: &[&str]) -> Finished {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ssehub");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + MAX_WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ssehub {args:?} did not exit within {MAX_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Finished {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------
// Raw HTTP client
// ---------------------------------------------------------------------------------------

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The status line, without CRLF.
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body_text()))
    }

    /// Asserts the error-response contract: `status`, a one-line text body and
    /// `Connection: close`.
    pub fn assert_refusal(&self, status: u16) {
        assert_eq!(self.status, status, "response: {self:?}");
        let body = self.body_text();
        assert!(
            body.ends_with('\n') && body.matches('\n').count() == 1 && body.len() > 1,
            "body is not one line: {body:?}"
        );
        assert!(
            self.header("Content-Type")
                .is_some_and(|c| c.starts_with("text/plain")),
            "content type: {:?}",
            self.header("Content-Type")
        );
        assert_eq!(
            self.header("Connection").map(str::to_ascii_lowercase),
            Some("close".into()),
            "no Connection: close in {self:?}"
        );
    }
}

/// A blocking TCP client that never waits without a deadline.
pub struct Client {
    pub stream: TcpStream,
    /// Received bytes not consumed yet.
    pub buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, SHORT).expect("connect");
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Like [`Client::send`], but a failure (e.g. the server already closed) is returned.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// One read into `buf`, waiting until `deadline` at most. `Ok(0)` is end of stream;
    /// `Err(TimedOut)` when the deadline passed first.
    pub fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let mut chunk = [0u8; 64 * 1024];
        let read = loop {
            // A signal that lands in this process (a test signals its children) may
            // interrupt the read: read again.
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(io::ErrorKind::TimedOut.into())
            }
            Err(e) => Err(e),
        }
    }

    /// Reads until `pattern` is in the buffer; returns and consumes everything up to and
    /// including it. Panics at the deadline or end of stream.
    pub fn read_until(&mut self, pattern: &[u8], within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        let mut searched = 0;
        loop {
            if let Some(i) = find(&self.buf[searched..], pattern) {
                let end = searched + i + pattern.len();
                return self.buf.drain(..end).collect();
            }
            searched = self.buf.len().saturating_sub(pattern.len());
            match self.fill(deadline) {
                Ok(0) => panic!(
                    "end of stream before {:?}; got {:?}",
                    String::from_utf8_lossy(pattern),
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "{e} before {:?}; got {:?}",
                    String::from_utf8_lossy(pattern),
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Reads one response (honouring `Content-Length`; without one, the body runs to the
    /// end of the stream). Panics after `within`.
    pub fn read_response_within(&mut self, within: Duration) -> Response {
        let deadline = Instant::now() + within;
        let head = self.read_until(b"\r\n\r\n", within);
        let head = String::from_utf8(head).expect("response head is UTF-8");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header has a colon");
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        let mut resp = Response {
            status,
            status_line,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            return resp;
        }
        match resp.header("Content-Length") {
            Some(len) => {
                let len: usize = len.parse().expect("numeric Content-Length");
                while self.buf.len() < len {
                    match self.fill(deadline) {
                        Ok(0) => panic!("end of stream inside a {len}-byte body"),
                        Ok(_) => {}
                        Err(e) => panic!("{e} inside a {len}-byte body"),
                    }
                }
                resp.body = self.buf.drain(..len).collect();
            }
            None => {
                self.read_to_end(deadline);
                resp.body = std::mem::take(&mut self.buf);
            }
        }
        resp
    }

    /// [`Client::read_response_within`] with a 5 s deadline.
    pub fn read_response(&mut self) -> Response {
        self.read_response_within(Duration::from_secs(5))
    }

    /// Sends `request` and reads one response.
    pub fn request(&mut self, request: &[u8]) -> Response {
        self.send(request);
        self.read_response()
    }

    /// Reads until the peer closes (end of stream or reset). Returns whether it closed
    /// before the deadline; what was read stays in `buf`.
    pub fn read_to_end(&mut self, deadline: Instant) -> bool {
        loop {
            match self.fill(deadline) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
        }
    }

    /// Like [`Client::read_to_end`] but drops what it reads (for big streams).
    pub fn drain_to_end(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            self.buf.clear();
            match self.fill(deadline) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
        }
    }

    /// Asserts the server closes the connection within 2 s.
    pub fn assert_closed(&mut self) {
        let closed = self.read_to_end(Instant::now() + SHORT);
        assert!(
            closed,
            "connection still open; extra bytes {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `GET path` with a Host header, HTTP/1.1.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// A `POST /publish` request.
pub fn post_publish(query: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /publish{query} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Publishes a JSON body with `token` on a fresh connection; returns the response.
pub fn publish_json(addr: SocketAddr, token: &str, body: &serde_json::Value) -> Response {
    let body = body.to_string();
    Client::connect(addr).request(&post_publish(
        "",
        Some(token),
        "application/json",
        body.as_bytes(),
    ))
}

/// Asserts the server answers `GET /health` with 200 on a new connection.
pub fn assert_healthy(addr: SocketAddr) {
    let resp = Client::connect(addr).request(&get("/health"));
    assert_eq!(resp.status, 200, "health: {resp:?}");
}

// ---------------------------------------------------------------------------------------
// SSE
// ---------------------------------------------------------------------------------------

/// One dispatched event, as a browser's `EventSource` would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The last event ID string at dispatch.
    pub id: String,
    /// The event type (`message` when no `event:` field).
    pub event: String,
    pub data: String,
}

impl SseEvent {
    /// The id, which must be of the hub's `<epoch>-<offset>` form.
    pub fn event_id(&self) -> EventId {
        self.id
            .parse()
            .unwrap_or_else(|_| panic!("not an <epoch>-<offset> id in {self:?}"))
    }

    /// The offset part of the id (dense from 1 within one epoch).
    pub fn offset(&self) -> u64 {
        self.event_id().offset
    }

    /// The data as JSON (e.g. of a `reset` event).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("data is not JSON ({e}): {self:?}"))
    }
}

/// The event-stream interpretation algorithm of the WHATWG HTML standard (§9.2.6),
/// fed in arbitrary pieces.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous piece ended with CR: an LF at the start of the next one belongs to it.
    after_cr: bool,
    data: String,
    event_type: String,
    last_id: String,
    /// Last `retry:` value.
    pub retry: Option<u64>,
    /// Comments (without the colon and one leading space), with the number of events
    /// dispatched before each.
    pub comments: Vec<(usize, String)>,
    /// Events dispatched so far.
    pub dispatched: usize,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if self.after_cr {
            self.after_cr = false;
            if bytes.first() == Some(&b'\n') {
                bytes = &bytes[1..];
            }
        }
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\r' || b == b'\n') {
                None => {
                    self.line.extend_from_slice(bytes);
                    break;
                }
                Some(i) => {
                    self.line.extend_from_slice(&bytes[..i]);
                    let mut skip = i + 1;
                    if bytes[i] == b'\r' {
                        match bytes.get(i + 1) {
                            Some(b'\n') => skip += 1,
                            None => self.after_cr = true,
                            Some(_) => {}
                        }
                    }
                    bytes = &bytes[skip..];
                    let line = std::mem::take(&mut self.line);
                    if let Some(ev) = self.process_line(&line) {
                        out.push(ev);
                    }
                }
            }
        }
        out
    }

    fn process_line(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        let line = String::from_utf8_lossy(line);
        if let Some(comment) = line.strip_prefix(':') {
            let c = comment.strip_prefix(' ').unwrap_or(comment);
            self.comments.push((self.dispatched, c.to_owned()));
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "event" => self.event_type = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_id = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        let event = match std::mem::take(&mut self.event_type) {
            t if t.is_empty() => "message".to_owned(),
            t => t,
        };
        self.dispatched += 1;
        Some(SseEvent {
            id: self.last_id.clone(),
            event,
            data,
        })
    }
}

/// A subscriber on `GET /stream`.
pub struct SseClient {
    pub client: Client,
    /// The response head.
    pub head: Response,
    pub parser: SseParser,
    pending: std::collections::VecDeque<SseEvent>,
    /// Every stream byte received so far, when `keep_raw` is set.
    pub raw: Vec<u8>,
    pub keep_raw: bool,
    /// End of stream seen.
    pub eof: bool,
}

impl SseClient {
    /// Connects, sends `GET path` with `extra_headers`, and checks the `200` stream head.
    pub fn connect(addr: SocketAddr, path: &str, extra_headers: &[(&str, &str)]) -> SseClient {
        let mut client = Client::connect(addr);
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n");
        for (n, v) in extra_headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        client.send(req.as_bytes());
        let head = client.read_until(b"\r\n\r\n", SHORT);
        let head = String::from_utf8(head).expect("UTF-8 head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        assert_eq!(status_line, "HTTP/1.1 200 OK", "stream head: {head:?}");
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
        let mut sse = SseClient {
            client,
            head,
            parser: SseParser::new(),
            pending: Default::default(),
            raw: Vec::new(),
            keep_raw: true,
            eof: false,
        };
        let rest = std::mem::take(&mut sse.client.buf);
        sse.consume(&rest);
        sse
    }

    /// `connect` with no extra headers.
    pub fn open(addr: SocketAddr, path: &str) -> SseClient {
        SseClient::connect(addr, path, &[])
    }

    fn consume(&mut self, bytes: &[u8]) {
        if self.keep_raw {
            self.raw.extend_from_slice(bytes);
        }
        let evs = self.parser.feed(bytes);
        self.pending.extend(evs);
    }

    /// Reads more; false at end of stream or when `deadline` passed.
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

    /// `n` events, each within 5 s.
    pub fn expect_events(&mut self, n: usize) -> Vec<SseEvent> {
        (0..n).map(|_| self.expect_event()).collect()
    }

    /// Asserts nothing dispatches within `within`.
    pub fn assert_no_event(&mut self, within: Duration) {
        if let Some(ev) = self.next_event(within) {
            panic!("unexpected event {ev:?}");
        }
    }

    /// Reads until `pattern` shows up in the raw bytes; false at the deadline or EOF.
    pub fn wait_raw(&mut self, pattern: &[u8], within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if find(&self.raw, pattern).is_some() {
                return true;
            }
            if !self.pump(deadline) {
                return find(&self.raw, pattern).is_some();
            }
        }
    }

    /// Reads (keeping events) until end of stream; whether it came within `within`.
    pub fn wait_eof(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.eof {
            if !self.pump(deadline) && !self.eof {
                return false;
            }
        }
        true
    }
}
