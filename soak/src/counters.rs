//! What the run counts: the [`Counters`] the report is built from, per [`Role`] where
//! the checks differ, and each steady subscriber's [`Slot`] for the tail check.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::check::ResetReason;
use crate::histogram::Sum;

/// The kind of a subscriber, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A steady subscriber.
    Steady = 0,
    /// A short-lived churn client.
    Churn = 1,
    /// A client that hangs up and resumes with `Last-Event-ID`.
    Reconnect = 2,
}

/// Counters per [`Role`].
#[derive(Debug, Default)]
pub(crate) struct PerRole {
    /// Missing events no reset announced (failures).
    pub(crate) gaps: AtomicU64,
    /// Missing events a reset event announced before them.
    pub(crate) announced_gaps: AtomicU64,
    /// Events seen twice.
    pub(crate) duplicates: AtomicU64,
    /// Events older than one already seen.
    pub(crate) out_of_order: AtomicU64,
}

/// All counters of a run.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Checks per role.
    pub(crate) roles: [PerRole; 3],
    /// Steady clients that got a `200 text/event-stream` head.
    pub(crate) connected: AtomicU64,
    /// Steady clients connected right now.
    pub(crate) connected_now: AtomicU64,
    /// Steady clients that could not connect.
    pub(crate) connect_failures: AtomicU64,
    /// Steady clients whose stream the server closed.
    pub(crate) dropped: AtomicU64,
    /// Initial (steady and slow) clients that connected or failed.
    pub(crate) initial_resolved: AtomicU64,
    /// Own events received by steady and churn clients.
    pub(crate) received: Sum,
    /// Events received by all subscribers that were not the tool's own.
    pub(crate) foreign: Sum,
    /// Comment lines received (heartbeats and others).
    pub(crate) comments: Sum,
    /// Body bytes received by subscribers.
    pub(crate) bytes: Sum,
    /// Events without a `seq` in their data (`--no-publish`: not checked).
    pub(crate) unsequenced: AtomicU64,
    /// Reset events received, by reason (in `check::ResetReason::ALL` order).
    pub(crate) resets: [AtomicU64; ResetReason::ALL.len()],
    /// Reset events other than `lost` on streams that sent no `Last-Event-ID` (never
    /// expected).
    pub(crate) unexpected_resets: AtomicU64,
    /// Events published (answered 200).
    pub(crate) published: AtomicU64,
    /// Failed publish requests.
    pub(crate) publish_errors: AtomicU64,
    /// Sum of `delivered_to` in publish answers.
    pub(crate) delivered_to: AtomicU64,
    /// Slow clients that connected and sent their request.
    pub(crate) slow_connected: AtomicU64,
    /// Slow clients that could not connect.
    pub(crate) slow_failed: AtomicU64,
    /// Slow clients whose connection the server closed.
    pub(crate) slow_evicted: AtomicU64,
    /// Slow clients still served at the check.
    pub(crate) slow_not_evicted: AtomicU64,
    /// Slow clients whose check finished.
    pub(crate) slow_done: AtomicU64,
    /// Bytes slow clients drained at the check.
    pub(crate) slow_drained_bytes: AtomicU64,
    /// Churn sessions that connected.
    pub(crate) churn_sessions: AtomicU64,
    /// Churn sessions that could not connect.
    pub(crate) churn_failed: AtomicU64,
    /// Churn sessions the server closed early.
    pub(crate) churn_dropped: AtomicU64,
    /// Reconnect sessions started.
    pub(crate) reconnect_sessions: AtomicU64,
    /// Reconnections made with a `Last-Event-ID`.
    pub(crate) reconnects: AtomicU64,
    /// Reconnections after which at least one own event arrived (continuity checked).
    pub(crate) reconnects_checked: AtomicU64,
    /// Reconnect sessions that could not connect or were closed by the server.
    pub(crate) reconnect_failed: AtomicU64,
    /// Reconnect sessions that saw no event id before hanging up (nothing to resume).
    pub(crate) reconnect_no_id: AtomicU64,
    /// Churn and reconnect sessions alive.
    pub(crate) in_flight: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Reads a counter.
pub(crate) fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// State of a steady subscriber, visible to the tail check. On a cache line of its own:
/// the slots of subscribers served by different threads do not share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Slot {
    /// 0 pending, 1 connected, 2 failed, 3 closed by the server, 4 stopped.
    pub(crate) state: AtomicU8,
    /// The first sequence number it must see.
    pub(crate) must_from: AtomicU64,
    /// The newest own sequence number it saw (0: none).
    pub(crate) last_seq: AtomicU64,
}

/// [`Slot::state`] of a subscriber that got its stream.
pub(crate) const CONNECTED: u8 = 1;
