//! `GET /stream`: check the request, subscribe, build the preamble, run the writer, and
//! count how the stream ended.
//!
//! The stream head carries the resume outcome in [`RESUME_HEADER`] (`continue`, `reset`
//! or `initialized`), decided when the hub subscribes the client (for `HEAD`, as it
//! would be decided now), for clients that do not parse the body to learn it.

use std::net::SocketAddr;
use std::time::Instant;

use async_io::Timer;
use futures_lite::{AsyncWriteExt, FutureExt};

use super::Ctx;
use super::access::{self, Grant};
use super::expiring;
use super::handover;
use super::request::Request;
use super::rest::{self, Home, Keep, LiveStream};
use super::socket::{Conn, write_timed};
use super::subscriptions::{Pending, Registration};
use super::writer::{Stop, Writer};
use crate::event_id::{EventId, Resume};
use crate::http::framing::BodyKind;
use crate::http::response::{Response, stream_head};
use crate::hub::{CloseHook, Subscription};
use crate::sse::{self, Frame};
use crate::stats::Reason;
use crate::topic::{Topic, Topics};

/// Most topics one stream may ask for. Why: matching is a linear scan per event, and
/// a subscriber must not make every publish slower by asking for thousands.
pub const MAX_TOPICS_PER_STREAM: usize = 64;

/// The response header that names the resume outcome: `continue`, `reset` or
/// `initialized` (see `event_id.rs`).
pub const RESUME_HEADER: &str = "SSE-Resume";

/// A checked `GET /stream` request (or a subscribe on the Mercure path).
pub(super) struct OpenStream {
    topics: Topics,
    /// The client's last event id, as sent.
    last_id: Option<String>,
    grant: Grant,
    /// On the Mercure path: what its resume headers need.
    mercure: Option<super::resume_fields::Resuming>,
    /// `?tagged=1`: each event's frame names its topics and visibility
    /// ([`sse::tagged`]).
    tagged: bool,
    /// On the Mercure path, with `--mercure-subscriptions`: what is listed and announced
    /// once the stream is open.
    tracked: Option<Pending>,
}

impl OpenStream {
    /// A subscribe request on the Mercure path, checked there.
    pub(super) fn mercure(
        topics: Topics,
        last_id: Option<String>,
        grant: Grant,
        resuming: super::resume_fields::Resuming,
        tracked: Option<Pending>,
    ) -> OpenStream {
        OpenStream {
            topics,
            last_id,
            grant,
            mercure: Some(resuming),
            tagged: false,
            tracked,
        }
    }
}

/// A stream that is open: its subscription, its first frame, and when it ends (a token
/// that expires).
pub(super) struct Opened {
    pub(super) sub: Subscription,
    pub(super) preamble: Frame,
    pub(super) ends_at: Option<Instant>,
    /// The `token-expiring` event and when it is sent.
    pub(super) notice: Option<(Instant, Frame)>,
    /// Its place under the token's stream cap, given back when the stream ends.
    pub(super) slot: Option<Box<super::quota::Slot>>,
    /// Opened on the Mercure path (`false`: `/stream`).
    pub(super) mercure: bool,
    /// Its listing among Mercure's active subscriptions, ended (and announced) when
    /// the stream ends.
    pub(super) registration: Option<Registration>,
}

/// Checks what a stream request asks for: its token's grant, topics and the resume id,
/// or the refusal.
pub(super) fn check(ctx: &Ctx, req: &Request) -> Result<OpenStream, Response> {
    if req.framing.body != BodyKind::None && req.framing.body != BodyKind::Length(0) {
        return Err(Response::text(400, "GET /stream takes no request body").close());
    }
    let grant = access::subscriber(ctx, req)?;
    let mut topics = Vec::new();
    let mut tagged = false;
    for (k, v) in req.params() {
        if k == sse::TAGGED_PARAM {
            tagged = match &*v {
                "1" => true,
                "0" => false,
                _ => return Err(Response::text(400, "tagged must be 0 or 1")),
            };
        } else if k == "topic" {
            match Topic::new(&v) {
                Ok(t) if topics.len() < MAX_TOPICS_PER_STREAM => topics.push(t),
                Ok(_) => {
                    return Err(Response::text(
                        400,
                        &format!("at most {MAX_TOPICS_PER_STREAM} topics per stream"),
                    ));
                }
                Err(e) => return Err(Response::text(400, &e.to_string())),
            }
        }
    }
    // Each topic once: `?topic=D&topic=D` is one subscriber of D, not two.
    let topics = Topics::requested(topics);
    // A browser cannot set the header on its first connect, hence the query twin; the
    // header wins. The text goes to the hub as sent: it decides what it means.
    let last_id = req
        .last_event_id
        .clone()
        .or_else(|| req.param("lastEventId"));
    Ok(OpenStream {
        topics,
        last_id,
        grant,
        mercure: None,
        tagged,
        tracked: None,
    })
}

/// Registers the subscriber and builds its first frame (response head, `retry:` and a
/// comment), with the rights its token grants. `None` when the request was answered
/// without a stream (HEAD, shutdown).
pub(super) async fn open<S: Conn>(
    stream: &mut S,
    peer: SocketAddr,
    ctx: &Ctx,
    req: &Request,
    open: OpenStream,
) -> Option<Opened> {
    // Read before subscribing: an event published in between is sent live, and the
    // headers name the one before it.
    let mercure = open.mercure.as_ref().map(|m| m.before(ctx));
    let head = |resume: Resume| {
        let mut fields = ctx.cors.headers(req.origin.as_deref());
        if fields
            .iter()
            .any(|(n, _)| *n == "Access-Control-Allow-Origin")
        {
            let exposed = match mercure {
                Some(_) => super::resume_fields::EXPOSED_HEADERS,
                None => RESUME_HEADER,
            };
            fields.push(("Access-Control-Expose-Headers", exposed.to_owned()));
        }
        fields.push((RESUME_HEADER, resume.label().to_owned()));
        if let Some(m) = &mercure {
            m.head_fields(resume, &mut fields);
        }
        stream_head(&fields)
    };
    // The rare paths' futures are boxed (HEAD, a resume from the broker, a refusal):
    // this future is part of every connection's request phase, which held 2,448 bytes
    // before these and publish's were boxed and 1,456 after (#15, W1).
    if req.is_head() {
        let head = head(ctx.hub.resume_outcome(open.last_id.as_deref()));
        let _ = Box::pin(write_timed(stream, &head, ctx.config.limits.write_timeout)).await;
        return None;
    }
    // A socket the hub writes directly is shut down through its sink on an eviction:
    // only the others need a close hook (a box per subscriber).
    let sink = stream.direct_sink();
    let hook = || -> Option<CloseHook> {
        let closer = stream.clone();
        sink.is_none()
            .then(|| Box::new(move || closer.shut_down()) as CloseHook)
    };
    let last_id = open.last_id.as_deref();
    // Mercure's `earliest` wants the history only: the broker is not read for it.
    let earliest = open.mercure.as_ref().is_some_and(|m| m.earliest());
    let placed = match last_id {
        Some(sent) if ctx.hub.has_external_ids() && !earliest => {
            Box::pin(from_the_log(ctx, sent)).await
        }
        _ => None,
    };
    let rights = open.grant.rights;
    let hook = hook();
    let subscribed = match (placed, sink) {
        (Some(FromTheLog { older, unread }), sink) => ctx.hub.subscribe_bridged(
            open.topics,
            rights,
            last_id,
            older,
            unread,
            hook,
            sink,
            open.tagged,
        ),
        (None, sink) => {
            ctx.hub
                .subscribe_direct(open.topics, rights, last_id, hook, sink, open.tagged)
        }
    };
    let sub = match subscribed {
        Ok(sub) => sub,
        Err(e) => {
            ctx.stats.rejected(503);
            let bytes = Response::text(503, &e.to_string()).close().to_bytes(false);
            Box::pin(async {
                if write_timed(stream, &bytes, ctx.config.limits.write_timeout)
                    .await
                    .is_ok()
                {
                    super::socket::linger(stream, &ctx.config.limits).await;
                }
            })
            .await;
            return None;
        }
    };
    ctx.log
        .line(format_args!("client {} connected from {peer}", sub.id()));
    let preamble = sse::preamble(head(sub.resume()), jittered(ctx.config.retry_ms), sub.id());
    let notice = match (open.grant.expires, ctx.config.token_expiring_notice) {
        (Some(exp), Some(before)) => Some(expiring::notice(exp, before)),
        _ => None,
    };
    Some(Opened {
        sub,
        preamble,
        ends_at: open.grant.ends_at,
        notice,
        slot: open.grant.slot.map(Box::new),
        mercure: mercure.is_some(),
        registration: open.tracked.map(Pending::register),
    })
}

/// How long a resume waits for this node's reader to reach an id it has not read yet
/// but Redis holds (the client came from a node that is ahead). **Unit:** ms. **Why:**
/// nodes read the same stream within milliseconds of each other; past this the client
/// gets a `future` reset and the events after its id as this node reads them.
pub const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_millis(1000);

/// What the shared log says of a client's id on a broker-fed node.
struct FromTheLog {
    /// The log's events from the client's id on, when it is older than the history.
    older: Vec<(EventId, crate::envelope::Envelope, crate::sse::Event)>,
    /// Redis holds the id, but this node has not read that far: the client has what
    /// comes before it (from the node it left), so those are skipped for it.
    unread: bool,
}

/// With a shared log, for a client's id (`None`: not an id, nothing to ask):
///
/// - an id this node has not read is looked up in Redis (its newest id, within
///   `ASK_TIMEOUT`): one Redis holds is waited for (up to [`CATCH_UP_WAIT`]) and, if
///   this node is still behind, its `future` reset skips what the client had; one
///   beyond Redis's newest cannot be placed, and one Redis cannot be asked about is
///   treated the same (the fail-safe: never withhold events silently): a `future`
///   reset, then live events from now;
/// - an id older than the history gets the log's events from it on.
async fn from_the_log(ctx: &Ctx, sent: &str) -> Option<FromTheLog> {
    let id: EventId = sent.parse().ok()?;
    let behind = || ctx.hub.last_id().is_none_or(|last| last < id);
    let mut unread = false;
    if behind() {
        match ctx.port.newest().await {
            Ok(Some(newest)) if newest >= id => {
                let until = std::time::Instant::now() + CATCH_UP_WAIT;
                while behind() && std::time::Instant::now() < until {
                    async_io::Timer::after(std::time::Duration::from_millis(10)).await;
                }
                unread = behind();
            }
            Ok(_) => {}
            Err(why) => ctx.log.line(format_args!(
                "resume from {sent}: Redis cannot say whether it holds the id ({why}); \
                 the client gets a future reset and live events"
            )),
        }
    }
    let older = if ctx.hub.needs_older(sent) {
        ctx.port.older(id).await
    } else {
        Vec::new()
    };
    Some(FromTheLog { older, unread })
}

/// The stream phase: the writer, then the subscriber's end, counted with its reason.
///
/// A stream whose token expires races its writer against a timer (only such streams
/// pay for one): when the timer wins, the writer is dropped, the socket given back by
/// any direct write, and the stream closed ([`Reason::TokenExpired`]). Any other
/// stream rests without a task while idle, when `home` allows it (see `rest.rs`), and
/// goes on in [`resume`].
pub(super) async fn write_stream<S: Conn, H: Keep>(stream: S, opened: Opened, home: Home<H>) {
    let may_rest = home.may_rest();
    let (stop, live) = first_writer(stream, opened, home.ctx.clone(), may_rest, false).await;
    go_on(live, home, stop).await;
}

/// Runs a stream's first writer (preamble, backlog, then frames), racing a timer when
/// its token expires; it may rest when `may_rest` and no token notice is due, and is a
/// [first run](Writer::first_run) when `first_run`. Returns how it stopped, with the
/// stream as it left it.
async fn first_writer<S: Conn>(
    stream: S,
    opened: Opened,
    ctx: std::sync::Arc<super::Ctx>,
    may_rest: bool,
    first_run: bool,
) -> (Stop, LiveStream<S>) {
    let Opened {
        mut sub,
        mut preamble,
        ends_at,
        mut notice,
        slot,
        mercure,
        registration,
    } = opened;
    sub.set_mercure(mercure);
    // Boxed together before the writer runs: this future is the request task's too.
    let held = rest::Held::boxed(slot.map(|s| *s), registration);
    let mut stream = stream;
    let mut received = 0;
    let stop = loop {
        let mut writer = Writer::new(
            &mut stream,
            &mut sub,
            preamble,
            &ctx.stats,
            &ctx.rest_clock,
            &ctx.config.limits,
        );
        writer.spent(received);
        match notice.take() {
            Some((at, frame)) => writer.notice(at, frame),
            None if may_rest && ends_at.is_none() => writer.may_rest(),
            None => {}
        }
        if first_run {
            writer.first_run();
        }
        let stop = match ends_at {
            None => (&mut writer).await,
            Some(at) => {
                let expiry = async move {
                    Timer::at(at).await;
                    Stop::End(Reason::TokenExpired)
                };
                Box::pin((&mut writer).or(expiry)).await
            }
        };
        received = writer.received();
        if !writer.stopped_for_handover() {
            break stop;
        }
        // A handover: the stream goes to the successor, or (a rollback) on from here
        // with what its writer still owed.
        let (owed, due) = writer.into_owed();
        let taken = handover::take_stream(
            &ctx,
            &stream,
            &sub,
            held.as_deref(),
            mercure,
            ends_at,
            owed,
            due,
        );
        let handover::Taken::KeepServing(owed, due) = Box::pin(taken).await;
        (preamble, notice) = (owed, due);
    };
    if stop == Stop::End(Reason::TokenExpired) {
        // A direct write may still hold the socket: let it finish first.
        futures_lite::future::poll_fn(|cx| sub.poll_own(cx)).await;
    }
    let live = LiveStream {
        stream,
        sub,
        received,
        held,
        watched: None,
    };
    (stop, live)
}

/// Starts a stream in the task that answered its request: its first writer runs here
/// ([`Writer::first_run`]), and the stream then rests, or goes on in a writer task of
/// `streams`. A stream whose token expires, or that may not rest, gets its writer task
/// at once ([`write_stream`]).
pub(super) async fn start<S: Conn, H: Keep>(
    stream: S,
    opened: Opened,
    home: Home<H>,
    streams: &std::sync::Arc<async_executor::Executor<'static>>,
) {
    if opened.ends_at.is_some() || opened.notice.is_some() || !home.may_rest() {
        streams.spawn(write_stream(stream, opened, home)).detach();
        return;
    }
    let (stop, live) = first_writer(stream, opened, home.ctx.clone(), true, true).await;
    if let Some((live, home)) = after(live, home, stop).await {
        streams.spawn(run_writers(live, home)).detach();
    }
}

/// A stream that rested goes on (something woke it): a new writer, in a new task, where
/// the last one stopped (see `rest.rs`).
pub(super) async fn resume<S: Conn, H: Keep>(live: LiveStream<S>, home: Home<H>) {
    run_writers(live, home).await;
}

/// After the first writer stopped: ends the stream, or rests it, or runs writers.
async fn go_on<S: Conn, H: Keep>(live: LiveStream<S>, home: Home<H>, stop: Stop) {
    if let Some((live, home)) = after(live, home, stop).await {
        run_writers(live, home).await;
    }
}

/// After a writer stopped: ends the stream ([`Stop::End`]) or rests it ([`Stop::Idle`]),
/// or gives it back when a writer must go on (it could not rest, or [`Stop::Busy`]).
async fn after<S: Conn, H: Keep>(
    live: LiveStream<S>,
    home: Home<H>,
    stop: Stop,
) -> Option<(LiveStream<S>, Home<H>)> {
    match stop {
        Stop::End(reason) => {
            finish(live, reason).await;
            drop(home);
            None
        }
        Stop::Idle => rest::rest(live, home).err(),
        Stop::Busy => Some((live, home)),
    }
}

/// Runs a writer, rests the stream when it is idle, and runs another when it cannot
/// rest, until a writer ends the stream.
async fn run_writers<S: Conn, H: Keep>(mut live: LiveStream<S>, mut home: Home<H>) {
    // What a handover that rolled back left owed (written first), and the notice due.
    let mut owed: Option<(Frame, Option<(Instant, Frame)>)> = None;
    loop {
        let ctx = home.ctx.clone();
        // Out of the watch first: a handed socket must leave this process's epoll sets
        // while its descriptor is still open here (see `take_handed`).
        live.unwatch(&ctx);
        let mut writer = Writer::resume(
            &mut live.stream,
            &live.sub,
            &ctx.stats,
            &ctx.rest_clock,
            &ctx.config.limits,
            live.received,
        );
        if let Some((frame, due)) = owed.take() {
            writer.owe(frame);
            if let Some((at, frame)) = due {
                writer.notice(at, frame);
            }
        }
        writer.may_rest();
        let stop = (&mut writer).await;
        live.received = writer.received();
        if writer.stopped_for_handover() {
            // A resting stream the pause woke (or a writer it stopped): handed in here,
            // like a stream whose first writer stopped.
            let due = writer.into_owed();
            owed = Some(take_handed(&ctx, &live, due).await);
            continue;
        }
        match after(live, home, stop).await {
            // Could not rest (or busy): the next writer runs in a later poll, so the
            // loop is bounded per poll.
            Some(back) => {
                (live, home) = back;
                futures_lite::future::yield_now().await;
            }
            None => return,
        }
    }
}

/// Hands a stream whose writer stopped for a handover in (`owed`: what the writer
/// still owed, see [`Writer::into_owed`]); returns only on a rollback, with what it
/// still owes. Its read side is out of the watch by then, and its reactor registration
/// (if any) goes with its descriptor when this process ends: neither touches the peer.
async fn take_handed<S: Conn>(
    ctx: &Ctx,
    live: &LiveStream<S>,
    owed: (Vec<u8>, Option<(Instant, Frame)>),
) -> (Frame, Option<(Instant, Frame)>) {
    let (owed, due) = owed;
    // A resting stream never has a token that ends (see `start`).
    let taken = handover::take_stream(
        ctx,
        &live.stream,
        &live.sub,
        live.held.as_deref(),
        live.sub.is_mercure(),
        None,
        owed,
        due,
    );
    let handover::Taken::KeepServing(owed, due) = Box::pin(taken).await;
    (owed, due)
}

/// Ends a stream: a clean close after a shutdown or an expired token, then the
/// subscriber leaves the hub, counted under `reason`, and gives back its token's slot.
async fn finish<S: Conn>(live: LiveStream<S>, reason: Reason) {
    let LiveStream {
        mut stream,
        sub,
        held,
        ..
    } = live;
    if matches!(reason, Reason::Shutdown | Reason::TokenExpired) {
        // Stop writing so the client sees a clean end after the last frame.
        let _ = stream.close().await;
    }
    sub.end(reason);
    // The token's slot back, then the listing ended (and announced).
    drop(held);
}

/// `ms` ±20%, so that a restart does not bring every client back in the same instant.
fn jittered(ms: u32) -> u32 {
    let spread = ms / 5;
    if spread == 0 {
        return ms;
    }
    ms - spread + fastrand::u32(0..=2 * spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..1000 {
            let j = jittered(3000);
            assert!((2400..=3600).contains(&j), "{j}");
        }
        assert_eq!(jittered(4), 4);
    }
}
