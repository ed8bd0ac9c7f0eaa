//! The accept loop and the connection cap.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_executor::Executor;
use async_io::Timer;
use async_net::TcpListener;
use futures_lite::FutureExt;

use super::rest::{Home, Keep};
use super::router::Scope;
use super::socket::{Conn, TcpConn, linger, write_timed};
use super::watchdog::Pulse;
use super::{Ctx, connection, stream};
use crate::http::read::{is_head_request, read_request_line};
use crate::http::response::Response;
use crate::shutdown::Guard;

/// What `Retry-After` says to a client refused at the connection cap. **Unit:** seconds.
/// Why: a slot frees as soon as any client leaves; a client that waits a second and
/// tries again has a fair chance, and a reconnect storm is spread out by its own jitter.
pub(super) const OVER_CAPACITY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long the answer to a refused connection may take to write, and how long its
/// request line may take to arrive before that. **Unit:** seconds. Why: a refused client
/// must not hold its slot; the answer is a few hundred bytes, and a client sends its
/// request line at once.
pub(super) const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Most connections accepted in a row before the accept loop yields to the other tasks
/// of its thread. **Unit:** connections. **Why:** a reconnect storm fills the accept queue
/// faster than requests are answered; answering must go on meanwhile.
pub(super) const ACCEPTS_PER_POLL: u32 = 32;

/// Shortest pause after a failed `accept` (e.g. out of descriptors). **Unit:** ms.
pub(super) const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);

/// Longest pause after repeated failed `accept`s. **Unit:** seconds.
pub(super) const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What woke the accept loop.
enum Woken {
    Accepted(std::io::Result<(async_net::TcpStream, std::net::SocketAddr)>),
    Ping,
    Shutdown,
    /// A handover stopped accepting (connections wait in the kernel's queue).
    Paused,
}

/// Accepts on `listener` until shutdown, serving the routes of `scope`. Accept errors
/// (e.g. out of descriptors) back off from 10 ms to 1 s and never stop the loop; they
/// are logged once per burst. With a `pulse`, each wake-up (a connection, an error, or
/// the watchdog's ping) counts one turn (see `watchdog.rs`).
pub(super) async fn accept_loop(
    listener: TcpListener,
    scope: Scope,
    pulse: Option<Pulse>,
    ex: Arc<Executor<'static>>,
    streams: Arc<Executor<'static>>,
    ctx: Arc<Ctx>,
    guard: Guard,
) {
    let (ex, streams, ctx, guard) = (&ex, &streams, &ctx, &guard);
    let mut backoff = Duration::ZERO;
    let mut in_a_row = 0u32;
    loop {
        if let Some(p) = &pulse {
            p.stall_hook().or(ctx.shutdown.wait()).await;
        }
        in_a_row += 1;
        if in_a_row >= ACCEPTS_PER_POLL {
            in_a_row = 0;
            futures_lite::future::yield_now().await;
        }
        let woken = async { Woken::Accepted(listener.accept().await) }
            .or(async {
                ctx.shutdown.wait().await;
                Woken::Shutdown
            })
            .or(async {
                match &pulse {
                    Some(p) => p.pinged().await,
                    None => futures_lite::future::pending().await,
                }
                Woken::Ping
            })
            .or(async {
                ctx.handover.paused().await;
                Woken::Paused
            })
            .await;
        if let Some(p) = &pulse {
            p.turn();
        }
        let accepted = match woken {
            Woken::Accepted(a) => a,
            Woken::Ping => continue,
            Woken::Shutdown => return,
            Woken::Paused => {
                // Until the handover rolls back (a commit ends with the shutdown).
                ctx.handover.resumed().or(ctx.shutdown.wait()).await;
                continue;
            }
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                ctx.stats.connection_accepted();
                let _ = stream.set_nodelay(true);
                if ctx.config.limits.send_buffer > 0 {
                    // See DEFAULT_SEND_BUFFER: a stuck client must fill up quickly.
                    let _ = rustix::net::sockopt::set_socket_send_buffer_size(
                        &stream,
                        ctx.config.limits.send_buffer,
                    );
                }
                let Ok(stream) = TcpConn::try_from(stream) else {
                    // The reactor would not let the socket go (never seen): drop it.
                    continue;
                };
                let (slot, over_cap) = Slot::take(ctx);
                let ctx = ctx.clone();
                let guard = guard.clone();
                if over_cap {
                    ex.spawn(async move {
                        reject_over_capacity(stream, &ctx).await;
                        drop((slot, guard));
                    })
                    .detach();
                } else {
                    let streams = streams.clone();
                    ex.spawn(async move {
                        // The shutdown waits for this task by its guard; once the
                        // connection is a stream, by its count (`Slot::into_counted`).
                        let _guard = guard;
                        let mut stream = stream;
                        let opened =
                            Box::pin(connection::serve_requests(&mut stream, peer, scope, &ctx))
                                .await;
                        if let Some(opened) = opened {
                            // The stream keeps its count until it ends, whether its
                            // writer runs or it rests (see `rest.rs`); its
                            // first writer runs here, then it rests or moves to the
                            // stream executor.
                            let counted = slot.into_counted(&ctx);
                            let home = Home::new(ctx, counted);
                            stream::start(stream, opened, home, &streams).await;
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
                backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
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

/// One open connection, counted against `max_connections` for as long as it lives.
pub(super) struct Slot {
    /// The count it is in; `None` once a stream keeps it instead ([`Slot::into_counted`]).
    connections: Option<Arc<AtomicUsize>>,
}

impl Slot {
    /// Counts one more connection: its slot, and whether it is over the cap. (A resting
    /// stream holds its slot: one pointer.)
    pub(super) fn take(ctx: &Arc<Ctx>) -> (Slot, bool) {
        let before = ctx.connections.fetch_add(1, Ordering::AcqRel);
        let slot = Slot {
            connections: Some(ctx.connections.clone()),
        };
        (slot, before >= ctx.config.limits.max_connections)
    }

    /// The slot as a stream keeps it (see [`Counted`]): the connection stays counted,
    /// and counted among the streams the shutdown waits for, until its home is dropped.
    /// Called while the request phase still holds its shutdown guard, so the shutdown
    /// never sees the stream in neither count.
    pub(super) fn into_counted(mut self, ctx: &Ctx) -> Counted {
        ctx.streams_alive.fetch_add(1, Ordering::AcqRel);
        // The count now goes with the stream: given back by `Counted::give_back`.
        self.connections = None;
        Counted(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(c) = &self.connections {
            c.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What a stream keeps of its connection's [`Slot`] and of the shutdown's guard: no
/// bytes. Its home gives both back through the server's context when the stream ends
/// (a slot and a guard held two pointers in every resting stream, 16 of its 128 bytes).
#[derive(Debug)]
pub(super) struct Counted(());

impl Keep for Counted {
    fn give_back(&mut self, ctx: &Ctx) {
        ctx.connections.fetch_sub(1, Ordering::AcqRel);
        ctx.streams_alive.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers a connection over the cap with `503` and `Retry-After`, then closes it. The
/// request line is read first (at most `--max-request-line` bytes, within
/// [`REFUSAL_WRITE_TIMEOUT`]), so that a `HEAD` gets no body (RFC 9110 §9.3.2); a client
/// that sends nothing in that time gets the answer all the same.
async fn reject_over_capacity<S: Conn>(mut stream: S, ctx: &Ctx) {
    let mut buf = Vec::new();
    let deadline = Instant::now() + REFUSAL_WRITE_TIMEOUT;
    let max = ctx.config.limits.head.max_request_line;
    read_request_line(&mut stream, &mut buf, max, deadline).await;
    let head_only = is_head_request(&buf);
    drop(buf);
    ctx.stats.rejected(503);
    let msg = format!(
        "server is at its limit of {} connections, retry later",
        ctx.config.limits.max_connections
    );
    let bytes = Response::text(503, &msg)
        .header(
            "Retry-After",
            OVER_CAPACITY_RETRY_AFTER.as_secs().to_string(),
        )
        .close()
        .to_bytes(head_only);
    if write_timed(&mut stream, &bytes, REFUSAL_WRITE_TIMEOUT)
        .await
        .is_ok()
    {
        // The rest of the request is unread: drain it, so the client reads the answer.
        linger(&mut stream, &ctx.config.limits).await;
    }
}
