//! The fan-out: one frame to every matching subscriber, queued or lent for a direct
//! write, and the rules that choose between the two.

use async_channel::TrySendError;

use super::direct::DirectTarget;
use super::{Client, ClientId, State};
use crate::envelope::Envelope;
use crate::event_id::EventId;
use crate::sse::Frame;
use crate::stats::Reason;

/// What one fan-out did. `Full` and `Closed` are outcomes, not errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Subscribers whose queue took the frame.
    pub sent: usize,
    /// Subscribers removed because their queue was full.
    pub dropped_full: usize,
    /// Subscribers removed because their receiver was already gone.
    pub dropped_closed: usize,
    /// Of those that took the frame, how many now hold half a queue or more while their
    /// socket still takes data: the server's writers, not the clients, are behind. See
    /// [`Delivery::congested`].
    pub behind: usize,
}

impl Delivery {
    /// Whether the publisher is outpacing the server's own writers: some subscriber that
    /// is still reading holds half a queue or more.
    pub fn congested(&self) -> bool {
        self.behind > 0
    }
}

/// The frames of one fan-out: the plain one, and the event's tagged twin when some
/// subscriber is tagged (see [`crate::sse::tagged`]). A tagged subscriber gets the
/// tagged one when there is one (an event), else the plain one (a comment).
#[derive(Clone, Copy)]
pub(super) struct Outgoing<'a> {
    pub(super) plain: &'a Frame,
    pub(super) tagged: Option<&'a Frame>,
}

impl<'a> Outgoing<'a> {
    /// A frame without a tagged twin (a heartbeat, a reset to everyone).
    pub(super) fn plain(frame: &'a Frame) -> Outgoing<'a> {
        Outgoing {
            plain: frame,
            tagged: None,
        }
    }
}

/// The sockets one fan-out lent for direct writes: for the plain frame, and for the
/// tagged one.
#[derive(Default)]
pub(super) struct Lent {
    pub(super) plain: Vec<DirectTarget>,
    pub(super) tagged: Vec<DirectTarget>,
}

/// Direct writes in a row, each finding the writer waiting with its queue empty, after
/// which a subscriber's queue is given back (it gets a new one when a frame must wait
/// again). **Unit:** frames. **Why:** a fan-out that overlaps the next publish (10,000
/// subscribers on a busy machine) makes a queue for every subscriber still being
/// written, about 2 KiB each: kept, one slow moment left 10,000 idle subscribers at 2.6
/// KiB more each for good. 64 frames of keeping up is long enough that a writer which
/// falls behind now and then (a fast publisher) is not made to allocate a queue per
/// burst.
pub const QUEUE_RELEASE_AFTER: u8 = 64;

impl State {
    /// `try_send`s the frame (`out`; its tagged twin to tagged subscribers) to each
    /// subscriber that wants one of the `envelope`'s topics (all of them without one;
    /// for a private event, only those whose rights cover one of its topics, so each
    /// gets it once); collects the ones to evict. With `direct`, the sockets of waiting
    /// writers are taken for a direct write instead (see the module docs), in `Lent`'s
    /// list of the frame they get; either way it notes whether every writer was
    /// waiting. A broker's event (`event_id`) skips the subscribers that already have it
    /// ([`Rare::skip_through`](super::Rare)).
    pub(super) fn fan_out(
        &mut self,
        out: Outgoing<'_>,
        envelope: Option<&Envelope>,
        event_id: Option<EventId>,
        evicted: &mut Vec<(ClientId, Client, Reason)>,
        mut direct: Option<&mut Lent>,
    ) -> Delivery {
        let mut delivery = Delivery::default();
        let mut gone: Vec<(ClientId, Reason)> = Vec::new();
        let mut busy = 0usize;
        let queue_len = self.queue_len;
        for (id, client) in &mut self.clients {
            // A public frame costs one bool test here; rights are matched only for
            // private ones.
            if let Some(env) = envelope
                && (!env.wanted_by(&client.topics) || env.is_private() && !client.may_read(env))
            {
                continue;
            }
            if let (Some(rare), Some(event)) = (client.rare.as_mut(), event_id)
                && let Some(floor) = rare.skip_through
            {
                if event <= floor {
                    continue;
                }
                rare.skip_through = None;
            }
            // One bool test for an untagged subscriber.
            let (frame, tagged) = match out.tagged {
                Some(tagged) if client.tagged => (tagged, true),
                _ => (out.plain, false),
            };
            if let (Some(lent), Some(sink)) = (direct.as_deref_mut(), &client.sink)
                && client.state.lend()
            {
                if client.tx.is_some() {
                    client.idle_lends += 1;
                    if client.idle_lends >= QUEUE_RELEASE_AFTER {
                        // Lent: the writer is parked and its queue empty (see
                        // `WriterState::release_queue`).
                        client.state.release_queue();
                        client.tx = None;
                        client.idle_lends = 0;
                    }
                }
                let targets = if tagged {
                    &mut lent.tagged
                } else {
                    &mut lent.plain
                };
                targets.push((client.state.clone(), sink.clone()));
                delivery.sent += 1;
                continue;
            }
            // A writer that is not waiting is busy, unless it waits for a client that
            // stopped reading (that one is the client's problem, not the server's), or a
            // direct write still holds its socket: the last fan-out's write overlaps
            // this one (10,000 subscribers on a busy machine), which says nothing of
            // the writers. Counted busy, one such overlap switched the hub to queueing
            // every frame, and with 10,000 subscribers at 10 events/s the one writer
            // thread then took longer than the 100 ms between events to wake them all,
            // so it never came back: in one W3 run in four, every subscriber got a
            // queue (26 MB) and the worst latency rose from about 86 to 135 ms.
            if !client.state.is_waiting() && !client.state.is_lent() && !client.state.socket_full()
            {
                busy += 1;
            }
            // The first frame this subscriber must queue brings its queue (allocated here,
            // under the lock: about 2 KiB at 100 frames; made again if it was given back).
            client.idle_lends = 0;
            let tx = client.tx.get_or_insert_with(|| {
                let (tx, rx) = async_channel::bounded(queue_len);
                client.state.set_queue(rx);
                tx
            });
            match tx.try_send(frame.clone()) {
                Ok(()) => {
                    client.state.notify();
                    delivery.sent += 1;
                    if tx.len() * 2 >= queue_len && !client.state.stopped_reading() {
                        delivery.behind += 1;
                    }
                }
                Err(TrySendError::Full(_)) => {
                    delivery.dropped_full += 1;
                    gone.push((*id, Reason::QueueFull));
                }
                Err(TrySendError::Closed(_)) => {
                    delivery.dropped_closed += 1;
                    gone.push((*id, Reason::HungUp));
                }
            }
        }
        self.writers_idle = busy == 0;
        for (id, reason) in gone {
            if let Some(client) = self.take(id) {
                evicted.push((id, client, reason));
            }
        }
        delivery
    }

    /// Whether this fan-out lends the sockets of waiting writers for a direct write:
    /// with a runner, when the last fan-out found no writer busy. Otherwise every frame
    /// is queued, so that a fast publisher's frames are batched. Either way only a
    /// waiting writer (empty queue) is ever lent, so the choice is one of cost, never
    /// of order.
    pub(super) fn direct_now(&self, runner: bool) -> bool {
        runner && self.writers_idle
    }
}
