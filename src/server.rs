//! The server: accept loop, per-connection task, routing, and the SSE writer loop.
//!
//! Each accepted connection gets one task. It reads request heads (bounded in bytes and
//! time), answers the short routes on the same connection (keep-alive, pipelining), and
//! for `GET /stream` turns into the subscriber's writer: it frees the request buffer,
//! writes the preamble and the replay backlog, then waits for frames from its bounded
//! queue, drains whatever else is already queued and writes the batch with one vectored
//! write under the write deadline. While it waits it also watches the read side, so a
//! client that hangs up is removed at once.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_executor::Executor;
use async_io::{Async, Timer};
use async_net::{TcpListener, TcpStream};
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, FutureExt};
use serde_json::json;

use crate::config::Config;
use crate::http::ParseError;
use crate::http::framing::{BodyKind, Framing, framing};
use crate::http::head::{HeadLimits, HeadParser};
use crate::http::read::{ConnError, is_disconnect, read_body, read_head};
use crate::http::response::{CONTINUE, Response, stream_head};
use crate::http::target::{parse_target, query_pairs};
use crate::hub::{CloseHook, DirectSink, Hub, Subscription, Topic, Topics};
use crate::log::Log;
use crate::producer::Producers;
use crate::publish;
use crate::shutdown::{Guard, Shutdown};
use crate::sse::{Frame, push_comment};
use crate::stats::{Reason, Snapshot, Stats};
use crate::writer::Writer;

/// Connections the kernel queues for `accept`.
pub const LISTEN_BACKLOG: i32 = 4096;

/// A start-up or run-time failure of the server.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The listen address could not be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } => Some(source),
        }
    }
}

/// A byte stream the connection handler can serve: a TCP stream, or an in-memory stream
/// in tests and fuzz targets.
pub trait Conn: AsyncRead + AsyncWrite + Clone + Unpin + Send + Sync + 'static {
    /// Shuts both directions down, so that a task blocked on the stream wakes up.
    fn shut_down(&self);

    /// Whether a read may make progress, without reading: lets an idle subscriber's
    /// writer watch its read side without a `read` system call on every wake-up.
    /// `Ready` may be spurious; the default is always `Ready`.
    fn poll_readable(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The socket as the hub may write it directly while the subscriber's writer waits
    /// (see the hub's "Direct writes"); `None` (the default) keeps every frame queued.
    fn direct_sink(&self) -> Option<Arc<dyn DirectSink>> {
        None
    }
}

/// A TCP connection as the handler holds it: one pointer. (`async_net::TcpStream` also
/// caches two readiness futures, 120 bytes, and every subscriber's task holds its stream.)
#[derive(Debug, Clone)]
pub struct TcpConn(Arc<Async<std::net::TcpStream>>);

impl From<TcpStream> for TcpConn {
    fn from(stream: TcpStream) -> TcpConn {
        TcpConn(stream.into())
    }
}

impl AsyncRead for TcpConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }

    /// `sendmsg` rather than `writev`: the socket call skips the file-position lock and
    /// the VFS layer that `writev` goes through (`vfs_writev` + `fdget_pos` were 3–5 % of
    /// the server's samples in the fan-out profiles), and `MSG_NOSIGNAL` makes a gone peer
    /// an error, never a signal.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        use rustix::io::Errno;
        use rustix::net::{SendAncillaryBuffer, SendFlags};
        loop {
            let sent = rustix::net::sendmsg(
                self.0.get_ref(),
                bufs,
                &mut SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            );
            match sent {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
            // Would block: wait for the reactor to see the socket writable, then retry.
            match self.0.poll_writable(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_close(cx)
    }
}

impl Conn for TcpConn {
    fn shut_down(&self) {
        let _ = self.0.get_ref().shutdown(std::net::Shutdown::Both);
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }

    fn direct_sink(&self) -> Option<Arc<dyn DirectSink>> {
        Some(self.0.clone())
    }
}

/// One `send` (`MSG_NOSIGNAL | MSG_DONTWAIT`), for direct writes. The sink is the
/// connection's own `Arc`, so the descriptor stays open while a direct write holds it
/// even if the writer has ended.
impl DirectSink for Async<std::net::TcpStream> {
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        use rustix::io::Errno;
        use rustix::net::SendFlags;
        loop {
            match rustix::net::send(
                self.get_ref(),
                bytes,
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(n) => return Ok(n),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// What every connection task shares.
#[derive(Debug)]
pub struct Ctx {
    /// The validated configuration.
    pub config: Config,
    /// The stream manager.
    pub hub: Hub,
    /// The counters.
    pub stats: Arc<Stats>,
    /// Where log lines go.
    pub log: Log,
    /// Fires when the server starts shutting down.
    pub shutdown: Shutdown,
    connections: AtomicUsize,
}

impl Ctx {
    /// Shared state for a server with `config`.
    pub fn new(config: Config, log: Log, shutdown: Shutdown) -> Arc<Ctx> {
        let stats = Arc::new(Stats::new());
        let hub = Hub::with_log(config.hub, stats.clone(), log.clone());
        Arc::new(Ctx {
            config,
            hub,
            stats,
            log,
            shutdown,
            connections: AtomicUsize::new(0),
        })
    }

    /// Open connections now.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// A bound server, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    ctx: Arc<Ctx>,
}

impl Server {
    /// Binds the listen address of `config`.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when the address is in use or not available.
    pub fn bind(config: Config, log: Log, shutdown: Shutdown) -> Result<Server, Error> {
        let addr = config.bind;
        let bind_err = |source| Error::Bind { addr, source };
        let std = StdListener::bind(addr).map_err(bind_err)?;
        // std listens with a backlog of 128: too few for thousands of subscribers
        // reconnecting at once after a restart. Listening again raises it (the kernel
        // caps it at net.core.somaxconn); if that fails, the old backlog stays.
        let _ = rustix::net::listen(&std, LISTEN_BACKLOG);
        let local = std.local_addr().map_err(bind_err)?;
        let listener = TcpListener::try_from(std).map_err(bind_err)?;
        Ok(Server {
            listener,
            addr: local,
            ctx: Ctx::new(config, log, shutdown),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub, e.g. to publish from the embedding program.
    pub fn hub(&self) -> &Hub {
        &self.ctx.hub
    }

    /// The shared state.
    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// Serves until the shutdown signal fires, then stops accepting, stops the producers,
    /// lets every stream flush what it has queued, and returns the final counters once all
    /// connections are closed or the grace period is over.
    ///
    /// `ex` runs the accept loop, the request phase of every connection and the producers;
    /// `streams` runs the subscribers' writers. They may be one executor. Kept apart (as
    /// [`Server::run_threaded`] does), publishers and new connections never queue behind
    /// thousands of writers: publishing stays fast under fan-out load, and the writers,
    /// woken less often per event, carry more frames per write.
    pub async fn run(
        self,
        ex: Arc<Executor<'static>>,
        streams: Arc<Executor<'static>>,
    ) -> Snapshot {
        let ctx = self.ctx.clone();
        // A direct write job is split in one part per writer thread plus one that the
        // publishing thread writes itself, so the burst is spread over every core. (A
        // weak handle: the hub lives in tasks of that executor.)
        let writers = Arc::downgrade(&streams);
        let parts = ctx.config.threads.max(1) + 1;
        ctx.hub
            .set_direct_runner(move |job| match writers.upgrade() {
                Some(ex) => {
                    let mut split = job.split(parts);
                    let mine = split.pop();
                    for part in split {
                        ex.spawn(async move { part.run() }).detach();
                    }
                    if let Some(mine) = mine {
                        mine.run();
                    }
                }
                None => job.run(),
            });
        let producers = Producers::spawn(&ex, &ctx);
        let (guard, all_done) = Guard::new();
        ctx.log.line(format_args!("listening on {}", self.addr));
        accept_loop(&self.listener, &ex, &streams, &ctx, &guard).await;
        drop(self.listener);
        ctx.log.line(format_args!(
            "shutting down: {} clients, grace {:?}",
            ctx.hub.len(),
            ctx.config.grace
        ));
        drop(producers);
        ctx.hub.close();
        drop(guard);
        let finished = async {
            all_done.wait_all_dropped().await;
            true
        }
        .or(async {
            Timer::after(ctx.config.grace).await;
            false
        })
        .await;
        if !finished {
            ctx.log.line(format_args!(
                "grace period over: cancelling {} connections",
                all_done.alive()
            ));
        }
        ctx.stats.snapshot()
    }

    /// Runs the server until shutdown completes: the request executor on the calling
    /// thread, the stream executor on `config.threads` threads of its own.
    pub fn run_threaded(self) -> Snapshot {
        let ex = Arc::new(Executor::new());
        let streams = Arc::new(Executor::new());
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let threads: Vec<_> = (0..self.ctx.config.threads)
            .filter_map(|i| {
                let ex = streams.clone();
                let stop = stop_rx.clone();
                std::thread::Builder::new()
                    .name(format!("ssehub-{i}"))
                    .spawn(move || futures_lite::future::block_on(ex.run(stop.recv())))
                    .ok()
            })
            .collect();
        let snapshot =
            futures_lite::future::block_on(ex.run(self.run(ex.clone(), streams.clone())));
        stop_tx.close();
        for t in threads {
            let _ = t.join();
        }
        // Dropping the executors cancels whatever is left.
        drop((ex, streams));
        snapshot
    }
}

/// Accepts until shutdown. Accept errors (e.g. out of descriptors) back off from 10 ms to
/// 1 s and never stop the loop; they are logged once per burst.
async fn accept_loop(
    listener: &TcpListener,
    ex: &Arc<Executor<'static>>,
    streams: &Arc<Executor<'static>>,
    ctx: &Arc<Ctx>,
    guard: &Guard,
) {
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = async { Some(listener.accept().await) }
            .or(async {
                ctx.shutdown.wait().await;
                None
            })
            .await;
        let Some(accepted) = accepted else { return };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                ctx.stats.connection_accepted();
                let _ = stream.set_nodelay(true);
                let stream = TcpConn::from(stream);
                let slot = Slot::take(ctx);
                let ctx = ctx.clone();
                let guard = guard.clone();
                if slot.over_cap {
                    ex.spawn(async move {
                        reject_over_capacity(stream, &ctx).await;
                        drop((slot, guard));
                    })
                    .detach();
                } else {
                    let streams = streams.clone();
                    ex.spawn(async move {
                        let mut stream = stream;
                        let opened = Box::pin(serve_requests(&mut stream, peer, &ctx)).await;
                        if let Some((sub, preamble)) = opened {
                            // The writer moves to the stream executor; this task ends.
                            streams
                                .spawn(async move {
                                    write_stream(stream, sub, preamble, &ctx).await;
                                    drop((slot, guard));
                                })
                                .detach();
                        }
                    })
                    .detach();
                }
            }
            Err(e) => {
                if backoff.is_zero() {
                    ctx.log
                        .line(format_args!("accept failed: {e}; backing off"));
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                Timer::after(backoff)
                    .or(async {
                        ctx.shutdown.wait().await;
                        Instant::now()
                    })
                    .await;
            }
        }
    }
}

/// One open connection, counted against `max_clients` for as long as it lives.
struct Slot {
    ctx: Arc<Ctx>,
    over_cap: bool,
}

impl Slot {
    fn take(ctx: &Arc<Ctx>) -> Slot {
        let before = ctx.connections.fetch_add(1, Ordering::AcqRel);
        Slot {
            ctx: ctx.clone(),
            over_cap: before >= ctx.config.limits.max_clients,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.ctx.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn reject_over_capacity<S: Conn>(mut stream: S, ctx: &Ctx) {
    ctx.stats.rejected(503);
    let msg = format!(
        "server is at its limit of {} connections, retry later",
        ctx.config.limits.max_clients
    );
    let bytes = Response::text(503, &msg)
        .header("Retry-After", "1")
        .close()
        .to_bytes(false);
    let _ = write_timed(&mut stream, &bytes, Duration::from_secs(1)).await;
}

/// Writes all of `bytes` within `timeout`.
async fn write_timed<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    stream
        .write_all(bytes)
        .or(async {
            Timer::after(timeout).await;
            Err(io::ErrorKind::TimedOut.into())
        })
        .await
}

/// A parsed request, copied out of the read buffer.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    query: Option<String>,
    framing: Framing,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn params(
        &self,
    ) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
        query_pairs(self.query.as_deref().unwrap_or(""))
    }

    fn param(&self, name: &str) -> Option<String> {
        self.params()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Copies the head `parser` found at the start of `buf` into an owned [`Request`], removes
/// it and resets `parser` for the next one.
fn take_request(
    buf: &mut Vec<u8>,
    parser: &mut HeadParser,
    ctx: &Ctx,
) -> Result<Request, ParseError> {
    // Not reached: read_head returned once `parser` had the complete head.
    let head = parser.head(buf).ok_or(ParseError::HeadTooLarge {
        limit: ctx.config.limits.max_head_bytes,
    })?;
    let framing = framing(&head, ctx.config.limits.max_body)?;
    let target = parse_target(head.target)?;
    if target.asterisk && head.method != "OPTIONS" {
        return Err(ParseError::InvalidTarget);
    }
    let req = Request {
        method: head.method.to_owned(),
        path: if target.asterisk {
            "*".to_owned()
        } else {
            target.path.to_owned()
        },
        query: target.query.map(str::to_owned),
        framing,
        headers: head
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
    };
    let len = head.len;
    buf.drain(..len);
    parser.reset();
    Ok(req)
}

fn head_limits(ctx: &Ctx) -> HeadLimits {
    HeadLimits {
        max_request_line: ctx.config.limits.max_request_line,
        max_head_bytes: ctx.config.limits.max_head_bytes,
        max_headers: ctx.config.limits.max_headers,
    }
}

/// Serves one connection: requests until close, or a stream.
pub async fn serve_connection<S: Conn>(mut stream: S, peer: SocketAddr, ctx: &Arc<Ctx>) {
    // The request phase is boxed: its buffer and futures are freed before a stream
    // starts, so a long-lived subscriber's task holds only the writer's state.
    if let Some((sub, preamble)) = Box::pin(serve_requests(&mut stream, peer, ctx)).await {
        write_stream(stream, sub, preamble, ctx).await;
    }
}

/// The stream phase: the writer, then the subscriber's end, counted with its reason.
async fn write_stream<S: Conn>(mut stream: S, mut sub: Subscription, preamble: Frame, ctx: &Ctx) {
    let reason = Writer::new(&mut stream, &mut sub, preamble, ctx).await;
    if reason == Reason::Shutdown {
        // Stop writing so the client sees a clean end after the last frame.
        let _ = stream.close().await;
    }
    sub.end(reason);
}

/// Answers requests until the connection closes (`None`) or becomes a stream.
async fn serve_requests<S: Conn>(
    stream: &mut S,
    peer: SocketAddr,
    ctx: &Arc<Ctx>,
) -> Option<(Subscription, Frame)> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut parser = HeadParser::new(head_limits(ctx));
    let mut served = 0u32;
    loop {
        let deadline = Instant::now() + ctx.config.limits.header_timeout;
        let read = read_head(stream, &mut buf, &mut parser, deadline);
        // At shutdown, a connection waiting for a head closes; `or` polls the read first,
        // so a request already in the buffer is still answered.
        let got = async { Some(read.await) }
            .or(async {
                ctx.shutdown.wait().await;
                None
            })
            .await;
        let result = got?;
        let req = match result
            .and_then(|_| take_request(&mut buf, &mut parser, ctx).map_err(ConnError::from))
        {
            Ok(req) => req,
            Err(e) => {
                refuse(stream, ctx, e, served == 0).await;
                return None;
            }
        };
        served += 1;
        match plan(ctx, &req) {
            Plan::Respond(resp) => {
                let resp = if req.framing.body == BodyKind::None {
                    resp
                } else {
                    resp.close()
                };
                if !send(stream, ctx, &req, resp).await {
                    return None;
                }
            }
            Plan::Publish => {
                let resp = match receive_body(stream, &mut buf, ctx, &req).await {
                    Ok(body) => {
                        let (resp, congested) = publish(ctx, &req, &body);
                        if congested {
                            pace_publisher(ctx).await;
                        }
                        resp
                    }
                    Err(e) => {
                        // The head has arrived: a stalled body is a request timeout.
                        refuse(stream, ctx, e, true).await;
                        return None;
                    }
                };
                if !send(stream, ctx, &req, resp).await {
                    return None;
                }
            }
            Plan::Stream { topics, last_id } => {
                drop(buf);
                drop(parser);
                let open = OpenStream {
                    topics,
                    last_id,
                    head: stream_head(&crate::cors::headers(ctx, req.header("Origin"))),
                    head_only: req.is_head(),
                };
                return open_stream(stream, peer, ctx, open).await;
            }
        }
    }
}

/// Writes a short response; false when the connection must close.
async fn send<S: Conn>(stream: &mut S, ctx: &Ctx, req: &Request, resp: Response) -> bool {
    if resp.status >= 400 {
        ctx.stats.rejected(resp.status);
    }
    // Every refused request ends its connection, as a malformed one must.
    let close =
        resp.close || resp.status >= 400 || !req.framing.keep_alive || ctx.shutdown.is_triggered();
    let mut resp = if close { resp.close() } else { resp };
    resp.headers
        .extend(crate::cors::headers(ctx, req.header("Origin")));
    let bytes = resp.to_bytes(req.is_head());
    write_timed(stream, &bytes, ctx.config.limits.write_timeout)
        .await
        .is_ok()
        && !close
}

/// Answers a request that failed before routing, then the connection closes.
/// A timeout gets `408` when `in_request` (part of a request had arrived, or this was the
/// connection's first request); an idle keep-alive connection just closes.
async fn refuse<S: Conn>(stream: &mut S, ctx: &Ctx, e: ConnError, in_request: bool) {
    let resp = match e {
        ConnError::Parse(p) => Response::text(p.status(), &p.to_string()),
        ConnError::Timeout { partial } if partial || in_request => {
            Response::text(408, "request head not received in time")
        }
        ConnError::Io(ref io) if !is_disconnect(io) => {
            ctx.log.line(format_args!("connection error: {io}"));
            return;
        }
        _ => return,
    };
    ctx.stats.rejected(resp.status);
    let bytes = resp.close().to_bytes(false);
    let _ = write_timed(stream, &bytes, ctx.config.limits.write_timeout).await;
    // Let the peer read the answer before the close: stop writing, then close.
    let _ = stream.close().await;
}

/// What a request leads to once its head has been checked.
enum Plan {
    Respond(Response),
    Publish,
    Stream {
        topics: Topics,
        last_id: Option<u64>,
    },
}

/// Methods this server knows; any other gets `501`.
const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Routes a request by path and method, checking everything that needs no body.
fn plan(ctx: &Ctx, req: &Request) -> Plan {
    if !KNOWN_METHODS.contains(&req.method.as_str()) {
        return Plan::Respond(Response::text(
            501,
            &format!("method {} is not implemented", truncate(&req.method)),
        ));
    }
    let allow = match req.path.as_str() {
        "/stream" | "/health" | "/stats" | "/metrics" | "/" => "GET, HEAD, OPTIONS",
        "/publish" => "POST, OPTIONS",
        "*" => "GET, HEAD, POST, OPTIONS",
        _ => {
            return Plan::Respond(Response::text(
                404,
                &format!("no route for {}", truncate(&req.path)),
            ));
        }
    };
    let allowed = allow.split(", ").any(|m| m == req.method);
    if !allowed {
        return Plan::Respond(
            Response::text(
                405,
                &format!(
                    "{} is not allowed on {}; allowed: {allow}",
                    req.method, req.path
                ),
            )
            .header("Allow", allow),
        );
    }
    if req.method == "OPTIONS" {
        return Plan::Respond(crate::cors::preflight(ctx, req.header("Origin"), allow));
    }
    match req.path.as_str() {
        "/stream" => plan_stream(req),
        "/publish" => plan_publish(ctx, req),
        "/health" => Plan::Respond(health(ctx)),
        "/stats" => Plan::Respond(Response::json(200, &crate::metrics::stats_json(ctx))),
        "/metrics" => Plan::Respond(Response::with_body(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            crate::metrics::prometheus(ctx).into_bytes(),
        )),
        _ => Plan::Respond(Response::with_body(
            200,
            "text/html; charset=utf-8",
            crate::page::HTML.as_bytes().to_vec(),
        )),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn health(ctx: &Ctx) -> Response {
    if ctx.shutdown.is_triggered() {
        Response::json(
            503,
            &json!({"status": "shutting_down", "clients": ctx.hub.len()}),
        )
    } else {
        Response::json(
            200,
            &json!({"status": "ok", "clients": ctx.hub.len(), "uptime_secs": ctx.stats.snapshot().uptime_secs}),
        )
    }
}

fn plan_stream(req: &Request) -> Plan {
    if req.framing.body != BodyKind::None && req.framing.body != BodyKind::Length(0) {
        return Plan::Respond(Response::text(400, "GET /stream takes no request body").close());
    }
    let mut topics = Vec::new();
    for (k, v) in req.params() {
        if k == "topic" {
            match Topic::new(&v) {
                Ok(t) if topics.len() < 64 => topics.push(t),
                Ok(_) => return Plan::Respond(Response::text(400, "at most 64 topics per stream")),
                Err(e) => return Plan::Respond(Response::text(400, &e.to_string())),
            }
        }
    }
    let topics = if topics.is_empty() {
        Topics::All
    } else {
        Topics::Only(topics.into())
    };
    // A browser cannot set the header on its first connect, hence the query twin. Not a
    // number (another server's id): treated as no id.
    let last_id = req
        .header("Last-Event-ID")
        .map(str::to_owned)
        .or_else(|| req.param("lastEventId"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    Plan::Stream { topics, last_id }
}

fn plan_publish(ctx: &Ctx, req: &Request) -> Plan {
    let Some(token) = &ctx.config.publish_token else {
        return Plan::Respond(
            Response::text(403, "publishing is off: start ssehub with --publish-token TOKEN (or SSEHUB_PUBLISH_TOKEN)")
                .close(),
        );
    };
    let given = req
        .header("Authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        Some(g) if publish::constant_time_eq(g.as_bytes(), token.as_bytes()) => Plan::Publish,
        Some(_) => Plan::Respond(
            Response::text(401, "wrong bearer token")
                .header("WWW-Authenticate", "Bearer")
                .close(),
        ),
        None => Plan::Respond(
            Response::text(401, "missing Authorization: Bearer <token>")
                .header("WWW-Authenticate", "Bearer")
                .close(),
        ),
    }
}

/// Reads the body of an accepted request, after `100 Continue` when the client waits.
async fn receive_body<S: Conn>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    ctx: &Ctx,
    req: &Request,
) -> Result<Vec<u8>, ConnError> {
    if req.framing.expect_continue && req.framing.body != BodyKind::None && buf.is_empty() {
        write_timed(stream, CONTINUE, ctx.config.limits.write_timeout)
            .await
            .map_err(ConnError::Io)?;
    }
    let deadline = Instant::now() + ctx.config.limits.header_timeout;
    read_body(
        stream,
        buf,
        req.framing.body,
        ctx.config.limits.max_body,
        deadline,
    )
    .await
}

/// Longest a publish answer waits for subscribers to catch up.
pub const MAX_PUBLISH_PACE: Duration = Duration::from_millis(50);

/// How long the queues may go without draining before a paced publish answer goes out.
pub const PACE_STALL: Duration = Duration::from_millis(5);

/// Holds a publisher's answer while the server's writers are behind (some subscriber
/// whose socket still takes data holds half a queue or more) and the queues are
/// draining, checking every millisecond, for at most [`MAX_PUBLISH_PACE`].
///
/// A publisher that sends its next event after the answer (as HTTP clients do) then
/// slows to what the server can write, instead of filling queues and getting readers
/// evicted for the server's own lateness. Subscribers that have stopped reading cannot
/// hold it back: their writers report a full socket and do not count, and when
/// [`PACE_STALL`] passes with nothing drained the answer goes out anyway; stuck
/// subscribers fill their queues and are evicted as usual. (One millisecond was too
/// short: a writer thread preempted for a few milliseconds on a busy machine let the
/// publisher run on, and healthy subscribers were evicted.) Nothing else waits: the hub
/// and other connections go on.
async fn pace_publisher(ctx: &Ctx) {
    ctx.stats.publish_paced();
    let start = Instant::now();
    let deadline = start + MAX_PUBLISH_PACE;
    let mut before = ctx.hub.backlog();
    let mut drained_at = start;
    while Instant::now() < deadline && !ctx.shutdown.is_triggered() {
        Timer::after(Duration::from_millis(1)).await;
        let now = ctx.hub.backlog();
        if !now.congested() {
            return;
        }
        if now.queued < before.queued {
            drained_at = Instant::now();
        } else if drained_at.elapsed() >= PACE_STALL {
            return;
        }
        before = now;
    }
}

/// Publishes a request's event; the answer, and whether the subscribers are congested.
fn publish(ctx: &Ctx, req: &Request, body: &[u8]) -> (Response, bool) {
    let is_json = req.header("Content-Type").is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    let parsed = if is_json {
        publish::from_json(body)
    } else {
        publish::from_text(
            body,
            req.param("event").as_deref(),
            req.param("topic").as_deref(),
            req.param("retry").as_deref(),
        )
    };
    match parsed {
        Ok(p) => {
            let published = ctx.hub.publish(&p.topic, &p.event);
            let resp = Response::json(
                200,
                &json!({"id": published.id, "delivered_to": published.delivery.sent}),
            );
            (resp, published.delivery.congested())
        }
        Err(e) => (Response::text(400, &e.to_string()), false),
    }
}

/// A checked `GET /stream` request.
struct OpenStream {
    topics: Topics,
    last_id: Option<u64>,
    /// The response head, CORS fields included.
    head: Vec<u8>,
    /// A `HEAD` request: send the head only.
    head_only: bool,
}

/// Registers the subscriber and builds its first frame (response head, `retry:` and a
/// comment). `None` when the request was answered without a stream (HEAD, shutdown).
async fn open_stream<S: Conn>(
    stream: &mut S,
    peer: SocketAddr,
    ctx: &Ctx,
    open: OpenStream,
) -> Option<(Subscription, Frame)> {
    if open.head_only {
        let _ = write_timed(stream, &open.head, ctx.config.limits.write_timeout).await;
        return None;
    }
    let closer = stream.clone();
    let hook: CloseHook = Box::new(move || closer.shut_down());
    let sub = match ctx.hub.subscribe(open.topics, open.last_id, Some(hook)) {
        Ok(sub) => sub,
        Err(e) => {
            ctx.stats.rejected(503);
            let bytes = Response::text(503, &e.to_string()).close().to_bytes(false);
            let _ = write_timed(stream, &bytes, ctx.config.limits.write_timeout).await;
            return None;
        }
    };
    if let Some(sink) = stream.direct_sink() {
        sub.set_direct_sink(sink);
    }
    ctx.log
        .line(format_args!("client {} connected from {peer}", sub.id()));
    let mut preamble = open.head;
    let retry = jittered(ctx.config.retry_ms);
    preamble.extend_from_slice(format!("retry: {retry}\n").as_bytes());
    push_comment(&mut preamble, &format!("connected, client {}", sub.id()));
    preamble.push(b'\n');
    Some((sub, Frame::from_encoded(preamble)))
}

/// `ms` ±20%, so that a restart does not bring every client back in the same instant.
fn jittered(ms: u32) -> u32 {
    let spread = ms / 5;
    if spread == 0 {
        return ms;
    }
    ms - spread + fastrand::u32(0..=2 * spread)
}
