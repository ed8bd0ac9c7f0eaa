//! A subscriber's end of the hub: its queue, its replay backlog, its writer state, and
//! its place in the registry.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_channel::Receiver;

use super::writer_state::WriterState;
use super::{ClientId, Hub};
use crate::event_id::Resume;
use crate::sse::Frame;
use crate::stats::Reason;

/// A subscriber's end: its queue, its replay backlog, and its place in the registry.
///
/// Dropping it removes the subscriber from the hub (counted as [`Reason::HungUp`] unless
/// [`Subscription::end`] named another reason first).
pub struct Subscription {
    pub(super) id: ClientId,
    pub(super) state: Arc<WriterState>,
    /// The replay backlog until the writer takes it. A box of a `Vec` on purpose: a
    /// stream holds its subscription for life, and an empty backlog is then a null
    /// pointer (8 bytes) rather than an empty `Vec` (24).
    #[allow(clippy::box_collection)]
    pub(super) backlog: Option<Box<Vec<Frame>>>,
    pub(super) resume: Resume,
    pub(super) hub: Hub,
    pub(super) ended: bool,
    /// The server opened it on the Mercure path: a label a handover carries (in the
    /// struct's padding, so a resting stream pays nothing for it).
    pub(super) mercure: bool,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("queued", &self.state.queued())
            .field("backlog", &self.backlog.as_ref().map_or(0, |b| b.len()))
            .field("resume", &self.resume)
            .finish()
    }
}

impl Subscription {
    /// This subscriber's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The live queue. It yields frames until the hub evicts the subscriber or closes,
    /// then reports closed once what was queued has been taken. To wait for a frame,
    /// [`Subscription::poll_recv`] is cheaper than the channel's own `recv`.
    ///
    /// Subscriptions made with [`Hub::subscribe`] have theirs at once. The server's
    /// subscribers (with a direct sink) get one only when the hub has to queue a frame
    /// for them, and give it back once their writer has kept up for a while: `None`
    /// while they have none. The handle is a clone of the receiving end.
    pub fn receiver(&self) -> Option<Receiver<Frame>> {
        self.state.queue()
    }

    /// Takes the next queued frame, or registers `cx` to be woken when the hub queues
    /// one (or closes the queue). `Ready(None)` once the queue is closed and empty.
    ///
    /// Waiting this way costs no allocation and no lock on the channel (see the writer
    /// state word). Only one task may wait on a subscription at a time.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        self.poll_next(cx).map(|next| next.map(|(frame, _)| frame))
    }

    /// Like [`Subscription::poll_recv`], for a writer that registered a direct sink:
    /// yields each frame with the number of its bytes already written (non-zero only
    /// for the rest of a direct write the socket did not take whole), and waits while a
    /// direct write holds the socket.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<(Frame, usize)>> {
        self.state.poll_next(cx, || self.state.take_queued())
    }

    /// The writer gives up its task while parked: `waker` (the resting stream's) gets
    /// every wake-up the writer would have had. False when the writer must run instead
    /// (row 14 of the writer state's table), or when a handover paused the hub: the
    /// pause stores its flag before it wakes the stored waker, and this stores the waker
    /// before it reads the flag, so a pause either wakes `waker` or is seen here.
    pub(crate) fn rest(&self, waker: &std::task::Waker) -> bool {
        self.state.rest(waker) && !self.handover_requested()
    }

    /// Makes sure no direct write holds the socket before the caller writes to it
    /// itself (e.g. a probe). `Pending` while one does; the caller is woken when it
    /// gives the socket back.
    pub(crate) fn poll_own(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.state.poll_own(cx)
    }

    /// Lets the hub write frames straight to this subscriber's socket while its writer
    /// waits (see the hub's direct writes). The writer must then take frames with
    /// [`Subscription::poll_next`] and call [`Subscription::poll_own`] before any write
    /// of its own.
    #[cfg(test)]
    pub(crate) fn set_direct_sink(&self, sink: Arc<dyn super::direct::DirectSink>) {
        if let Some(client) = self.hub.lock().clients.get_mut(&self.id) {
            client.sink = Some(sink);
        }
    }

    /// Tells the hub whether this subscriber's socket is full (its writer waits for the
    /// client to read). Once it has stayed full for a second (the writer state's
    /// `STOPPED_READING_AFTER`), the subscriber no longer counts as one the server is
    /// behind for (see [`Delivery::behind`](super::Delivery::behind)): pacing does not
    /// wait for a client that stopped reading; its queue fills and it is evicted.
    pub fn set_socket_full(&self, full: bool) {
        self.state.set_socket_full(full);
    }

    /// Takes the next queued frame if there is one, without waiting. (Nothing while a
    /// direct write holds the socket: frames queued meanwhile come after its frame.)
    pub fn try_recv(&self) -> Option<Frame> {
        if self.state.is_lent() {
            return None;
        }
        self.state.take_queued().ok()
    }

    /// How the stream started: it continues after the client's id, starts with a reset
    /// event, or (no id) starts live. Decided together with the backlog.
    pub fn resume(&self) -> Resume {
        self.resume
    }

    /// Takes the replay backlog (the events retained after the requested id, or a reset
    /// event and the retained events certainly after it). Write it before anything from
    /// the live queue.
    pub fn take_backlog(&mut self) -> Vec<Frame> {
        self.backlog.take().map_or_else(Vec::new, |b| *b)
    }

    /// Whether the hub has been closed (the queue's end then means shutdown, not
    /// eviction).
    pub fn hub_closed(&self) -> bool {
        self.hub.is_closed()
    }

    /// Removes the subscriber for `reason` (if the hub has not already) and counts it.
    pub fn end(mut self, reason: Reason) {
        self.ended = true;
        self.hub.remove(self.id, reason);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.ended {
            self.hub.remove(self.id, Reason::HungUp);
        }
    }
}
