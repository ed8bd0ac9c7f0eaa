//! Upgrade without dropping a stream: on `SIGUSR2` the server starts the binary on disk
//! and hands it its listeners, its in-memory history and every live stream (socket and
//! state); it exits once the successor confirms, and serves on if it does not.
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` (this) | the phases, the old process's side, a stream taken and rebuilt |
//! | `wire.rs` | the snapshot's bytes |
//! | `transfer.rs` | the unix socket, `SCM_RIGHTS`, the confirmation |
//!
//! # The protocol (old process)
//!
//! 1. **Stop accepting** (the listeners stay open: connections wait in the kernel's
//!    queue) and **stop taking publishes**: the port's gate refuses new ones with `503`
//!    and `Retry-After`, and the ones in flight finish.
//! 2. **Pause the hub**: no fan-out, no heartbeat, no new direct write. Every writer is
//!    woken and stops where it stands; its task waits until no direct write holds the
//!    socket (the writer state word is the authority), takes what the socket is still
//!    owed (the rest of a frame written in part, then every queued frame), keeping the
//!    socket its own so that after a rollback no direct write goes ahead of those bytes,
//!    and hands the stream's state (`take_stream`) to the collector. The stream's task then waits for
//!    the verdict, its subscription still registered. A stream resting without a task
//!    (`rest.rs`) is woken the same way (the pause wakes the waker its state word holds,
//!    the rest's): a writer task starts for it, takes its read side out of the server's
//!    epoll set, stops at once and hands it in like the others; a stream about to rest
//!    sees the pause and does not. On a rollback it goes on in that task, and rests
//!    again once idle. In the successor, handed streams rest again once idle.
//! 3. **Start the successor** (the same path and arguments, [`transfer::SOCKET_ENV`]
//!    naming the channel), send it the snapshot (history, listeners' routes, streams)
//!    and the descriptors.
//! 4. **Commit** on its confirmation: the old process stops without touching a handed
//!    socket (no `shutdown(2)`, no byte), and exits. **Roll back** when the successor
//!    cannot start, exits, or does not confirm within [`CONFIRM_TIMEOUT`]: the old process
//!    stops the successor, opens the gate, unpauses the hub, and each stream's writer
//!    resumes with what it owed; one log line says why.
//!
//! The successor rebuilds an in-memory hub from the history (the same epoch, the next
//! id after the last) or, with `--history-file`, reads the file (the old process gives
//! up `PATH.lock` just before it sends the snapshot, and takes it back on a rollback),
//! or, with `--redis`, loads the stream's tail (the old reader stops delivering while
//! paused; each stream resumes after the last Redis id the old process handed it), subscribes each stream live from there (`rebuild_stream`) and
//! writes its owed bytes first: every event reaches each stream once, in order, since
//! no event was committed between the snapshot and the successor's first publish.

mod transfer;
mod wire;

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use async_io::Timer;
use async_net::TcpListener;
use futures_lite::FutureExt;

pub use transfer::{Received, SOCKET_ENV, receive};
pub(crate) use wire::StreamState;

use super::Ctx;
use super::rest::Held;
use super::router::Scope;
use super::socket::Conn;
use super::stream::Opened;
use super::subscriptions::Registration;
use crate::hub::Subscription;
use crate::sse::Frame;

/// How long the publishes in flight may take to finish once the gate is closed.
/// **Unit:** seconds. **Why:** a publish to memory takes microseconds, one to a history
/// file a sync; past this the handover rolls back rather than lose one.
pub const PUBLISH_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the streams may take to stop and hand their state in. **Unit:** seconds.
/// **Why:** a writer stops at its next poll, at once unless its thread is busy; one
/// that has not by then is left out (its client reconnects and resumes).
pub const COLLECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the successor may take to connect, rebuild and confirm. **Unit:**
/// seconds. **Why:** the successor's start is an `exec` and a few allocations per
/// stream; a successor that hangs must not keep publishers waiting long.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// The variable naming the binary to start instead of the one on disk. **For tests
/// only** (a successor that fails at start): it names any executable.
pub const EXE_ENV: &str = "SSEHUB_HANDOVER_EXE";

/// What to start on `SIGUSR2`: the binary's path (read again at each upgrade, so a new
/// file there is the one started) and the arguments.
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// The binary.
    pub exe: PathBuf,
    /// Its arguments (without the program name).
    pub args: Vec<OsString>,
}

/// Asks a running server to hand over to a successor (the binary's `SIGUSR2`). Cheap
/// to clone; a request while one is under way is ignored.
#[derive(Debug, Clone)]
pub struct UpgradeTrigger(Sender<()>);

impl UpgradeTrigger {
    /// Requests a handover.
    pub fn request(&self) {
        let _ = self.0.try_send(());
    }
}

/// A new trigger and the receiving end the server waits on.
pub(crate) fn trigger() -> (UpgradeTrigger, Receiver<()>) {
    let (tx, rx) = async_channel::bounded(1);
    (UpgradeTrigger(tx), rx)
}

/// Where the server stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Accepting and publishing.
    Serving,
    /// Paused: streams hand their state in.
    HandingOver,
    /// The successor confirmed: the old process stops without touching a stream.
    Committed,
}

/// A live stream handed in: its state and its socket.
struct Handed {
    state: StreamState,
    fd: Arc<dyn AsFd + Send + Sync>,
}

/// The handover's phase, shared by the accept loops, the streams and the driver.
#[derive(Debug)]
pub(crate) struct Phase {
    inner: Mutex<PhaseState>,
}

struct PhaseState {
    stage: Stage,
    /// Closed (and replaced) at each change of stage: wakes every waiter.
    changed: (Sender<()>, Receiver<()>),
    /// Where streams hand in, while a handover collects.
    collector: Option<Sender<Handed>>,
}

impl std::fmt::Debug for PhaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhaseState")
            .field("stage", &self.stage)
            .finish()
    }
}

impl Default for Phase {
    fn default() -> Phase {
        Phase {
            inner: Mutex::new(PhaseState {
                stage: Stage::Serving,
                changed: async_channel::bounded(1),
                collector: None,
            }),
        }
    }
}

impl Phase {
    fn lock(&self) -> std::sync::MutexGuard<'_, PhaseState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, stage: Stage, collector: Option<Sender<Handed>>) {
        let mut s = self.lock();
        s.stage = stage;
        s.collector = collector;
        let old = std::mem::replace(&mut s.changed, async_channel::bounded(1));
        old.0.close();
    }

    async fn wait_until(&self, done: impl Fn(Stage) -> bool) -> Stage {
        loop {
            let rx = {
                let s = self.lock();
                if done(s.stage) {
                    return s.stage;
                }
                s.changed.1.clone()
            };
            let _ = rx.recv().await;
        }
    }

    /// Returns when a handover stops accepting (never while serving).
    pub(crate) async fn paused(&self) {
        self.wait_until(|s| s != Stage::Serving).await;
    }

    /// Returns when the server serves again (a rollback); never after a commit.
    pub(crate) async fn resumed(&self) {
        self.wait_until(|s| s == Stage::Serving).await;
    }

    /// Whether the successor took over.
    pub(crate) fn committed(&self) -> bool {
        self.lock().stage == Stage::Committed
    }
}

/// What happens to a stream whose writer stopped for a handover.
pub(super) enum Taken {
    /// It stays here (a rollback, or it could not be handed): write `owed` first, and
    /// the notice still due.
    KeepServing(Frame, Option<(Instant, Frame)>),
}

/// Turns a live stream into its transferable state and hands it in; waits for the
/// verdict. Returns only if the stream stays (see [`Taken`]); after a commit it never
/// returns (the process stops without touching the socket).
///
/// `owed` and `notice` are what its writer still owed ([`super::writer::Writer::into_owed`]).
#[allow(clippy::too_many_arguments)]
pub(super) async fn take_stream<S: Conn>(
    ctx: &Ctx,
    stream: &S,
    sub: &Subscription,
    held: Option<&Held>,
    mercure: bool,
    ends_at: Option<Instant>,
    mut owed: Vec<u8>,
    notice: Option<(Instant, Frame)>,
) -> Taken {
    // 1. No direct write may hold the socket (row 11 or 12 of the state table).
    futures_lite::future::poll_fn(|cx| sub.poll_own(cx)).await;
    // 2. The rest of a direct write, then every queued frame; the socket stays the
    //    writer's, so that after a rollback nothing is written ahead of them.
    sub.take_owed(&mut owed);
    let owed = Frame::from_encoded(owed);
    let keep = Taken::KeepServing(owed.clone(), notice.clone());
    if let (Some((topics, rights, tagged)), Some(fd)) = (sub.filter(), stream.handover_fd()) {
        let now = Instant::now();
        let state = StreamState {
            topics,
            rights,
            mercure,
            tagged,
            ends_in: ends_at.map(|at| at.saturating_duration_since(now)),
            notice: notice.map(|(at, f)| (at.saturating_duration_since(now), f)),
            owed,
            quota_key: held.and_then(Held::quota_key).map(str::to_owned),
            subscriber: held.and_then(Held::subscriber).cloned(),
        };
        let collector = ctx.handover.lock().collector.clone();
        if let Some(c) = collector {
            // Closed once the snapshot is taken: a stream too late stays here.
            let _ = c.try_send(Handed { state, fd });
        }
    }
    // Handed in or not (too late, or a connection that cannot be handed), the stream
    // waits for the verdict: the hub stays paused until then, and its writer would only
    // stop again at once.
    match ctx.handover.wait_until(|s| s != Stage::HandingOver).await {
        // Handed: the successor writes it. Not handed: the process exits without
        // writing a byte more (its client reconnects and resumes).
        Stage::Committed => futures_lite::future::pending().await,
        _ => keep,
    }
}

/// Rebuilds a handed stream in the successor: subscribes it live on `ctx`'s hub (which
/// goes on from the predecessor's history, so live means right after its last event)
/// with its filter and rights; its owed bytes are the first thing its writer writes.
///
/// With a broker, `resume_after` is the last event the predecessor handed the stream:
/// what the broker added since comes first, as the stream's backlog.
pub(super) fn rebuild_stream<S: Conn>(
    ctx: &Ctx,
    stream: &S,
    state: StreamState,
    resume_after: Option<&str>,
) -> Option<Opened> {
    let closer = stream.clone();
    let hook: crate::hub::CloseHook = Box::new(move || closer.shut_down());
    let sink = stream.direct_sink()?;
    let sub = ctx
        .hub
        .subscribe_direct(
            state.topics,
            state.rights,
            resume_after,
            Some(hook),
            Some(sink),
            state.tagged,
        )
        .ok()?;
    let now = Instant::now();
    // Its place under its token's cap, and its Mercure listing, go on here: the same
    // count, the same subscriber id, announced inactive when it ends here.
    let slot = state.quota_key.and_then(|k| ctx.quota.adopt(&k));
    let registration = match (state.subscriber, &ctx.subscriptions) {
        (Some(s), Some(tracker)) => Some(Registration::adopt(tracker.clone(), s)),
        _ => None,
    };
    Some(Opened {
        sub,
        preamble: state.owed,
        ends_at: state.ends_in.map(|d| now + d),
        notice: state.notice.map(|(d, f)| (now + d, f)),
        slot: slot.map(Box::new),
        mercure: state.mercure,
        registration,
    })
}

/// The snapshot a successor received, decoded, with its descriptors split: listeners
/// first, then streams.
pub(super) struct Inherited {
    pub(super) history: crate::hub::HistoryState,
    pub(super) listeners: Vec<(std::net::TcpListener, Scope)>,
    pub(super) streams: Vec<(std::net::TcpStream, StreamState)>,
    pub(super) channel: std::os::unix::net::UnixStream,
    pub(super) resume_after: Option<String>,
}

/// Decodes what a successor received.
///
/// # Errors
///
/// A one-line reason when the snapshot is malformed or the descriptors do not match it.
pub(super) fn inherit(received: Received) -> Result<Inherited, String> {
    let snap = wire::decode(&received.snapshot).map_err(|e| e.to_string())?;
    let want = snap.listeners.len() + snap.streams.len();
    if received.fds.len() != want {
        return Err(format!(
            "{} descriptors received, the snapshot names {want}",
            received.fds.len()
        ));
    }
    let mut fds = received.fds.into_iter();
    let listeners = snap
        .listeners
        .into_iter()
        .zip(fds.by_ref())
        .map(|(scope, fd)| (std::net::TcpListener::from(fd), scope))
        .collect();
    let streams = fds
        .map(std::net::TcpStream::from)
        .zip(snap.streams)
        .collect();
    Ok(Inherited {
        history: snap.history,
        listeners,
        streams,
        channel: received.channel,
        resume_after: snap.resume_after,
    })
}

/// Tells the old process this successor serves (step 5 of `transfer.rs`).
pub(super) fn confirm(channel: &mut std::os::unix::net::UnixStream) -> std::io::Result<()> {
    transfer::confirm(channel)
}

/// What the handover driver needs: what to start, the listeners to hand, and the
/// service manager to tell (`RELOADING=1`, then `READY=1` after a rollback).
#[derive(Debug)]
pub(super) struct Driver {
    pub(super) upgrade: Upgrade,
    pub(super) listeners: Vec<(TcpListener, Scope)>,
    pub(super) notifier: Option<crate::daemon::Notifier>,
}

/// Waits for upgrade requests and runs each handover; returns after a commit.
pub(super) async fn serve_requests(ctx: Arc<Ctx>, requests: Receiver<()>, driver: Driver) {
    let Driver {
        upgrade,
        listeners,
        notifier,
    } = driver;
    while requests.recv().await.is_ok() {
        let exe = std::env::var_os(EXE_ENV).map_or_else(|| upgrade.exe.clone(), PathBuf::from);
        let started = Instant::now();
        if let Some(n) = &notifier {
            let _ = n.reloading(&format!("handing over to {}", exe.display()));
        }
        match hand_over(&ctx, &exe, &upgrade.args, &listeners).await {
            Ok(done) => {
                ctx.log.line(format_args!(
                    "handed over to pid {}: {} streams ({} bytes owed), {} listeners, {} \
                     events of history in {} ms; stopping",
                    done.pid,
                    done.streams,
                    done.owed,
                    listeners.len(),
                    done.events,
                    started.elapsed().as_millis()
                ));
                ctx.shutdown.trigger();
                return;
            }
            Err(why) => {
                ctx.log.line(format_args!(
                    "handover to {} failed: {why}; serving on",
                    exe.display()
                ));
                if let Some(n) = &notifier {
                    let _ = n.ready(&format!("serving: the handover failed: {why}"));
                }
            }
        }
    }
}

/// What a committed handover handed.
struct Done {
    pid: u32,
    streams: usize,
    /// Bytes the streams were still owed (frames written in part, queued frames).
    owed: usize,
    events: usize,
}

/// One handover: pause, collect, start the successor, send, wait; on any failure,
/// roll back (see the module docs).
async fn hand_over(
    ctx: &Arc<Ctx>,
    exe: &std::path::Path,
    args: &[OsString],
    listeners: &[(TcpListener, Scope)],
) -> Result<Done, String> {
    let (tx, rx) = async_channel::unbounded();
    ctx.handover.set(Stage::HandingOver, Some(tx));
    let mut child: Option<Child> = None;
    let result = attempt(ctx, exe, args, listeners, &rx, &mut child).await;
    match result {
        Ok(done) => {
            ctx.handover.set(Stage::Committed, None);
            Ok(done)
        }
        Err(why) => {
            if let Some(mut c) = child {
                // Gone before the store is taken back (it may hold the file's lock).
                let _ = smol::unblock(move || {
                    let _ = c.kill();
                    c.wait()
                })
                .await;
            }
            match ctx.port.retake() {
                Ok(()) => ctx.port.unpause(),
                Err(e) => ctx.log.line(format_args!(
                    "handover rolled back, but the history file cannot be taken back \
                     ({e}); publishing stays refused"
                )),
            }
            ctx.hub.unpause();
            ctx.handover.set(Stage::Serving, None);
            Err(why)
        }
    }
}

/// Steps 1–4 up to the confirmation; the caller commits or rolls back.
async fn attempt(
    ctx: &Arc<Ctx>,
    exe: &std::path::Path,
    args: &[OsString],
    listeners: &[(TcpListener, Scope)],
    handed_in: &Receiver<Handed>,
    child: &mut Option<Child>,
) -> Result<Done, String> {
    if !ctx.port.pause(PUBLISH_DRAIN_TIMEOUT).await {
        return Err("publishes in flight did not finish".into());
    }
    ctx.hub.pause();
    let channel = transfer::Channel::open().map_err(|e| format!("handover socket: {e}"))?;
    let spawned = Command::new(exe)
        .args(args)
        .env(SOCKET_ENV, channel.name())
        // systemd's WATCHDOG_PID names this process: without it the successor, which
        // becomes the main process, keeps the watchdog.
        .env_remove("WATCHDOG_PID")
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    let pid = spawned.id();
    *child = Some(spawned);
    // Collect while the successor starts.
    let mut streams: Vec<Handed> = Vec::new();
    let until = Instant::now() + COLLECT_TIMEOUT;
    while streams.len() < ctx.hub.len() && Instant::now() < until {
        let next = async { handed_in.recv().await.ok() }
            .or(async {
                Timer::after(Duration::from_millis(20)).await;
                None
            })
            .await;
        streams.extend(next);
    }
    // Late ones are left out: they find no collector and keep serving here.
    ctx.handover.lock().collector = None;
    handed_in.close();
    while let Ok(h) = handed_in.try_recv() {
        streams.push(h);
    }
    let left_out = ctx.hub.len().saturating_sub(streams.len());
    if left_out > 0 {
        ctx.log.line(format_args!(
            "handover: {left_out} streams did not stop in time and stay here"
        ));
    }
    // A broker's history stays in the broker: the successor reads on from it, and its
    // streams resume after the last event handed here, or, when none was (the stream
    // held none when this node started), after the reader's cursor (`0-0` for an empty
    // stream): what other nodes add meanwhile is then each stream's backlog.
    let (history, resume_after) = match ctx.hub.history_state() {
        Some(h) => (h, None),
        None => (
            crate::hub::HistoryState {
                epoch: 0,
                base: 0,
                events: Vec::new(),
            },
            ctx.hub
                .last_id()
                .map(|id| id.to_string())
                .or_else(|| ctx.port.status().broker.map(|b| b.cursor)),
        ),
    };
    let events = history.events.len();
    let owed = streams.iter().map(|h| h.state.owed.len()).sum();
    let (states, fds): (Vec<StreamState>, Vec<_>) =
        streams.into_iter().map(|h| (h.state, h.fd)).unzip();
    let snapshot = wire::encode(&wire::Snapshot {
        history,
        listeners: listeners.iter().map(|(_, s)| *s).collect(),
        streams: states,
        resume_after,
    });
    // The history file's lock passes to the successor (it reads the file itself).
    ctx.port.release()?;
    let mut borrowed: Vec<BorrowedFd<'_>> = listeners.iter().map(|(l, _)| l.as_fd()).collect();
    borrowed.extend(fds.iter().map(|f| f.as_fd()));
    let exited = async {
        loop {
            Timer::after(Duration::from_millis(20)).await;
            let status = child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = status {
                return Err(format!("the successor exited ({status}) before confirming"));
            }
        }
    };
    let deadline = async {
        Timer::after(CONFIRM_TIMEOUT).await;
        Err(format!(
            "the successor did not confirm within {} s",
            CONFIRM_TIMEOUT.as_secs()
        ))
    };
    let talk = async {
        let mut conn = channel
            .accept(pid)
            .await
            .map_err(|e| format!("handover socket: {e}"))?;
        transfer::send(&mut conn, &snapshot, &borrowed)
            .await
            .map_err(|e| format!("sending the state: {e}"))?;
        transfer::confirmed(&mut conn)
            .await
            .map_err(|e| format!("waiting for the confirmation: {e}"))
    };
    talk.or(exited).or(deadline).await?;
    Ok(Done {
        pid,
        streams: fds.len(),
        owed,
        events,
    })
}
