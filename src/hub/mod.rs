//! The hub: the seed's "stream manager".
//!
//! It keeps the registry of subscribers, each with a **bounded** [`async_channel`] of
//! [`Frame`]s, assigns event ids, keeps the replay history, and fans every frame out with
//! `try_send`, which never waits.
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` (this) | the registry: subscribe, broadcast, eviction, close |
//! | `commit.rs` | the one entry for an ordered event: history, fan-out, then counting and evictions; the in-memory publish |
//! | `fan_out.rs` | one frame to every subscriber that may have it: queued or lent for a direct write |
//! | `history.rs` | the bounded replay history: ids, publisher ids and keys, the resume decision |
//! | `external.rs` | a hub whose ids a broker assigns: losses, bridging old resumes |
//! | `pace.rs` | waiting while the writers are behind |
//! | `drain.rs` | closing with the streams' ends spread over time (the jittered drain) |
//! | `subscription.rs` | the reader's end: queue, backlog, end reason |
//! | `writer_state.rs` | the writer's state word (waiting, running, lent), with its transition table |
//! | `direct.rs` | direct writes: a frame written to waiting writers' sockets without waking them |
//! | `handover.rs` | a handover: the pause, the history given away, a hub rebuilt from it |
//!
//! # Slow subscribers
//!
//! A subscriber whose queue is full when the hub hands it a frame has fallen
//! `capacity` frames behind. The hub removes it from the registry **at once**, closes its
//! channel and calls the close hook it registered (the server shuts the socket down, so a
//! writer blocked on a stuck socket wakes up at once). Nobody else waits for it: a
//! broadcast costs one `try_send` per subscriber, whatever the subscribers do.
//!
//! ```
//! use ssehub::Topics;
//! use ssehub::hub::{Hub, HubLimits};
//! use ssehub::sse::Frame;
//!
//! let limits = HubLimits { queue_len: 2, ..HubLimits::default() };
//! let hub = Hub::new(limits, Default::default());
//! let sub = hub.subscribe(Topics::All, None, None).unwrap();
//! let ping = Frame::comment("ping").unwrap();
//! assert_eq!(hub.broadcast(&ping).sent, 1);
//! assert_eq!(hub.broadcast(&ping).sent, 1);
//! // The third frame finds the queue full: the subscriber is gone.
//! assert_eq!(hub.broadcast(&ping).dropped_full, 1);
//! assert_eq!(hub.len(), 0);
//! // It can still read what was queued, then sees the end.
//! assert!(sub.receiver().unwrap().try_recv().is_ok());
//! # drop(sub);
//! ```
//!
//! # Ids and replay
//!
//! Ids are `<epoch>-<offset>` (see [`EventId`]): the epoch is the history's start time in
//! Unix ms, the offset dense from 1. Published events are kept in a bounded history
//! (count and bytes). A subscriber that passes the last id it saw gets, as a backlog,
//! either every retained later event matching its topics ([`Resume::Continue`]) or,
//! when that is not possible, a `reset` event first ([`Resume::Reset`]: the id is of
//! another epoch, was evicted, is not an id, or is ahead of the history) and then the
//! retained events certainly after it. The backlog and the outcome are taken under the
//! same lock that publishing holds: no event can fall between the backlog and the live
//! queue, and none can be in both.
//!
//! ```
//! use ssehub::hub::Hub;
//! use ssehub::event_id::{ResetReason, Resume};
//! use ssehub::{Event, Topic, Topics};
//!
//! let hub = Hub::new(Default::default(), Default::default());
//! let first = hub.publish(&Topic::default_topic(), &Event::new("a").unwrap()).id;
//! hub.publish(&Topic::default_topic(), &Event::new("b").unwrap());
//! let id = first.to_string();
//! let mut sub = hub.subscribe(Topics::All, Some(&id), None).unwrap();
//! assert_eq!(sub.resume(), Resume::Continue);
//! assert_eq!(sub.take_backlog().len(), 1);
//! // An integer id from an older server cannot be placed: a reset, nothing replayed.
//! let mut sub = hub.subscribe(Topics::All, Some("3"), None).unwrap();
//! assert_eq!(sub.resume(), Resume::Reset(ResetReason::Unknown));
//! assert_eq!(sub.take_backlog().len(), 1);
//! ```
//!
//! # Private events
//!
//! An event published [`Visibility::Private`] reaches only subscribers whose rights (the
//! `subscribe` selectors of the token they connected with, see [`Hub::subscribe_as`])
//! match its topic, live and in replay alike. For a public event the fan-out pays one
//! `bool` test per subscriber; the rights are matched only for private events.
//!
//! ```
//! use std::sync::Arc;
//! use ssehub::auth::Selectors;
//! use ssehub::hub::{Hub, Visibility};
//! use ssehub::sse::Event;
//! use ssehub::{Topic, Topics};
//!
//! let hub = Hub::new(Default::default(), Default::default());
//! let reader = Arc::new(Selectors::new(["orders/*"]));
//! let with = hub.subscribe_as(Topics::All, Some(reader), None, None).unwrap();
//! let without = hub.subscribe(Topics::All, None, None).unwrap();
//! let topic = Topic::new("orders/1").unwrap();
//! let p = hub.publish_as(&topic, &Event::new("secret").unwrap(), Visibility::Private);
//! assert_eq!(p.delivery.sent, 1);
//! assert!(with.try_recv().is_some());
//! assert!(without.try_recv().is_none());
//! ```
//! # Tagged subscribers
//!
//! A subscriber that asked for tags (`GET /stream?tagged=1`) gets each event's tagged
//! twin instead of its frame: the same bytes after a `topic:` line per topic and
//! `private: 1` for a private event ([`crate::sse::tagged`]). The twin is made once per
//! event, and only while some subscriber is tagged (the hub counts them); an untagged
//! subscriber costs the fan-out one more `bool` test. Direct writes lend tagged sockets
//! to a job of the twin's own. A tagged subscriber's replay is tagged too.
//!
//! # Direct writes
//!
//! When no writer is busy (each waits with an empty queue, or a direct write still
//! holds its socket), a publish lends the waiting writers' sockets to one direct write
//! of the frame instead of waking each writer's task (see `direct.rs`, `fan_out.rs` and
//! the state table in `writer_state.rs`). No lock is held while it runs.
//!
//! # One place to publish
//!
//! Every event enters through one door, `Hub::commit` (crate-private): the publish
//! port (`port/`) chose its position, stored it (in memory, in the history file, or in
//! Redis) and holds its own publish lock across the call, so the fan-out follows
//! position order. [`Hub::publish`] is the in-memory port's way in: it issues the next
//! `<epoch>-<offset>` under the hub lock and commits at once, and is refused on a hub
//! whose events another port orders, so no id is ever issued twice. The hub lock is
//! never held during file or network I/O.

mod commit;
mod direct;
mod drain;
mod external;
mod fan_out;
mod handover;
pub(crate) mod history;
mod pace;
mod subscription;
mod topic_counts;
mod writer_state;

pub(crate) use commit::Local;
pub use drain::{DRAIN_PER_STREAM, DRAIN_TICK};
pub use fan_out::{Delivery, QUEUE_RELEASE_AFTER};
pub(crate) use handover::HistoryState;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use async_channel::Sender;

pub(crate) use direct::{DirectJob, DirectSink, SharedJob};
use direct::{DirectRunner, DirectTarget};
use fan_out::{Lent, Outgoing};
use history::{History, Retained};
pub use subscription::Subscription;
use topic_counts::TopicCounts;
pub use topic_counts::{LISTED_TOPICS, TopicListing};
use writer_state::WriterState;

use crate::auth::Selectors;
use crate::envelope::Envelope;
use crate::event_id::{EventId, ResetReason, Resume, new_epoch};
use crate::log::Log;
use crate::sse::Frame;
use crate::stats::{Reason, Stats};
use crate::topic::Topics;

/// The default capacity of each subscriber's queue, in frames (the seed's 100).
pub const DEFAULT_CLIENT_QUEUE_LEN: usize = 100;
/// The default number of events kept for replay.
pub const DEFAULT_HISTORY_EVENTS: usize = 1000;
/// The default byte cap of the replay history (encoded frames).
pub const DEFAULT_HISTORY_BYTES: usize = 4 * 1024 * 1024;

/// A subscriber's number, unique for the hub's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The state of all queues at one instant (see [`Hub::queue_load`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueLoad {
    /// Subscribers registered.
    pub subscribers: usize,
    /// Of those, how many hold half a queue or more while their socket takes data.
    pub behind: usize,
    /// Frames queued, all subscribers together.
    pub queued: usize,
}

impl QueueLoad {
    /// Whether the server's writers are behind for some subscriber that is reading.
    pub fn congested(&self) -> bool {
        self.behind > 0
    }
}

/// The result of [`Hub::publish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The id the hub assigned. (When `refused`: the event got none, and this is
    /// `<epoch>-0`, which names no event.)
    pub id: EventId,
    /// How the frame fanned out.
    pub delivery: Delivery,
    /// Only on a hub with a history file, only from [`Hub::publish`]: the record could
    /// not be written, so the event was not published (no id, nobody got it); the hub
    /// logged it and counted it in [`Snapshot::history_file_errors`](crate::Snapshot).
    /// The publish port says why instead.
    pub refused: bool,
}

/// Who may receive a published event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Visibility {
    /// Every subscriber whose topic filter matches (the default).
    #[default]
    Public,
    /// Only those of them whose rights cover the topic (see "Private events").
    Private,
}

/// Why [`Hub::subscribe`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The hub is closed (the server is shutting down).
    Closed,
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("server is shutting down")
    }
}

impl std::error::Error for SubscribeError {}

/// Sizes of the hub's bounded structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubLimits {
    /// Capacity of each subscriber's queue, in frames. Must be at least 1.
    pub queue_len: usize,
    /// Events kept for replay (0 turns replay off).
    pub history_events: usize,
    /// Encoded bytes kept for replay.
    pub history_bytes: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            queue_len: DEFAULT_CLIENT_QUEUE_LEN,
            history_events: DEFAULT_HISTORY_EVENTS,
            history_bytes: DEFAULT_HISTORY_BYTES,
        }
    }
}

/// A hook the hub calls, outside its lock, when it evicts a subscriber (e.g. shut the
/// socket down so a writer blocked on it wakes up).
pub type CloseHook = Box<dyn FnOnce() + Send>;

/// The stream manager. Cheap to clone; all clones share one registry.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    /// The hub lock: the registry, the in-memory history, the fan-out. Never held
    /// during file or network I/O.
    state: Mutex<State>,
    /// Whether ids come from outside (a publish port other than memory holds its own
    /// publish lock and hands ordered events to [`Hub::commit`]): then
    /// [`Hub::publish`] refuses, so no id can be issued twice.
    ported: bool,
    /// The history's epoch (fixed).
    epoch: u64,
    limits: HubLimits,
    stats: Arc<Stats>,
    log: Log,
    runner: OnceLock<DirectRunner>,
    /// A handover paused every fan-out (see `handover.rs`); set under the hub lock.
    paused: std::sync::atomic::AtomicBool,
}

struct State {
    /// The subscribers, in the order they came (ids only grow). The fan-out walks them
    /// in that order, so consecutive writes touch sockets, tasks and (on loopback) the
    /// clients' buffers that were allocated together: with 10,000 subscribers at 10
    /// events/s, W3's p50 was 44–48 ms against 49–52 with a `HashMap`'s order (3 A/B
    /// pairs), the server's CPU 3 % lower; W2 (1,000 subscribers, back to back) 0.45
    /// against 0.44 CPU-µs per delivered event.
    /// Boxed: a map node holds eleven entries and, filled in id order, about six, so a
    /// pointer there rather than the whole entry is about 80 bytes less per subscriber.
    clients: BTreeMap<ClientId, Box<Client>>,
    /// Capacity of each queue (copied from the limits for the fan-out loop).
    queue_len: usize,
    next_client: u64,
    history: History,
    closed: bool,
    /// Whether the last fan-out found every writer waiting (see "Direct writes").
    writers_idle: bool,
    /// Subscribers per topic, kept as they come and go.
    topic_counts: TopicCounts,
    /// Subscribers that asked for tagged frames (see [`Client::tagged`]): while none
    /// does, no tagged frame is made.
    tagged: usize,
}

struct Client {
    /// The queue's sending end, once the subscriber has a queue (see
    /// `WriterState::queue`).
    tx: Option<Sender<Frame>>,
    state: Arc<WriterState>,
    topics: Topics,
    sink: Option<Arc<dyn DirectSink>>,
    /// What few subscribers have (a close hook, a broker position to skip through), in
    /// a box only they pay for.
    rare: Option<Box<Rare>>,
    /// Direct writes in a row that found its writer waiting while it had a queue: at
    /// [`QUEUE_RELEASE_AFTER`] the queue is given back.
    idle_lends: u8,
    /// Whether it gets each event's tagged frame (its topics and visibility before the
    /// event's lines, see [`crate::sse::tagged`]) instead of the plain one.
    tagged: bool,
}

/// A subscriber's fields that most subscribers do not have.
#[derive(Default)]
struct Rare {
    /// Topics whose private events it may read (`None`: none).
    rights: Option<Arc<Selectors>>,
    /// Run once if the hub evicts it (without one, a direct sink is shut down).
    on_evict: Option<CloseHook>,
    /// A broker's events up to this id are not sent to it: it resumed from an id this
    /// node had not read yet though the broker holds it (a `future` reset), and has them
    /// from the node it left.
    skip_through: Option<EventId>,
}

impl Client {
    /// Whether a private event with this `envelope` may reach this subscriber: its
    /// rights cover one of the event's topics.
    fn may_read(&self, envelope: &Envelope) -> bool {
        self.rare
            .as_ref()
            .and_then(|r| r.rights.as_ref())
            .is_some_and(|r| envelope.readable_by(|t| r.matches(t)))
    }
}

/// What a subscriber brings besides its topics, rights, last id and close hook.
#[derive(Default)]
struct Joining<'a> {
    /// A broker's events older than the history (see `external.rs`).
    older: &'a [Retained],
    /// The broker holds the client's id though this node has not read it yet (its
    /// `future` reset then skips the broker's events up to it).
    unread: bool,
    /// Its socket, for direct writes (see `direct.rs`); without one every frame is
    /// queued.
    sink: Option<Arc<dyn DirectSink>>,
    /// It gets tagged frames ([`Client::tagged`]).
    tagged: bool,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("clients", &self.len())
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl Hub {
    /// A hub whose subscribers each get a queue of `limits.queue_len` frames.
    ///
    /// # Panics
    ///
    /// If `limits.queue_len` is 0 (a programmer error: `Config` refuses it).
    pub fn new(limits: HubLimits, stats: Arc<Stats>) -> Hub {
        Hub::with_log(limits, stats, Log::silent())
    }

    /// Like [`Hub::new`], reporting evictions to `log`.
    ///
    /// # Panics
    ///
    /// If `limits.queue_len` is 0.
    pub fn with_log(limits: HubLimits, stats: Arc<Stats>, log: Log) -> Hub {
        Hub::build(limits, stats, log, History::new(new_epoch()), false)
    }

    /// A hub whose events a publish port orders (see `port/`): it starts with `history`
    /// (loaded from a file, or empty with a broker's ids) and takes events only through
    /// [`Hub::commit`].
    ///
    /// # Panics
    ///
    /// If `limits.queue_len` is 0.
    pub(crate) fn with_history(
        limits: HubLimits,
        stats: Arc<Stats>,
        log: Log,
        history: History,
    ) -> Hub {
        Hub::build(limits, stats, log, history, true)
    }

    fn build(
        limits: HubLimits,
        stats: Arc<Stats>,
        log: Log,
        history: History,
        ported: bool,
    ) -> Hub {
        assert!(limits.queue_len > 0, "queue_len must be at least 1");
        let state = State {
            clients: BTreeMap::new(),
            queue_len: limits.queue_len,
            next_client: 1,
            history,
            closed: false,
            writers_idle: true,
            topic_counts: TopicCounts::default(),
            tagged: 0,
        };
        let epoch = state.history.epoch();
        Hub {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                ported,
                epoch,
                limits,
                stats,
                log,
                runner: OnceLock::new(),
                paused: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the registry half-updated in a way
        // that matters more than stopping the server would: keep going.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.inner.stats
    }

    /// The hub's limits.
    pub fn limits(&self) -> HubLimits {
        self.inner.limits
    }

    /// Subscribers registered now.
    pub fn len(&self) -> usize {
        self.lock().clients.len()
    }

    /// Whether no subscriber is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of the last event published (`None`: none yet).
    pub fn last_id(&self) -> Option<EventId> {
        self.lock().history.last_id()
    }

    /// The history's epoch: its start time in Unix milliseconds, fixed for the life of
    /// the hub (see [`EventId`]).
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    /// The outcome a subscriber sending `last_event_id` would get now, without
    /// subscribing (for `HEAD /stream`).
    pub fn resume_outcome(&self, last_event_id: Option<&str>) -> Resume {
        self.lock().history.place(last_event_id).outcome()
    }

    /// How far behind the subscribers are: a consistent look at every queue.
    pub fn queue_load(&self) -> QueueLoad {
        let state = self.lock();
        let mut b = QueueLoad {
            subscribers: state.clients.len(),
            ..QueueLoad::default()
        };
        for c in state.clients.values() {
            let len = c.tx.as_ref().map_or(0, Sender::len);
            b.queued += len;
            if len * 2 >= state.queue_len && !c.state.stopped_reading() {
                b.behind += 1;
            }
        }
        b
    }

    /// Events retained for replay now.
    pub fn history_len(&self) -> usize {
        self.lock().history.len()
    }

    /// Subscribers per topic they asked for (`*` for subscribers to every topic), at
    /// most [`LISTED_TOPICS`] topics by name and the rest summed. Kept as subscribers
    /// come and go: reading it never walks the subscribers.
    pub fn topic_counts(&self) -> TopicListing {
        self.lock().topic_counts.listing()
    }

    /// Registers a subscriber.
    ///
    /// `last_id` is the last event id the client saw (from `Last-Event-ID`, as sent): the
    /// backlog then holds every retained later event on `topics`, or a `reset` event and
    /// the retained events certainly after it (see [`Subscription::resume`] and "Ids and
    /// replay"); no id (or an empty one) starts live. `on_evict` runs once if the hub
    /// evicts the subscriber (queue full or shutdown).
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] once [`Hub::close`] has been called.
    pub fn subscribe(
        &self,
        topics: Topics,
        last_id: Option<&str>,
        on_evict: Option<CloseHook>,
    ) -> Result<Subscription, SubscribeError> {
        self.subscribe_with(topics, None, last_id, on_evict, Joining::default())
    }

    /// [`Hub::subscribe_as`] for the server's writer: with a `sink`, one whose socket the
    /// hub may write directly (see `direct.rs`); its queue is made only when the hub
    /// first has to queue a frame for it, so an idle subscriber holds none. Without
    /// `on_evict`, an eviction shuts the sink down ([`DirectSink::shut_down`]). `tagged`:
    /// it gets tagged frames, its backlog too (see [`crate::sse::tagged`]).
    pub(crate) fn subscribe_direct(
        &self,
        topics: Topics,
        rights: Option<Arc<Selectors>>,
        last_id: Option<&str>,
        on_evict: Option<CloseHook>,
        sink: Option<Arc<dyn DirectSink>>,
        tagged: bool,
    ) -> Result<Subscription, SubscribeError> {
        let joining = Joining {
            older: &[],
            unread: false,
            sink,
            tagged,
        };
        self.subscribe_with(topics, rights, last_id, on_evict, joining)
    }

    /// Like [`Hub::subscribe`], for a subscriber that may also read the private events
    /// on the topics `rights` covers (live and in its backlog). `None`: public events
    /// only, as [`Hub::subscribe`].
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] once [`Hub::close`] has been called.
    pub fn subscribe_as(
        &self,
        topics: Topics,
        rights: Option<Arc<Selectors>>,
        last_id: Option<&str>,
        on_evict: Option<CloseHook>,
    ) -> Result<Subscription, SubscribeError> {
        self.subscribe_with(topics, rights, last_id, on_evict, Joining::default())
    }

    /// [`Hub::subscribe_as`], with what else the subscriber brings (see [`Joining`]).
    fn subscribe_with(
        &self,
        topics: Topics,
        rights: Option<Arc<Selectors>>,
        last_id: Option<&str>,
        on_evict: Option<CloseHook>,
        joining: Joining<'_>,
    ) -> Result<Subscription, SubscribeError> {
        let Joining {
            older,
            unread,
            sink,
            tagged,
        } = joining;
        let state_word = Arc::new(WriterState::default());
        // Without a direct sink every frame is queued: the queue is needed at once.
        let tx = sink.is_none().then(|| {
            let (tx, rx) = async_channel::bounded(self.inner.limits.queue_len);
            state_word.set_queue(rx);
            tx
        });
        let mut state = self.lock();
        if state.closed {
            return Err(SubscribeError::Closed);
        }
        let id = ClientId(state.next_client);
        state.next_client += 1;
        let (resume, backlog) =
            state
                .history
                .resume(last_id, &topics, rights.as_deref(), older, tagged);
        // Only an id the broker is known to hold is skipped through: any other future id
        // (beyond the stream, or the broker could not be asked) goes live from now, as
        // its reset says, instead of silently withholding events until the clock passes it.
        let skip_through = match resume {
            Resume::Reset(ResetReason::Future) if unread && state.history.is_external() => {
                last_id.and_then(|s| s.parse().ok())
            }
            _ => None,
        };
        state.topic_counts.add(&topics);
        state.tagged += usize::from(tagged);
        let rare = (rights.is_some() || on_evict.is_some() || skip_through.is_some()).then(|| {
            Box::new(Rare {
                rights,
                on_evict,
                skip_through,
            })
        });
        state.clients.insert(
            id,
            Box::new(Client {
                tx,
                state: state_word.clone(),
                topics,
                sink,
                rare,
                idle_lends: 0,
                tagged,
            }),
        );
        drop(state);
        self.inner.stats.client_joined();
        self.inner.stats.resumed(resume);
        Ok(Subscription {
            id,
            state: state_word,
            backlog: (!backlog.is_empty()).then(|| Box::new(backlog)),
            resume,
            hub: self.clone(),
            ended: false,
            mercure: false,
        })
    }

    /// Hands `frame` (a heartbeat or other comment) to every subscriber, without an id and
    /// without keeping it for replay. Never waits.
    pub fn broadcast(&self, frame: &Frame) -> Delivery {
        let mut evicted = Vec::new();
        let mut lent = Lent::default();
        let delivery = {
            let mut state = self.lock();
            if self.is_paused() {
                // A handover: nothing goes out (a heartbeat need not carry over).
                return Delivery::default();
            }
            let go_direct = state.direct_now(self.inner.runner.get().is_some());
            state.fan_out(
                Outgoing::plain(frame),
                None,
                None,
                &mut evicted,
                go_direct.then_some(&mut lent),
            )
        };
        self.run_direct(frame.clone(), lent.plain);
        self.finish_delivery(&delivery, evicted);
        delivery
    }

    /// Sets how direct writes run (once; later calls are ignored): the server hands each
    /// [`DirectJob`] to its writer threads. Without a runner every frame is queued.
    pub(crate) fn set_direct_runner(&self, runner: impl Fn(DirectJob) + Send + Sync + 'static) {
        let _ = self.inner.runner.set(Box::new(runner));
    }

    /// Hands the sockets a fan-out took for `frame` to the runner, outside the lock.
    fn run_direct(&self, frame: Frame, targets: Vec<DirectTarget>) {
        if targets.is_empty() {
            return;
        }
        let job = DirectJob {
            frame,
            targets,
            stats: self.inner.stats.clone(),
        };
        match self.inner.runner.get() {
            Some(run) => run(job),
            None => job.run(),
        }
    }

    /// Counts and logs evictions and runs their close hooks, outside the lock.
    fn finish_delivery(&self, delivery: &Delivery, evicted: Vec<(ClientId, Client, Reason)>) {
        self.inner.stats.frames_queued(delivery.sent as u64);
        for (id, client, reason) in evicted {
            self.retire(id, client, reason, true);
        }
    }

    /// Takes a removed subscriber out of service: closes its queue, runs its close hook
    /// when the hub is the one ending it (`shut`), counts and logs it. Outside the lock.
    fn retire(&self, id: ClientId, client: Client, reason: Reason, shut: bool) {
        match &client.tx {
            Some(tx) => {
                tx.close();
            }
            None => client.state.end_without_queue(),
        }
        client.state.notify();
        if shut {
            match (client.rare.and_then(|r| r.on_evict), &client.sink) {
                (Some(hook), _) => hook(),
                (None, Some(sink)) => sink.shut_down(),
                (None, None) => {}
            }
        }
        self.inner.stats.client_left(reason);
        match reason {
            Reason::HungUp => self
                .inner
                .log
                .line(format_args!("client {id} disconnected")),
            _ => self
                .inner
                .log
                .line(format_args!("client {id} evicted: {}", reason.label())),
        }
    }

    /// Removes a subscriber (if still registered) and counts it under `reason`.
    fn remove(&self, id: ClientId, reason: Reason) {
        let removed = self.lock().take(id);
        if let Some(client) = removed {
            self.retire(id, client, reason, false);
        }
    }

    /// Closes the hub: refuses new subscribers and closes every queue, so each writer
    /// flushes what it already has and then ends. Counted as [`Reason::Shutdown`].
    pub fn close(&self) {
        let clients: Vec<(ClientId, Client)> = {
            let mut state = self.lock();
            state.closed = true;
            state.topic_counts = TopicCounts::default();
            state.tagged = 0;
            std::mem::take(&mut state.clients)
                .into_iter()
                .map(|(id, c)| (id, *c))
                .collect()
        };
        for (id, client) in clients {
            self.retire(id, client, Reason::Shutdown, false);
        }
    }

    /// Whether [`Hub::close`] has been called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

impl State {
    /// Takes a subscriber out of the registry (and out of the topic counts).
    fn take(&mut self, id: ClientId) -> Option<Client> {
        let client = self.clients.remove(&id)?;
        self.topic_counts.remove(&client.topics);
        self.tagged -= usize::from(client.tagged);
        Some(*client)
    }
}
