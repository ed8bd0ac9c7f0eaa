//! A stream at rest: an idle subscriber holds no task.
//!
//! A subscriber's writer that has nothing to write and nothing to wait for but its queue
//! (or a direct write's end) and the client's read side returns
//! [`Stop::Idle`](super::writer::Stop) instead of waiting. Its task then ends, and the
//! stream, as a [`LiveStream`], is kept by one [`Rest`]: the waker that the writer
//! state word (row 14 of its table) and the socket's read interest hold instead of the
//! task's. Whatever would have woken the writer (a frame queued, a direct write that
//! could not finish, the queue closed by an eviction or the shutdown, the client sending
//! or hanging up) spawns a new writer for the stream on the stream executor
//! ([`resume`](super::stream::resume)), which carries on where the last one stopped.
//!
//! Direct writes (the hub's "Direct writes") reach a resting stream as they reach a
//! waiting one: the state word is `WAITING`, the socket is lent and given back, and no
//! task runs. So an idle subscriber costs its socket, its registry entry, its state word
//! and this: the task it no longer has (about 520 bytes with its writer) is gone.
//!
//! A handover (`handover/`) wakes every resting stream through the same waker: the
//! writer started for it leaves the watch, stops for the handover and hands the stream
//! in (see `stream.rs`'s `take_handed`); `rest` refuses while the hub is paused.
//!
//! # Handing over the rest
//!
//! [`rest`] registers the new waker first and only then puts the stream where the waker
//! finds it. A wake-up in between finds nothing and leaves a mark; `rest` sees the mark
//! under the same lock and the writer goes on in its own task. No lock of this file is
//! held while the state word or the reactor is called, and the waker calls neither while
//! holding it (both call the waker under locks of their own).

use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Wake, Waker};

use super::Ctx;
use super::quota;
use super::socket::Conn;
use super::watch;
use crate::hub::Subscription;

/// A live stream as its writer leaves it between two runs: what the handover of a
/// running server also has to carry (the socket, the subscription with its topics,
/// rights and place in the registry, the client's spent read allowance, its place under
/// the token's stream cap).
pub(crate) struct LiveStream<S> {
    /// The client's socket.
    pub(super) stream: S,
    /// Its place in the hub.
    pub(super) sub: Subscription,
    /// Bytes the client has sent since the stream started (see
    /// [`STREAM_READ_ALLOWANCE`](super::writer::STREAM_READ_ALLOWANCE)).
    pub(super) received: u32,
    /// What it gives back when it ends (its token's slot, its listing among Mercure's
    /// active subscriptions); boxed, so a stream with neither pays a pointer.
    pub(super) held: Option<Box<Held>>,
    /// Its place in the watch of resting streams' read sides, while it rests there.
    pub(super) watched: Option<watch::Key>,
}

/// What a live stream gives back when it ends, by being dropped (see
/// [`LiveStream::held`]); in this order.
pub(super) struct Held {
    /// Its place under `--max-streams-per-token`.
    slot: Option<quota::Slot>,
    /// Its listing among Mercure's active subscriptions (`--mercure-subscriptions`),
    /// ended (and announced) when the stream ends.
    registration: Option<super::subscriptions::Registration>,
}

impl Held {
    /// What the stream holds, boxed (`None` when it holds nothing).
    pub(super) fn boxed(
        slot: Option<quota::Slot>,
        registration: Option<super::subscriptions::Registration>,
    ) -> Option<Box<Held>> {
        (slot.is_some() || registration.is_some()).then(|| Box::new(Held { slot, registration }))
    }

    /// The key its token's stream count is under, when there is a cap.
    pub(super) fn quota_key(&self) -> Option<&str> {
        self.slot.as_ref().map(quota::Slot::key)
    }

    /// Its Mercure subscriber, when listed.
    pub(super) fn subscriber(&self) -> Option<&crate::mercure::subscriptions::Subscriber> {
        self.registration.as_ref().map(|r| r.subscriber())
    }
}

impl<S: Conn> LiveStream<S> {
    /// Takes the stream out of the watch (before a writer runs for it).
    pub(super) fn unwatch(&mut self, ctx: &Ctx) {
        if let (Some(key), Some(w), Some(fd)) = (self.watched.take(), &ctx.watch, self.stream.fd())
        {
            w.unwatch(fd, key);
        }
    }
}

/// What a stream's [`Home`] keeps until the stream ends, and gives back through the
/// server's context then (a connection's count and its place in the shutdown's wait,
/// see `accept.rs`'s `Counted`; nothing, `()`, for a connection served alone).
pub(super) trait Keep: Send + 'static {
    /// Gives it back: the stream has ended (its home is dropped).
    fn give_back(&mut self, ctx: &Ctx);
}

impl Keep for () {
    fn give_back(&mut self, _: &Ctx) {}
}

/// Where a resting stream's writer starts again (the stream executor, in `ctx`), and
/// what the stream keeps until it ends (`held`, given back through `ctx` when the home
/// is dropped: one pointer in all for a counted stream, whose `held` has no size).
pub(super) struct Home<H: Keep> {
    pub(super) ctx: Arc<Ctx>,
    held: H,
}

impl<H: Keep> Home<H> {
    /// A home in `ctx`: its streams rest when `--no-rest` is not given and the server
    /// runs a stream executor.
    pub(super) fn new(ctx: Arc<Ctx>, held: H) -> Home<H> {
        Home { ctx, held }
    }

    /// Whether its streams may rest.
    pub(super) fn may_rest(&self) -> bool {
        self.ctx.config.rest_idle && self.ctx.streams.get().is_some()
    }
}

impl<H: Keep> Drop for Home<H> {
    fn drop(&mut self) {
        self.held.give_back(&self.ctx);
    }
}

/// The waker of one resting stream (see the module docs).
struct Rest<S, H: Keep> {
    resting: Mutex<Resting<S, H>>,
}

/// What a [`Rest`] holds.
enum Resting<S, H: Keep> {
    /// Not handed over yet.
    Empty,
    /// Woken before it was handed over: the writer goes on in its own task.
    Woken,
    /// At rest: the next wake-up starts a writer for it.
    Stream(LiveStream<S>, Home<H>),
    /// Started again (or kept by the writer): later wake-ups are stale.
    Gone,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Lets `live` rest without a task. `Err` gives it back when its writer must go on
/// now: a frame came, the client sent something or hung up, or it was woken meanwhile.
#[allow(clippy::result_large_err)]
pub(super) fn rest<S: Conn, H: Keep>(
    live: LiveStream<S>,
    home: Home<H>,
) -> Result<(), (LiveStream<S>, Home<H>)> {
    let rest = Arc::new(Rest {
        resting: Mutex::new(Resting::Empty),
    });
    let waker = Waker::from(rest.clone());
    let mut cx = Context::from_waker(&waker);
    let mut live = live;
    // Row 14 first: a frame queued from here on wakes `rest`.
    if !live.sub.rest(&waker) {
        return Err((live, home));
    }
    // The read side: in the watch, without the reactor's registration (about 240 bytes
    // less); or, without a watch, on that registration.
    let watched = match (&home.ctx.watch, live.stream.fd()) {
        (Some(w), Some(fd)) => {
            live.stream.deregister();
            w.watch(fd, waker.clone()).ok()
        }
        _ => None,
    };
    match watched {
        Some(key) => live.watched = Some(key),
        None if live.stream.poll_readable(&mut cx).is_ready() => return Err((live, home)),
        None => {}
    }
    let mut resting = lock(&rest.resting);
    if matches!(*resting, Resting::Woken) {
        *resting = Resting::Gone;
        return Err((live, home));
    }
    *resting = Resting::Stream(live, home);
    Ok(())
}

impl<S: Conn, H: Keep> Wake for Rest<S, H> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let taken = {
            let mut resting = lock(&self.resting);
            match std::mem::replace(&mut *resting, Resting::Gone) {
                Resting::Empty => {
                    *resting = Resting::Woken;
                    return;
                }
                Resting::Stream(live, home) => match home.ctx.streams.get().and_then(Weak::upgrade)
                {
                    Some(ex) => (live, home, ex),
                    None => {
                        // The stream executor is gone (the process is ending): leave the
                        // stream where it is; dropping it here, under the caller's lock,
                        // could call back into it.
                        *resting = Resting::Stream(live, home);
                        return;
                    }
                },
                other => {
                    *resting = other;
                    return;
                }
            }
        };
        let (live, home, ex) = taken;
        ex.spawn(super::stream::resume(live, home)).detach();
    }
}

#[cfg(test)]
mod tests {
    use super::super::socket::TcpConn;
    use super::*;

    #[test]
    fn a_resting_stream_stays_small() {
        // docs/capacity.md's table counts these bytes per idle subscriber: what a
        // handover needs of a resting stream rides in the subscription's padding and in
        // the box a stream with a token slot already had.
        assert!(std::mem::size_of::<LiveStream<TcpConn>>() <= 72);
        // A counted stream's home is one pointer: the `Arc` of its rest is 104 bytes,
        // a 112-byte allocation (128 while the home also held two guards).
        assert!(std::mem::size_of::<Rest<TcpConn, super::super::accept::Counted>>() <= 88);
        // The socket's `Arc` (16 bytes of counts and this): a 48-byte allocation.
        assert!(std::mem::size_of::<super::super::socket::Sock>() <= 24);
    }
}
