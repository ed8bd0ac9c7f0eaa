//! The hub: the seed's "stream manager".
//!
//! It keeps the registry of subscribers, each with a **bounded** [`async_channel`] of
//! [`Frame`]s, assigns event ids, keeps the replay history, and fans every frame out with
//! `try_send`, which never waits.
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` (this) | the registry: subscribe, publish, fan-out, eviction, close |
//! | `history.rs` | the bounded replay history: ids, the resume decision |
//! | `log_file.rs` | the optional history file (`--history-file`): records, loading, compaction, fsync |
//! | `subscription.rs` | the reader's end: queue, backlog, end reason |
//! | `writer_state.rs` | the writer's state word (waiting, running, lent), with its transition table |
//! | `direct.rs` | direct writes: a frame written to waiting writers' sockets without waking them |
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
//! assert!(sub.receiver().try_recv().is_ok());
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
//! let first = hub.publish(&Topic::default_topic(), &Event::new("a").unwrap()).unwrap().id;
//! hub.publish(&Topic::default_topic(), &Event::new("b").unwrap()).unwrap();
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
//! # Direct writes
//!
//! When every writer waits with an empty queue, a publish lends their sockets to one
//! direct write of the frame instead of waking each writer's task (see `direct.rs` and
//! the state table in `writer_state.rs`). No lock is held while it runs.
//!
//!
//! # One place to publish
//!
//! Every event goes through [`Hub::publish`], the one place that issues ids and appends to
//! the history: the seam where a durable log or a broker-backed publish path plugs in.

mod direct;
mod history;
mod log_file;
mod subscription;
mod topic_counts;
mod writer_state;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use async_channel::{Sender, TrySendError};

pub(crate) use direct::{DirectJob, DirectSink};
use direct::{DirectRunner, DirectTarget};
use history::{History, Retained};
use log_file::LogFile;
pub use log_file::{Fsync, OpenError};
pub use subscription::Subscription;
use topic_counts::TopicCounts;
pub use topic_counts::{LISTED_TOPICS, TopicListing};
use writer_state::WriterState;

use crate::event_id::{EventId, Resume, new_epoch};
use crate::log::Log;
use crate::sse::{Event, Frame, encode};
use crate::stats::{Reason, Stats};
use crate::topic::{Topic, Topics};

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

/// The state of all queues at one instant (see [`Hub::backlog`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Subscribers registered.
    pub subscribers: usize,
    /// Of those, how many hold half a queue or more while their socket takes data.
    pub behind: usize,
    /// Frames queued, all subscribers together.
    pub queued: usize,
}

impl Backlog {
    /// Whether the server's writers are behind for some subscriber that is reading.
    pub fn congested(&self) -> bool {
        self.behind > 0
    }
}

/// The result of [`Hub::publish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The id the hub assigned.
    pub id: EventId,
    /// How the frame fanned out.
    pub delivery: Delivery,
}

/// Why [`Hub::publish`] refused: the event got no id and reached nobody.
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishError {
    /// Its record could not be written to the history file.
    HistoryFile(io::Error),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::HistoryFile(e) => write!(f, "the history file could not be written: {e}"),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PublishError::HistoryFile(e) => Some(e),
        }
    }
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
    state: Mutex<State>,
    limits: HubLimits,
    stats: Arc<Stats>,
    log: Log,
    runner: OnceLock<DirectRunner>,
}

struct State {
    clients: HashMap<ClientId, Client>,
    /// Capacity of each queue (copied from the limits for the fan-out loop).
    queue_len: usize,
    next_client: u64,
    history: History,
    /// The history file, with `--history-file`.
    store: Option<LogFile>,
    closed: bool,
    /// Whether the last fan-out found every writer waiting (see "Direct writes").
    writers_idle: bool,
    /// Subscribers per topic, kept as they come and go.
    topic_counts: TopicCounts,
}

struct Client {
    tx: Sender<Frame>,
    state: Arc<WriterState>,
    topics: Topics,
    on_evict: Option<CloseHook>,
    sink: Option<Arc<dyn DirectSink>>,
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
        Hub::build(limits, stats, log, History::new(new_epoch()), None)
    }

    /// Like [`Hub::with_log`], with the history kept in the file at `path` (created if
    /// it does not exist): its epoch, offsets and retained events survive a restart. See
    /// [`Fsync`] for what each mode keeps through a crash.
    ///
    /// # Errors
    ///
    /// [`OpenError`] (one line, naming the file) when the file cannot be created or
    /// written, or is corrupt other than in its last record.
    ///
    /// # Panics
    ///
    /// If `limits.queue_len` is 0.
    pub fn with_history_file(
        limits: HubLimits,
        stats: Arc<Stats>,
        log: Log,
        path: &Path,
        fsync: Fsync,
    ) -> Result<Hub, OpenError> {
        let (mut store, loaded) = LogFile::open(path, fsync)?;
        for note in &loaded.notes {
            log.line(format_args!("history file {}: {note}", path.display()));
        }
        let loaded_events = loaded.records.len();
        let history = History::restore(loaded.epoch, loaded.last, loaded.records, limits);
        log.line(format_args!(
            "history file {}: epoch {}, {} events read, {} kept, last offset {}",
            path.display(),
            loaded.epoch,
            loaded_events,
            history.len(),
            loaded.last
        ));
        if store.wants_compaction(limits.history_events, limits.history_bytes) {
            store
                .compact(history.dropped_upto(), history.retained())
                .map_err(|e| OpenError {
                    path: path.to_owned(),
                    what: format!("cannot compact it: {e}"),
                })?;
        }
        Ok(Hub::build(limits, stats, log, history, Some(store)))
    }

    fn build(
        limits: HubLimits,
        stats: Arc<Stats>,
        log: Log,
        history: History,
        store: Option<LogFile>,
    ) -> Hub {
        assert!(limits.queue_len > 0, "queue_len must be at least 1");
        let state = State {
            clients: HashMap::new(),
            queue_len: limits.queue_len,
            next_client: 1,
            history,
            store,
            closed: false,
            writers_idle: true,
            topic_counts: TopicCounts::default(),
        };
        Hub {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                limits,
                stats,
                log,
                runner: OnceLock::new(),
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
        self.lock().history.epoch()
    }

    /// The outcome a subscriber sending `last_event_id` would get now, without
    /// subscribing (for `HEAD /stream`).
    pub fn resume_outcome(&self, last_event_id: Option<&str>) -> Resume {
        self.lock().history.place(last_event_id).outcome()
    }

    /// How far behind the subscribers are: a consistent look at every queue.
    pub fn backlog(&self) -> Backlog {
        let state = self.lock();
        let mut b = Backlog {
            subscribers: state.clients.len(),
            ..Backlog::default()
        };
        for c in state.clients.values() {
            let len = c.tx.len();
            b.queued += len;
            if len * 2 >= state.queue_len && !c.state.socket_full() {
                b.behind += 1;
            }
        }
        b
    }

    /// Events retained for replay now.
    pub fn history_len(&self) -> usize {
        self.lock().history.len()
    }

    /// The size of the history file now, with one. **Unit:** bytes.
    pub fn history_file_len(&self) -> Option<u64> {
        self.lock().store.as_ref().map(LogFile::len)
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
        let (tx, rx) = async_channel::bounded(self.inner.limits.queue_len);
        let state_word = Arc::new(WriterState::default());
        let mut state = self.lock();
        if state.closed {
            return Err(SubscribeError::Closed);
        }
        let id = ClientId(state.next_client);
        state.next_client += 1;
        let (resume, backlog) = state.history.resume(last_id, &topics);
        state.topic_counts.add(&topics);
        state.clients.insert(
            id,
            Client {
                tx,
                state: state_word.clone(),
                topics,
                on_evict,
                sink: None,
            },
        );
        drop(state);
        self.inner.stats.client_joined();
        self.inner.stats.resumed(resume);
        Ok(Subscription {
            id,
            rx,
            state: state_word,
            backlog,
            resume,
            hub: self.clone(),
            ended: false,
        })
    }

    /// Publishes `event` on `topic`: assigns the next id, encodes the event **once**, keeps
    /// it in the history (and its file), and hands the shared frame to every matching
    /// subscriber.
    ///
    /// Never waits for a subscriber: one whose queue is full is evicted instead. With a
    /// history file, the record is written first (and, with [`Fsync::Always`], synced):
    /// the history's one wait.
    ///
    /// # Errors
    ///
    /// [`PublishError::HistoryFile`] when the record could not be written: the event is
    /// not published (no id is used, nobody gets it). Never without a history file.
    pub fn publish(&self, topic: &Topic, event: &Event) -> Result<Published, PublishError> {
        let mut evicted = Vec::new();
        let mut state = self.lock();
        let id = state.history.next_id();
        let frame = encode(event, Some(&id.to_string()));
        if let Some(store) = state.store.as_mut()
            && let Err(e) = store.append(id.offset, topic, &frame)
        {
            let path = store.path().display().to_string();
            drop(state);
            self.inner.stats.history_write_failed();
            self.inner.log.line(format_args!(
                "history file {path}: write failed, publish refused: {e}"
            ));
            return Err(PublishError::HistoryFile(e));
        }
        state.history.push(
            Retained {
                offset: id.offset,
                topic: topic.clone(),
                frame: frame.clone(),
            },
            self.inner.limits,
        );
        state.compact_history(self.inner.limits, &self.inner.log);
        let mut direct = Vec::new();
        let go_direct = state.writers_idle && self.inner.runner.get().is_some();
        let delivery = state.fan_out(
            &frame,
            Some(topic),
            &mut evicted,
            go_direct.then_some(&mut direct),
        );
        drop(state);
        self.inner.stats.event_published();
        self.run_direct(frame, direct);
        self.finish_delivery(&delivery, evicted);
        Ok(Published { id, delivery })
    }

    /// Hands `frame` (a heartbeat or other comment) to every subscriber, without an id and
    /// without keeping it for replay. Never waits.
    pub fn broadcast(&self, frame: &Frame) -> Delivery {
        let mut evicted = Vec::new();
        let mut direct = Vec::new();
        let delivery = {
            let mut state = self.lock();
            let go_direct = state.writers_idle && self.inner.runner.get().is_some();
            state.fan_out(frame, None, &mut evicted, go_direct.then_some(&mut direct))
        };
        self.run_direct(frame.clone(), direct);
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
        client.tx.close();
        client.state.notify();
        if shut && let Some(hook) = client.on_evict {
            hook();
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
            state.clients.drain().collect()
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
    /// Rewrites the history file with only the retained events once it holds twice the
    /// caps' worth. A failure is logged; the file grows on, and it is tried again later.
    fn compact_history(&mut self, limits: HubLimits, log: &Log) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        if !store.wants_compaction(limits.history_events, limits.history_bytes) {
            return;
        }
        if let Err(e) = store.compact(self.history.dropped_upto(), self.history.retained()) {
            log.line(format_args!(
                "history file {}: compaction failed (the file grows on): {e}",
                store.path().display()
            ));
            store.defer_compaction(limits.history_events.max(1) as u64);
        }
    }

    /// `try_send`s `frame` to each matching subscriber; collects the ones to evict. With
    /// `direct`, the sockets of waiting writers are taken for a direct write instead (see
    /// the module docs); either way it notes whether every writer was waiting.
    fn fan_out(
        &mut self,
        frame: &Frame,
        topic: Option<&Topic>,
        evicted: &mut Vec<(ClientId, Client, Reason)>,
        mut direct: Option<&mut Vec<DirectTarget>>,
    ) -> Delivery {
        let mut delivery = Delivery::default();
        let mut gone: Vec<(ClientId, Reason)> = Vec::new();
        let mut busy = 0usize;
        for (id, client) in &self.clients {
            if topic.is_some_and(|t| !client.topics.matches(t)) {
                continue;
            }
            if let (Some(targets), Some(sink)) = (direct.as_deref_mut(), &client.sink)
                && client.state.lend()
            {
                targets.push((client.state.clone(), sink.clone()));
                delivery.sent += 1;
                continue;
            }
            // A writer that is not waiting is busy, unless it waits for a client that
            // stopped reading (that one is the client's problem, not the server's).
            if !client.state.is_waiting() && !client.state.socket_full() {
                busy += 1;
            }
            match client.tx.try_send(frame.clone()) {
                Ok(()) => {
                    client.state.notify();
                    delivery.sent += 1;
                    if client.tx.len() * 2 >= self.queue_len && !client.state.socket_full() {
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

    /// Takes a subscriber out of the registry (and out of the topic counts).
    fn take(&mut self, id: ClientId) -> Option<Client> {
        let client = self.clients.remove(&id)?;
        self.topic_counts.remove(&client.topics);
        Some(client)
    }
}
