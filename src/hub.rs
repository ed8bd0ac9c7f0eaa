//! The hub: the seed's "stream manager".
//!
//! It keeps the registry of subscribers, each with a **bounded** [`async_channel`] of
//! [`Frame`]s, assigns event ids, keeps the replay history, and fans every frame out with
//! `try_send`, which never waits.
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
//! use ssehub::hub::{Hub, HubLimits, Topics};
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
//! # Replay
//!
//! Published events are kept in a bounded history (count and bytes). A subscriber that
//! passes the last id it saw gets every retained later event matching its topics as a
//! backlog, taken under the same lock that publishing holds: no event can fall between the
//! backlog and the live queue, and none can be in both.
//!
//! # One place to publish
//!
//! Every event goes through [`Hub::publish`]: the seam where a broker-backed publish path
//! (several instances sharing one ordered log) would replace the local one.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use async_channel::{Receiver, Sender, TryRecvError, TrySendError};

use crate::log::Log;
use crate::sse::{Event, Frame, encode, push_comment};
use crate::stats::{Reason, Stats};

/// The default capacity of each subscriber's queue, in frames (the seed's 100).
pub const DEFAULT_CLIENT_QUEUE_LEN: usize = 100;
/// The default number of events kept for replay.
pub const DEFAULT_HISTORY_EVENTS: usize = 1000;
/// The default byte cap of the replay history (encoded frames).
pub const DEFAULT_HISTORY_BYTES: usize = 4 * 1024 * 1024;
/// The longest topic name, in bytes.
pub const MAX_TOPIC_BYTES: usize = 128;
/// The topic of events published without one.
pub const DEFAULT_TOPIC: &str = "default";

/// A validated topic name: 1 to [`MAX_TOPIC_BYTES`] bytes of ASCII letters, digits and
/// `- _ . : / ~ @ +`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Checks and wraps a topic name.
    ///
    /// # Errors
    ///
    /// [`TopicError`] naming what is wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub::hub::Topic;
    /// assert!(Topic::new("orders/eu-1").is_ok());
    /// assert!(Topic::new("a b").is_err());
    /// assert!(Topic::new("").is_err());
    /// ```
    pub fn new(name: &str) -> Result<Topic, TopicError> {
        if name.is_empty() {
            return Err(TopicError::Empty);
        }
        if name.len() > MAX_TOPIC_BYTES {
            return Err(TopicError::TooLong);
        }
        let ok = |b: u8| b.is_ascii_alphanumeric() || b"-_.:/~@+".contains(&b);
        if !name.bytes().all(ok) {
            return Err(TopicError::InvalidChar);
        }
        Ok(Topic(name.into()))
    }

    /// The topic used when a publisher names none.
    pub fn default_topic() -> Topic {
        Topic(DEFAULT_TOPIC.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", &*self.0)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a topic name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_TOPIC_BYTES`].
    TooLong,
    /// The name holds a character outside the allowed set.
    InvalidChar,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Empty => write!(f, "topic must not be empty"),
            TopicError::TooLong => write!(f, "topic exceeds {MAX_TOPIC_BYTES} bytes"),
            TopicError::InvalidChar => write!(
                f,
                "topic may only hold ASCII letters, digits and - _ . : / ~ @ +"
            ),
        }
    }
}

impl std::error::Error for TopicError {}

/// Which topics a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    /// Every topic.
    All,
    /// Only these (a short list: matching is a linear scan).
    Only(Box<[Topic]>),
}

impl Topics {
    /// Whether an event on `topic` goes to this subscriber.
    pub fn matches(&self, topic: &Topic) -> bool {
        match self {
            Topics::All => true,
            Topics::Only(list) => list.iter().any(|t| t == topic),
        }
    }
}

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
    pub id: u64,
    /// How the frame fanned out.
    pub delivery: Delivery,
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
}

struct State {
    clients: HashMap<ClientId, Client>,
    /// Capacity of each queue (copied from the limits for the fan-out loop).
    queue_len: usize,
    next_client: u64,
    last_id: u64,
    history: History,
    closed: bool,
}

struct Client {
    tx: Sender<Frame>,
    wake: Arc<Wake>,
    topics: Topics,
    on_evict: Option<CloseHook>,
}

/// How the hub wakes a subscriber's writer: a flag and a waker slot beside the queue.
///
/// The writer takes frames with `try_recv`; when the queue is empty it stores its waker
/// here, arms the flag and looks at the queue once more. After each `try_send` (and after
/// closing the queue) the hub wakes the writer only if the flag is armed. Waiting on the
/// channel itself would allocate and register an `event_listener` entry, under the
/// channel's listener lock, on every wait, and every `try_send` would take that lock to
/// notify it: with 10,000 subscribers that was about 5 % of the server's CPU.
///
/// It also carries the writer's word on its socket (`socket_full`), so publish pacing can
/// tell a subscriber the server is late for from one that stopped reading.
#[derive(Debug, Default)]
struct Wake {
    armed: AtomicBool,
    waker: Mutex<Option<Waker>>,
    socket_full: AtomicBool,
}

impl Wake {
    /// Stores `waker` and arms the flag; the caller then checks the queue again.
    fn arm(&self, waker: &Waker) {
        {
            let mut slot = self.waker.lock().unwrap_or_else(|p| p.into_inner());
            if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *slot = Some(waker.clone());
            }
        }
        self.armed.store(true, Ordering::SeqCst);
        // Pairs with the fence in `wake`: either the writer's next look at the queue sees
        // the frame, or the hub sees the flag armed.
        fence(Ordering::SeqCst);
    }

    fn disarm(&self) {
        self.armed.store(false, Ordering::Relaxed);
    }

    /// Wakes the writer if it is waiting. Called after a frame is queued or the queue is
    /// closed.
    fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::AcqRel) {
            let slot = self.waker.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(w) = slot.as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

/// One retained event.
struct Retained {
    id: u64,
    topic: Topic,
    frame: Frame,
}

/// The bounded replay history, oldest first.
struct History {
    events: VecDeque<Retained>,
    bytes: usize,
    /// The highest id dropped from the history (0: none).
    dropped_upto: u64,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("clients", &self.len())
            .field("limits", &self.inner.limits)
            .finish()
    }
}

/// A subscriber's end: its queue, its replay backlog, and its place in the registry.
///
/// Dropping it removes the subscriber from the hub (counted as [`Reason::HungUp`] unless
/// [`Subscription::end`] named another reason first).
pub struct Subscription {
    id: ClientId,
    rx: Receiver<Frame>,
    wake: Arc<Wake>,
    backlog: Vec<Frame>,
    hub: Hub,
    ended: bool,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("queued", &self.rx.len())
            .field("backlog", &self.backlog.len())
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
    pub fn receiver(&self) -> &Receiver<Frame> {
        &self.rx
    }

    /// Takes the next queued frame, or registers `cx` to be woken when the hub queues
    /// one (or closes the queue). `Ready(None)` once the queue is closed and empty.
    ///
    /// Waiting this way costs no allocation and no lock on the channel: see the hub's
    /// wake flag. Only one task may wait on a subscription at a time.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        match self.rx.try_recv() {
            Ok(frame) => return Poll::Ready(Some(frame)),
            Err(TryRecvError::Closed) => return Poll::Ready(None),
            Err(TryRecvError::Empty) => {}
        }
        self.wake.arm(cx.waker());
        match self.rx.try_recv() {
            Ok(frame) => {
                self.wake.disarm();
                Poll::Ready(Some(frame))
            }
            Err(TryRecvError::Closed) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }

    /// Tells the hub whether this subscriber's socket is full (its writer waits for the
    /// client to read). Such a subscriber does not count as one the server is behind
    /// for (see [`Delivery::behind`]): pacing never waits for a client that stopped
    /// reading; its queue fills and it is evicted.
    pub fn set_socket_full(&self, full: bool) {
        self.wake.socket_full.store(full, Ordering::Relaxed);
    }

    /// Takes the next queued frame if there is one, without waiting.
    pub fn try_recv(&self) -> Option<Frame> {
        self.rx.try_recv().ok()
    }

    /// Takes the replay backlog (events retained after the requested id, plus a comment if
    /// some were missed). Write it before anything from the live queue.
    pub fn take_backlog(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.backlog)
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
        assert!(limits.queue_len > 0, "queue_len must be at least 1");
        let state = State {
            clients: HashMap::new(),
            queue_len: limits.queue_len,
            next_client: 1,
            last_id: 0,
            history: History {
                events: VecDeque::new(),
                bytes: 0,
                dropped_upto: 0,
            },
            closed: false,
        };
        Hub {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                limits,
                stats,
                log,
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

    /// The id of the last event published (0: none yet).
    pub fn last_id(&self) -> u64 {
        self.lock().last_id
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
            if len * 2 >= state.queue_len && !c.wake.socket_full.load(Ordering::Relaxed) {
                b.behind += 1;
            }
        }
        b
    }

    /// Events retained for replay now.
    pub fn history_len(&self) -> usize {
        self.lock().history.events.len()
    }

    /// Subscribers per topic they asked for (`*` for subscribers to every topic).
    pub fn topic_counts(&self) -> Vec<(String, usize)> {
        let state = self.lock();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for client in state.clients.values() {
            match &client.topics {
                Topics::All => *counts.entry("*").or_default() += 1,
                Topics::Only(list) => {
                    for t in list.iter() {
                        *counts.entry(t.as_str()).or_default() += 1;
                    }
                }
            }
        }
        let mut out: Vec<(String, usize)> =
            counts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        out.sort();
        out
    }

    /// Registers a subscriber.
    ///
    /// `last_id` is the last event id the client saw (from `Last-Event-ID`): the backlog
    /// then holds every retained later event on `topics`, and a comment first if the
    /// history no longer reaches back that far. An id the hub has not issued yet is treated
    /// as no id. `on_evict` runs once if the hub evicts the subscriber (queue full or
    /// shutdown).
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] once [`Hub::close`] has been called.
    pub fn subscribe(
        &self,
        topics: Topics,
        last_id: Option<u64>,
        on_evict: Option<CloseHook>,
    ) -> Result<Subscription, SubscribeError> {
        let (tx, rx) = async_channel::bounded(self.inner.limits.queue_len);
        let wake = Arc::new(Wake::default());
        let mut state = self.lock();
        if state.closed {
            return Err(SubscribeError::Closed);
        }
        let id = ClientId(state.next_client);
        state.next_client += 1;
        let backlog = match last_id {
            Some(last) if last <= state.last_id => state.history.backlog(last, &topics),
            _ => Vec::new(),
        };
        state.clients.insert(
            id,
            Client {
                tx,
                wake: wake.clone(),
                topics,
                on_evict,
            },
        );
        drop(state);
        self.inner.stats.client_joined();
        Ok(Subscription {
            id,
            rx,
            wake,
            backlog,
            hub: self.clone(),
            ended: false,
        })
    }

    /// Publishes `event` on `topic`: assigns the next id, encodes the event **once**, keeps
    /// it in the history, and hands the shared frame to every matching subscriber.
    ///
    /// Never waits: a subscriber whose queue is full is evicted instead.
    pub fn publish(&self, topic: &Topic, event: &Event) -> Published {
        let mut evicted = Vec::new();
        let mut state = self.lock();
        state.last_id += 1;
        let id = state.last_id;
        let frame = encode(event, Some(&id.to_string()));
        state.history.push(
            Retained {
                id,
                topic: topic.clone(),
                frame: frame.clone(),
            },
            self.inner.limits,
        );
        let delivery = state.fan_out(&frame, Some(topic), &mut evicted);
        drop(state);
        self.inner.stats.event_published();
        self.finish_delivery(&delivery, evicted);
        Published { id, delivery }
    }

    /// Hands `frame` (a heartbeat or other comment) to every subscriber, without an id and
    /// without keeping it for replay. Never waits.
    pub fn broadcast(&self, frame: &Frame) -> Delivery {
        let mut evicted = Vec::new();
        let delivery = self.lock().fan_out(frame, None, &mut evicted);
        self.finish_delivery(&delivery, evicted);
        delivery
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
        client.wake.wake();
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
        let removed = self.lock().clients.remove(&id);
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
    /// `try_send`s `frame` to each matching subscriber; collects the ones to evict.
    fn fan_out(
        &mut self,
        frame: &Frame,
        topic: Option<&Topic>,
        evicted: &mut Vec<(ClientId, Client, Reason)>,
    ) -> Delivery {
        let mut delivery = Delivery::default();
        let mut gone: Vec<(ClientId, Reason)> = Vec::new();
        for (id, client) in &self.clients {
            if topic.is_some_and(|t| !client.topics.matches(t)) {
                continue;
            }
            match client.tx.try_send(frame.clone()) {
                Ok(()) => {
                    client.wake.wake();
                    delivery.sent += 1;
                    if client.tx.len() * 2 >= self.queue_len
                        && !client.wake.socket_full.load(Ordering::Relaxed)
                    {
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
        for (id, reason) in gone {
            if let Some(client) = self.clients.remove(&id) {
                evicted.push((id, client, reason));
            }
        }
        delivery
    }
}

impl History {
    fn push(&mut self, entry: Retained, limits: HubLimits) {
        if limits.history_events == 0 {
            self.dropped_upto = entry.id;
            return;
        }
        self.bytes += entry.frame.len();
        self.events.push_back(entry);
        while self.events.len() > limits.history_events
            || (self.bytes > limits.history_bytes && self.events.len() > 1)
        {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.frame.len();
                self.dropped_upto = old.id;
            }
        }
    }

    /// Frames after `last` on `topics`, preceded by a comment when some were dropped.
    fn backlog(&self, last: u64, topics: &Topics) -> Vec<Frame> {
        let mut out = Vec::new();
        if last < self.dropped_upto {
            let mut buf = Vec::new();
            let oldest = self.events.front().map_or(self.dropped_upto + 1, |e| e.id);
            push_comment(
                &mut buf,
                &format!("missed events: history starts at id {oldest}, last seen id was {last}"),
            );
            buf.push(b'\n');
            out.push(Frame::from_encoded(buf));
        }
        let start = self.events.partition_point(|e| e.id <= last);
        out.extend(
            self.events
                .range(start..)
                .filter(|e| topics.matches(&e.topic))
                .map(|e| e.frame.clone()),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(queue: usize, history: usize) -> Hub {
        Hub::new(
            HubLimits {
                queue_len: queue,
                history_events: history,
                history_bytes: usize::MAX,
            },
            Arc::new(Stats::new()),
        )
    }

    fn ev(data: &str) -> Event {
        Event::new(data).unwrap()
    }

    fn texts(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| String::from_utf8(f.as_bytes().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn publish_assigns_increasing_ids_and_encodes_once() {
        let h = hub(10, 10);
        let a = h.subscribe(Topics::All, None, None).unwrap();
        let b = h.subscribe(Topics::All, None, None).unwrap();
        let p = h.publish(&Topic::default_topic(), &ev("x"));
        assert_eq!(p.id, 1);
        assert_eq!(p.delivery.sent, 2);
        let fa = a.receiver().try_recv().unwrap();
        let fb = b.receiver().try_recv().unwrap();
        // The same allocation reaches both: no per-client copy.
        assert!(std::ptr::eq(fa.as_bytes(), fb.as_bytes()));
        assert_eq!(fa.as_bytes(), b"id: 1\ndata: x\n\n");
        assert_eq!(h.publish(&Topic::default_topic(), &ev("y")).id, 2);
    }

    #[test]
    fn slow_subscriber_is_dropped_when_queue_is_full() {
        let h = hub(3, 10);
        let hook_ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = hook_ran.clone();
        let slow = h
            .subscribe(
                Topics::All,
                None,
                Some(Box::new(move || {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst)
                })),
            )
            .unwrap();
        let fast = h.subscribe(Topics::All, None, None).unwrap();
        for i in 0..3 {
            h.publish(&Topic::default_topic(), &ev(&i.to_string()));
            fast.receiver().try_recv().unwrap();
        }
        let p = h.publish(&Topic::default_topic(), &ev("3"));
        assert_eq!(
            p.delivery,
            Delivery {
                sent: 1,
                dropped_full: 1,
                dropped_closed: 0,
                behind: 0
            }
        );
        assert!(hook_ran.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(h.len(), 1);
        assert_eq!(h.stats().snapshot().ended[0], 1);
        // The evicted subscriber's queue is closed after what it holds.
        assert_eq!(slow.receiver().len(), 3);
        assert!(slow.receiver().is_closed());
        // Dropping it later does not count it twice.
        drop(slow);
        assert_eq!(h.stats().snapshot().ended, [1, 0, 0, 0]);
    }

    #[test]
    fn broadcast_does_not_block_on_full_client() {
        let h = hub(1, 0);
        let _stuck = h.subscribe(Topics::All, None, None).unwrap();
        let hb = crate::sse::heartbeat();
        // Runs to completion without an executor: nothing here can wait.
        for _ in 0..1000 {
            h.broadcast(&hb);
        }
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn dropped_subscription_is_pruned_at_once() {
        let h = hub(4, 0);
        let s = h.subscribe(Topics::All, None, None).unwrap();
        assert_eq!(h.len(), 1);
        drop(s);
        assert_eq!(h.len(), 0);
        assert_eq!(h.stats().snapshot().ended[2], 1);
    }

    #[test]
    fn topic_filter_selects_events() {
        let h = hub(10, 10);
        let a = Topic::new("a").unwrap();
        let b = Topic::new("b").unwrap();
        let only_a = h
            .subscribe(Topics::Only(vec![a.clone()].into()), None, None)
            .unwrap();
        let all = h.subscribe(Topics::All, None, None).unwrap();
        h.publish(&a, &ev("1"));
        h.publish(&b, &ev("2"));
        assert_eq!(only_a.receiver().len(), 1);
        assert_eq!(all.receiver().len(), 2);
    }

    #[test]
    fn replay_returns_events_after_last_id_on_matching_topics() {
        let h = hub(10, 10);
        let a = Topic::new("a").unwrap();
        let b = Topic::new("b").unwrap();
        for i in 1..=5 {
            h.publish(if i % 2 == 0 { &b } else { &a }, &ev(&i.to_string()));
        }
        let mut s = h
            .subscribe(Topics::Only(vec![a].into()), Some(1), None)
            .unwrap();
        assert_eq!(
            texts(&s.take_backlog()),
            ["id: 3\ndata: 3\n\n", "id: 5\ndata: 5\n\n"]
        );
    }

    #[test]
    fn replay_older_than_history_says_events_were_missed() {
        let h = hub(10, 3);
        for i in 1..=6 {
            h.publish(&Topic::default_topic(), &ev(&i.to_string()));
        }
        let mut s = h.subscribe(Topics::All, Some(1), None).unwrap();
        let got = texts(&s.take_backlog());
        assert_eq!(got.len(), 4);
        assert!(got[0].starts_with(": missed events: history starts at id 4"));
        assert_eq!(got[1], "id: 4\ndata: 4\n\n");
        // Exactly at the edge: nothing was missed.
        let mut s = h.subscribe(Topics::All, Some(3), None).unwrap();
        assert_eq!(s.take_backlog().len(), 3);
    }

    #[test]
    fn future_last_id_is_treated_as_none() {
        let h = hub(10, 10);
        h.publish(&Topic::default_topic(), &ev("1"));
        let mut s = h.subscribe(Topics::All, Some(99), None).unwrap();
        assert!(s.take_backlog().is_empty());
    }

    #[test]
    fn history_respects_byte_cap() {
        let h = Hub::new(
            HubLimits {
                queue_len: 1,
                history_events: 100,
                history_bytes: 40,
            },
            Arc::new(Stats::new()),
        );
        for i in 0..10 {
            h.publish(&Topic::default_topic(), &ev(&format!("{i:010}")));
        }
        // Each frame is 24 bytes: only one fits under 40.
        assert_eq!(h.history_len(), 1);
    }

    #[test]
    fn backlog_counts_subscribers_at_half_a_queue_or_more() {
        let h = hub(4, 0);
        let lagging = h.subscribe(Topics::All, None, None).unwrap();
        let reading = h.subscribe(Topics::All, None, None).unwrap();
        let p = h.publish(&Topic::default_topic(), &ev("1"));
        assert_eq!(p.delivery.behind, 0);
        let p = h.publish(&Topic::default_topic(), &ev("2"));
        // Both hold 2 of 4 now: at half a queue, both count as behind.
        assert_eq!(p.delivery.behind, 2);
        assert!(p.delivery.congested());
        while reading.receiver().try_recv().is_ok() {}
        let b = h.backlog();
        assert_eq!(
            b,
            Backlog {
                subscribers: 2,
                behind: 1,
                queued: 2
            }
        );
        // The lagging one still takes data: the server is behind for it.
        assert!(b.congested());
        // Once its writer reports a full socket, the client is the slow one: no pacing.
        lagging.set_socket_full(true);
        assert!(!h.backlog().congested());
        let p = h.publish(&Topic::default_topic(), &ev("3"));
        assert_eq!(p.delivery.behind, 0);
        lagging.set_socket_full(false);
        assert!(h.backlog().congested());
        drop(lagging);
        assert_eq!(
            h.backlog(),
            Backlog {
                subscribers: 1,
                behind: 0,
                queued: 1
            }
        );
    }

    /// A waker that counts its wake-ups.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    fn woken(c: &Count) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    #[test]
    fn poll_recv_wakes_once_per_wait_and_on_close() {
        let h = hub(4, 0);
        let s = h.subscribe(Topics::All, None, None).unwrap();
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert!(s.poll_recv(&mut cx).is_pending());
        // Two frames queued while waiting: one wake-up; both are there to take.
        h.publish(&Topic::default_topic(), &ev("a"));
        h.publish(&Topic::default_topic(), &ev("b"));
        assert_eq!(woken(&count), 1);
        assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(Some(_))));
        assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(Some(_))));
        // Not waiting (a frame was taken on the second look): no wake-up.
        assert!(s.poll_recv(&mut cx).is_pending());
        assert_eq!(woken(&count), 1);
        // Closing wakes the waiting writer, which then sees the end.
        h.close();
        assert_eq!(woken(&count), 2);
        assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn poll_recv_sees_eviction() {
        let h = hub(2, 0);
        let s = h.subscribe(Topics::All, None, None).unwrap();
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert!(s.poll_recv(&mut cx).is_pending());
        for d in ["a", "b", "c"] {
            h.publish(&Topic::default_topic(), &ev(d));
        }
        // Woken by the first frame; the third found the queue full and closed it.
        assert!(woken(&count) >= 1);
        assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(Some(_))));
        assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(Some(_))));
        assert!(matches!(s.poll_recv(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn close_refuses_new_subscribers_and_closes_queues() {
        let h = hub(10, 10);
        let s = h.subscribe(Topics::All, None, None).unwrap();
        h.publish(&Topic::default_topic(), &ev("last"));
        h.close();
        assert!(h.subscribe(Topics::All, None, None).is_err());
        // What was queued is still delivered, then the queue reports closed.
        assert!(s.receiver().try_recv().is_ok());
        assert!(s.receiver().try_recv().is_err());
        assert!(s.receiver().is_closed());
        assert_eq!(h.stats().snapshot().ended[3], 1);
    }
}
