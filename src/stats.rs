//! Counters updated on the hot path with relaxed atomics, never under a lock.
//!
//! [`Stats`] is shared (`Arc`) by the hub, the connection tasks and the producers. Reading
//! a [`Snapshot`] is a handful of atomic loads; `/stats` and `/metrics` render one.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crate::event_id::Resume;

/// Why a subscriber's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Its bounded queue was full when the hub tried to hand it a frame: it was too slow.
    QueueFull,
    /// One write to its socket did not complete within the write timeout.
    WriteTimeout,
    /// The client closed the connection, or the socket failed.
    HungUp,
    /// The server shut down.
    Shutdown,
    /// The client sent more than the stream read allowance after its request: a client
    /// has nothing to send on an open stream, so it is ended rather than read for ever.
    UnexpectedInput,
    /// The token the stream was opened with expired: the client reconnects with a fresh
    /// one instead of reading past its rights.
    TokenExpired,
}

impl Reason {
    /// Every reason, in a fixed order (the order of the counters).
    pub const ALL: [Reason; 6] = [
        Reason::QueueFull,
        Reason::WriteTimeout,
        Reason::HungUp,
        Reason::Shutdown,
        Reason::UnexpectedInput,
        Reason::TokenExpired,
    ];

    /// The label used in logs, `/stats` and `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Reason::QueueFull => "queue_full",
            Reason::WriteTimeout => "write_timeout",
            Reason::HungUp => "hung_up",
            Reason::Shutdown => "shutdown",
            Reason::UnexpectedInput => "unexpected_input",
            Reason::TokenExpired => "token_expired",
        }
    }

    /// Position of this reason in [`Reason::ALL`] and in [`Snapshot::ended`].
    pub fn index(self) -> usize {
        match self {
            Reason::QueueFull => 0,
            Reason::WriteTimeout => 1,
            Reason::HungUp => 2,
            Reason::Shutdown => 3,
            Reason::UnexpectedInput => 4,
            Reason::TokenExpired => 5,
        }
    }
}

/// Why a token was refused (`401`), as counted in `/stats` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthFailure {
    /// `--subscribe-auth required` and the stream request carried no token.
    Missing,
    /// Not a JWT: not three base64url parts, not JSON, claims of the wrong type or over
    /// their size caps.
    Malformed,
    /// The header's `alg` is missing or not the pinned one (`none`, `HS512`, …), or the
    /// token is refused by rule (an access token's `iss` or `aud`).
    NotAllowed,
    /// The signature does not match the key.
    BadSignature,
    /// Past its `exp` (and the leeway).
    Expired,
    /// Before its `nbf` (and the leeway).
    NotYetValid,
}

impl AuthFailure {
    /// Every failure, in a fixed order (the order of the counters).
    pub const ALL: [AuthFailure; 6] = [
        AuthFailure::Missing,
        AuthFailure::Malformed,
        AuthFailure::NotAllowed,
        AuthFailure::BadSignature,
        AuthFailure::Expired,
        AuthFailure::NotYetValid,
    ];

    /// The label used in `/stats` and `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::NotAllowed => "not_allowed",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
        }
    }

    /// Position of this failure in [`AuthFailure::ALL`] and [`Snapshot::auth_failures`].
    pub fn index(self) -> usize {
        match self {
            AuthFailure::Missing => 0,
            AuthFailure::Malformed => 1,
            AuthFailure::NotAllowed => 2,
            AuthFailure::BadSignature => 3,
            AuthFailure::Expired => 4,
            AuthFailure::NotYetValid => 5,
        }
    }
}

/// A step of the history file (`--history-file`) that can fail while the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileOp {
    /// Appending a record: the publish is refused.
    Write,
    /// Syncing it: with `--fsync always` the publish is refused; with `interval` the
    /// next sync tries again.
    Sync,
    /// Compacting the file: it grows on, and compaction is tried again later.
    Compact,
}

impl FileOp {
    /// Every step, in a fixed order (the order of the counters).
    pub const ALL: [FileOp; 3] = [FileOp::Write, FileOp::Sync, FileOp::Compact];

    /// The label used in logs, `/stats` and `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            FileOp::Write => "write",
            FileOp::Sync => "sync",
            FileOp::Compact => "compact",
        }
    }

    /// Position of this step in [`FileOp::ALL`] and in [`Snapshot::history_file_errors`].
    pub fn index(self) -> usize {
        match self {
            FileOp::Write => 0,
            FileOp::Sync => 1,
            FileOp::Compact => 2,
        }
    }
}

/// The error statuses counted one by one; anything else lands in the last slot.
pub const COUNTED_STATUSES: [u16; 19] = [
    400, 401, 403, 404, 405, 408, 411, 412, 413, 414, 415, 417, 421, 429, 431, 500, 501, 503, 505,
];

/// The server's counters. All methods take `&self` and are lock-free.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    clients: AtomicU64,
    peak_clients: AtomicU64,
    connections: AtomicU64,
    events_published: AtomicU64,
    frames_queued: AtomicU64,
    frames_written: AtomicU64,
    bytes_written: AtomicU64,
    write_calls: AtomicU64,
    direct_writes: AtomicU64,
    direct_handoffs: AtomicU64,
    publishes_paced: AtomicU64,
    publishes_replayed: AtomicU64,
    memory_releases: AtomicU64,
    history_file_errors: [AtomicU64; FileOp::ALL.len()],
    ended: [AtomicU64; Reason::ALL.len()],
    auth_failures: [AtomicU64; AuthFailure::ALL.len()],
    resumes: [AtomicU64; 3],
    resets: [AtomicU64; crate::event_id::ResetReason::ALL.len()],
    rejected: [AtomicU64; COUNTED_STATUSES.len() + 1],
}

/// A point-in-time copy of [`Stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Subscribers connected now.
    pub clients: u64,
    /// Most subscribers connected at once.
    pub peak_clients: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// Events published (each one got an id).
    pub events_published: u64,
    /// Frames handed to subscribers, queued or written directly (live events and
    /// heartbeats; replays go straight to the writer).
    pub frames_queued: u64,
    /// Frames fully written to subscriber sockets.
    pub frames_written: u64,
    /// Bytes written to subscriber sockets.
    pub bytes_written: u64,
    /// Write system calls made to subscriber sockets (several frames per call where queued).
    pub write_calls: u64,
    /// Of those, writes made directly while the subscriber's writer waited (see the hub's
    /// "Direct writes"): one frame, or with the frames queued meanwhile.
    pub direct_writes: u64,
    /// Of those, how many the socket did not take whole: the rest went to the writer.
    pub direct_handoffs: u64,
    /// Publish answers held because the writers were behind subscribers that still read.
    pub publishes_paced: u64,
    /// Publishes answered as retries of a retained event (same idempotency key or
    /// publisher id): nothing was published again.
    pub publishes_replayed: u64,
    /// Times free heap pages were given back to the system after a burst of
    /// connections (see [`crate::Server::release_memory_with`]).
    pub memory_releases: u64,
    /// I/O errors on the history file, by step, in [`FileOp::ALL`] order.
    pub history_file_errors: [u64; FileOp::ALL.len()],
    /// Ended streams by reason, in [`Reason::ALL`] order.
    pub ended: [u64; Reason::ALL.len()],
    /// Refused tokens by why, in [`AuthFailure::ALL`] order.
    pub auth_failures: [u64; AuthFailure::ALL.len()],
    /// Streams started, by resume outcome, in [`Resume::LABELS`] order.
    pub resumes: [u64; 3],
    /// Of those, resets by reason, in [`ResetReason::ALL`](crate::event_id::ResetReason::ALL)
    /// order.
    pub resets: [u64; crate::event_id::ResetReason::ALL.len()],
    /// Rejected requests by status, in [`COUNTED_STATUSES`] order, then "other".
    pub rejected: [u64; COUNTED_STATUSES.len() + 1],
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Fresh counters; uptime starts now.
    pub fn new() -> Stats {
        Stats {
            started: Instant::now(),
            clients: AtomicU64::new(0),
            peak_clients: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            events_published: AtomicU64::new(0),
            frames_queued: AtomicU64::new(0),
            frames_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            write_calls: AtomicU64::new(0),
            direct_writes: AtomicU64::new(0),
            direct_handoffs: AtomicU64::new(0),
            publishes_paced: AtomicU64::new(0),
            publishes_replayed: AtomicU64::new(0),
            memory_releases: AtomicU64::new(0),
            history_file_errors: Default::default(),
            ended: Default::default(),
            auth_failures: Default::default(),
            resumes: Default::default(),
            resets: Default::default(),
            rejected: Default::default(),
        }
    }

    /// A subscriber joined.
    pub fn client_joined(&self) {
        let now = self.clients.fetch_add(1, Relaxed) + 1;
        self.peak_clients.fetch_max(now, Relaxed);
    }

    /// A subscriber's stream ended for `reason`.
    pub fn client_left(&self, reason: Reason) {
        self.clients.fetch_sub(1, Relaxed);
        self.ended[reason.index()].fetch_add(1, Relaxed);
    }

    /// A subscription started with `resume`.
    pub fn resumed(&self, resume: Resume) {
        self.resumes[resume.index()].fetch_add(1, Relaxed);
        if let Resume::Reset(reason) = resume {
            self.resets[reason.index()].fetch_add(1, Relaxed);
        }
    }

    /// A TCP connection was accepted.
    pub fn connection_accepted(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    /// Free heap pages were given back to the system.
    pub fn memory_released(&self) {
        self.memory_releases.fetch_add(1, Relaxed);
    }

    /// An event was published.
    pub fn event_published(&self) {
        self.events_published.fetch_add(1, Relaxed);
    }

    /// `n` frames were handed to subscriber queues.
    pub fn frames_queued(&self, n: u64) {
        self.frames_queued.fetch_add(n, Relaxed);
    }

    /// One write call put `frames` whole frames and `bytes` bytes on a socket.
    pub fn wrote(&self, frames: u64, bytes: u64) {
        self.write_calls.fetch_add(1, Relaxed);
        self.frames_written.fetch_add(frames, Relaxed);
        self.bytes_written.fetch_add(bytes, Relaxed);
    }

    /// A direct write job made `calls` writes (one per socket, with the frames queued
    /// for it meanwhile), putting out `frames` whole frames and `bytes` bytes; `handoffs`
    /// of the writes were not taken whole, and their writers got the rest.
    pub fn wrote_direct(&self, calls: u64, frames: u64, bytes: u64, handoffs: u64) {
        self.write_calls.fetch_add(calls, Relaxed);
        self.frames_written.fetch_add(frames, Relaxed);
        self.bytes_written.fetch_add(bytes, Relaxed);
        self.direct_writes.fetch_add(calls, Relaxed);
        self.direct_handoffs.fetch_add(handoffs, Relaxed);
    }

    /// A publish answer was held for congested subscribers.
    pub fn publish_paced(&self) {
        self.publishes_paced.fetch_add(1, Relaxed);
    }

    /// A publish was a retry, answered without publishing.
    pub fn publish_replayed(&self) {
        self.publishes_replayed.fetch_add(1, Relaxed);
    }

    /// A step of the history file failed.
    pub fn history_file_failed(&self, op: FileOp) {
        self.history_file_errors[op.index()].fetch_add(1, Relaxed);
    }

    /// A token was refused (or missing where one is required).
    pub fn auth_failed(&self, why: AuthFailure) {
        self.auth_failures[why.index()].fetch_add(1, Relaxed);
    }

    /// A request was refused with `status`.
    pub fn rejected(&self, status: u16) {
        let i = COUNTED_STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(COUNTED_STATUSES.len());
        self.rejected[i].fetch_add(1, Relaxed);
    }

    /// Subscribers connected now.
    pub fn clients(&self) -> u64 {
        self.clients.load(Relaxed)
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            uptime_secs: self.started.elapsed().as_secs(),
            clients: self.clients.load(Relaxed),
            peak_clients: self.peak_clients.load(Relaxed),
            connections: self.connections.load(Relaxed),
            events_published: self.events_published.load(Relaxed),
            frames_queued: self.frames_queued.load(Relaxed),
            frames_written: self.frames_written.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            write_calls: self.write_calls.load(Relaxed),
            direct_writes: self.direct_writes.load(Relaxed),
            direct_handoffs: self.direct_handoffs.load(Relaxed),
            publishes_paced: self.publishes_paced.load(Relaxed),
            publishes_replayed: self.publishes_replayed.load(Relaxed),
            memory_releases: self.memory_releases.load(Relaxed),
            history_file_errors: std::array::from_fn(|i| self.history_file_errors[i].load(Relaxed)),
            ended: std::array::from_fn(|i| self.ended[i].load(Relaxed)),
            auth_failures: std::array::from_fn(|i| self.auth_failures[i].load(Relaxed)),
            resumes: std::array::from_fn(|i| self.resumes[i].load(Relaxed)),
            resets: std::array::from_fn(|i| self.resets[i].load(Relaxed)),
            rejected: std::array::from_fn(|i| self.rejected[i].load(Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_id::ResetReason;

    #[test]
    fn peak_tracks_the_maximum() {
        let s = Stats::new();
        s.client_joined();
        s.client_joined();
        s.client_left(Reason::HungUp);
        s.client_joined();
        let snap = s.snapshot();
        assert_eq!(snap.clients, 2);
        assert_eq!(snap.peak_clients, 2);
        assert_eq!(snap.ended, [0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn rejected_statuses_land_in_their_slot() {
        let s = Stats::new();
        s.rejected(431);
        s.rejected(431);
        s.rejected(999);
        let snap = s.snapshot();
        let i = COUNTED_STATUSES.iter().position(|&x| x == 431).unwrap();
        assert_eq!(snap.rejected[i], 2);
        assert_eq!(snap.rejected[COUNTED_STATUSES.len()], 1);
    }

    #[test]
    fn resumes_count_outcomes_and_reset_reasons() {
        let s = Stats::new();
        s.resumed(Resume::Initialized);
        s.resumed(Resume::Continue);
        s.resumed(Resume::Reset(ResetReason::OtherEpoch));
        s.resumed(Resume::Reset(ResetReason::OtherEpoch));
        s.resumed(Resume::Reset(ResetReason::Future));
        let snap = s.snapshot();
        assert_eq!(snap.resumes, [1, 3, 1]);
        assert_eq!(snap.resets, [0, 2, 0, 1, 0]);
    }

    #[test]
    fn reason_labels_are_distinct() {
        let labels: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), Reason::ALL.len());
        for r in Reason::ALL {
            assert_eq!(Reason::ALL[r.index()], r);
        }
        let labels: std::collections::HashSet<_> =
            AuthFailure::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), AuthFailure::ALL.len());
        for r in AuthFailure::ALL {
            assert_eq!(AuthFailure::ALL[r.index()], r);
        }
    }

    #[test]
    fn auth_failures_land_in_their_slot() {
        let s = Stats::new();
        s.auth_failed(AuthFailure::Expired);
        s.auth_failed(AuthFailure::Expired);
        s.auth_failed(AuthFailure::Missing);
        assert_eq!(s.snapshot().auth_failures, [1, 0, 0, 0, 2, 0]);
    }

    #[test]
    fn history_file_errors_count_by_step() {
        let s = Stats::new();
        s.history_file_failed(FileOp::Write);
        s.history_file_failed(FileOp::Compact);
        s.history_file_failed(FileOp::Compact);
        assert_eq!(s.snapshot().history_file_errors, [1, 0, 2]);
        for op in FileOp::ALL {
            assert_eq!(FileOp::ALL[op.index()], op);
        }
    }
}
