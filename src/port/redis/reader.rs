//! The reader: one connection per node, from the node's own cursor, delivering every
//! entry to the hub in the stream's order, and telling the node's subscribers when
//! entries were lost.
//!
//! The reader is paced by the node's writers, as a publisher is on a single node: when
//! a delivery finds some subscriber that is still reading with half a queue or more,
//! the next entry waits until the queues drain (see [`Broker::pace`]). The backlog then
//! stays in Redis, which holds it anyway, instead of in the queues: a batch of up to
//! [`READ_COUNT`] entries (after an outage, or behind a fast publisher on another node)
//! delivered at once would otherwise fill every queue and evict healthy subscribers.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::FutureExt;

use super::acked::{marker_ids, unread};
use super::{
    Broker, COMMAND_TIMEOUT, CONNECT_TIMEOUT, Op, READ_BLOCK, READ_COUNT, Reader, backoff,
    entry_event, explain,
};
use crate::event_id::EventId;
use crate::hub::history::Retained;
use crate::redis::RedisError;
use crate::redis::stream;
use crate::shutdown::Shutdown;

/// Longest the reader waits for the writers before one entry. **Unit:** ms.
pub const PACE_MAX: Duration = Duration::from_millis(50);

/// How often a blocked read looks whether the master moved (a `+switch-master`).
/// **Unit:** ms.
pub const MOVED_POLL: Duration = Duration::from_millis(50);

/// How often the reader looks whether a handover's pause is over. **Unit:** ms.
const HANDOVER_POLL: Duration = Duration::from_millis(5);

impl Broker {
    /// Runs the reader until `shutdown`: reads from the cursor, delivers, reconnects with
    /// backoff after a failure (from the same cursor), and reports losses.
    pub async fn run_reader(self, mut reader: Reader, shutdown: Shutdown) {
        let mut attempt = 0u32;
        let mut generation = self.inner.generation.load(Relaxed);
        loop {
            if shutdown.is_triggered() {
                return;
            }
            let now = self.inner.generation.load(Relaxed);
            if now != generation {
                // The master moved: ask the sentinels again, at once.
                reader.conn = None;
                generation = now;
                attempt = 0;
            }
            let conn = match reader.conn.take() {
                Some(c) if !c.is_broken() => c,
                _ => {
                    let wait = if attempt == 0 {
                        Default::default()
                    } else {
                        backoff(attempt)
                    };
                    if super::pause_or_stop(wait, &shutdown).await {
                        return;
                    }
                    attempt = attempt.saturating_add(1);
                    match self.connect_master("ssehub-read", CONNECT_TIMEOUT).await {
                        Ok(mut c) => {
                            self.inner.reconnects.fetch_add(1, Relaxed);
                            if self.reading_from(c.endpoint()) {
                                reader.left_at = reader.position.cursor.parse().ok();
                                reader.unchecked = true;
                                self.check_acked(&mut c).await;
                            }
                            if reader.unchecked {
                                self.check_read(&mut reader, &mut c).await;
                            }
                            self.inner.log.line(format_args!(
                                "redis: reader reconnected, cursor {}",
                                reader.position.cursor
                            ));
                            c
                        }
                        Err(e) => {
                            self.count(Op::Connect);
                            self.down(&e);
                            continue;
                        }
                    }
                }
            };
            let mut conn = conn;
            let moved = async {
                while self.inner.generation.load(Relaxed) == generation {
                    Timer::after(MOVED_POLL).await;
                }
                Some(Err(RedisError::Broken))
            };
            let read = async {
                Some(
                    stream::read(
                        &mut conn,
                        &self.inner.cfg.stream,
                        &reader.position.cursor,
                        READ_COUNT,
                        READ_BLOCK,
                        COMMAND_TIMEOUT,
                    )
                    .await,
                )
            }
            .or(moved)
            .or(async {
                shutdown.wait().await;
                None
            })
            .await;
            let Some(read) = read else { return };
            match read {
                Ok(read) => {
                    attempt = 0;
                    self.up();
                    self.apply(&mut reader, read, &shutdown).await;
                    reader.conn = Some(conn);
                }
                Err(RedisError::Broken) if self.inner.generation.load(Relaxed) != generation => {}
                Err(e) => {
                    self.count(Op::Xread);
                    self.down(&e);
                    // The connection is dropped: a failed exchange leaves it out of step.
                    attempt = attempt.max(1);
                }
            }
        }
    }

    /// Delivers what one read got, after reporting a loss if entries after the cursor
    /// were removed before this node read them ([`stream::Position::advance`]), pacing
    /// itself by the node's writers.
    async fn apply(&self, reader: &mut Reader, read: stream::Read, shutdown: &Shutdown) {
        let hub = &self.inner.hub;
        // Heard from Redis now (delivering may take a while when paced).
        self.state().last_read = Some(Instant::now());
        let before = reader.position.cursor.clone();
        if let Some(n) = reader.position.advance_counted(&read, READ_COUNT) {
            self.inner.gaps.fetch_add(1, Relaxed);
            self.inner.lost_entries.fetch_add(n, Relaxed);
            let next = read
                .entries
                .first()
                .and_then(|e| e.id.parse::<EventId>().ok());
            self.inner.log.line(format_args!(
                "redis: {n} entries around {before} are gone from stream {} (trimmed, deleted, \
                 flushed, or lost in a restart or a failover): subscribers get a lost reset",
                self.inner.cfg.stream
            ));
            // After a restart from `0-0`, entries not after the last delivered are
            // skipped by the hub.
            hub.lost(next);
        }
        for e in &read.entries {
            if let Ok(id) = e.id.parse() {
                reader.recent.push(id);
            }
            if let Some(ids) = marker_ids(e) {
                self.marker(e, &ids, reader.left_at);
                continue;
            }
            match entry_event(e) {
                Ok((id, envelope, event)) => {
                    let mut entry = Retained::encode(id, envelope, &event);
                    // A handover pauses the hub: the entry waits (the old process exits,
                    // or after a rollback it is delivered here as if late).
                    let delivery = loop {
                        match hub.commit_unless_paused(entry) {
                            Ok(d) => break d,
                            Err(back) => entry = back,
                        }
                        if shutdown.is_triggered() {
                            return;
                        }
                        Timer::after(HANDOVER_POLL).await;
                    };
                    if delivery.is_some_and(|d| d.congested()) {
                        self.pace(shutdown).await;
                    }
                }
                Err(why) => {
                    self.count(Op::Decode);
                    self.inner.log.line(format_args!(
                        "redis: skipped an entry that is not an event: {why}"
                    ));
                }
            }
        }
        self.state().cursor.clone_from(&reader.position.cursor);
    }

    /// A loss marker (`acked.rs`): a `lost` reset for this node's subscribers, counted,
    /// when it names entries this node had not read before it left the old master.
    fn marker(&self, e: &stream::Entry, ids: &[EventId], left_at: Option<EventId>) {
        let n = unread(ids, left_at);
        if n == 0 {
            return;
        }
        self.inner.gaps.fetch_add(1, Relaxed);
        self.inner.lost_entries.fetch_add(n, Relaxed);
        self.inner.log.line(format_args!(
            "redis: a node acknowledged {n} entries no reader here read, and the new master              lacks them (loss marker {}): subscribers get a lost reset",
            e.id
        ));
        self.inner.hub.lost(e.id.parse().ok());
    }

    /// Waits while the node's writers are behind, for at most [`PACE_MAX`] per entry
    /// ([`Hub::pace`](crate::hub::Hub::pace), as a single node's publish path paces a
    /// publisher).
    async fn pace(&self, shutdown: &Shutdown) {
        self.inner.hub.pace(PACE_MAX, shutdown).await;
    }

    fn up(&self) {
        let mut s = self.state();
        if !s.up {
            s.up = true;
            s.reason = None;
            if let Some(t) = s.down_since.take() {
                s.down_total += t.elapsed();
            }
            drop(s);
            self.inner.log.line(format_args!("redis: reachable again"));
        }
    }

    fn down(&self, e: &RedisError) {
        self.set_down(explain(e));
    }

    /// The broker is down for `why` (from now, if it was up).
    pub(super) fn set_down(&self, why: String) {
        let mut s = self.state();
        let changed = s.reason.as_deref() != Some(why.as_str());
        if s.up {
            s.down_since = Some(Instant::now());
        }
        s.up = false;
        s.reason = Some(why.clone());
        drop(s);
        if changed {
            self.inner.log.line(format_args!(
                "redis: unavailable: {why}; reconnecting with backoff"
            ));
        }
    }
}
