//! Following the master through Sentinel failovers, without acknowledging what a clean
//! failover would lose, and telling every node of what a failover lost unseen.
//!
//! Signals that the master moved, each making the node connect again:
//!
//! - a `+promoted-slave` or `+switch-master` for our master on **any** sentinel's
//!   pub/sub (one watcher per sentinel, each reconnecting with backoff: only the sentinel
//!   that leads a failover announces its steps and the promotion). The master it names
//!   is tried first ([`Broker::connect_master`]): the other sentinels still name the
//!   old one until they hear of the switch, and the old one still says `ROLE` master
//!   until it is turned into a replica;
//! - a `READONLY` answer to a publish (the master was demoted to a replica);
//! - the connection breaking (the master died), or a `ROLE` that is no longer master.
//!
//! From a failover's first step until the promotion, its end, or its
//! `failover-timeout`, publishing is fenced (`fence.rs`). From the moment the master is
//! lost until the reader reads from the new one, the broker is down (`/health` 503,
//! publishing 503 with `Retry-After`). Before its first read on the new master the
//! reader checks the ids it read lately there (a missing one is a `lost` reset, counted
//! exactly), and the node checks what it acknowledged lately (a missing one becomes a
//! loss marker every node reads): `acked.rs`.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_lite::FutureExt;

use super::acked::{MARKER_FIELD, MARKER_IDS, marker_fields};
use super::{Broker, COMMAND_TIMEOUT, CONNECT_TIMEOUT, Op, Reader, backoff, explain};
use crate::event_id::EventId;
use crate::redis::sentinel::{self, Notice};
use crate::redis::{Connection, Endpoint, RedisError, stream};
use crate::shutdown::Shutdown;

/// How long the watcher waits for a message before it pings its sentinel. **Unit:**
/// seconds. **Why:** a sentinel that went away silently is noticed within two of these.
pub const SENTINEL_PING: Duration = Duration::from_secs(2);

impl Broker {
    /// Listens to sentinel `i` (of the URL's list) until `shutdown`, connecting again
    /// with backoff after a failure.
    pub async fn watch_sentinel(self, i: usize, shutdown: Shutdown) {
        let Some(s) = self.inner.cfg.url.sentinel.clone() else {
            return;
        };
        let Some(addr) = s.addrs.get(i).cloned() else {
            return;
        };
        let tls = self.inner.cfg.url.tls.clone();
        let mut attempt = 0u32;
        loop {
            let watched = async {
                let mut c = sentinel::connect(&s, &addr, tls.as_deref(), CONNECT_TIMEOUT).await?;
                let timeout = sentinel::failover_timeout(&mut c, &s.master, COMMAND_TIMEOUT)
                    .await
                    .unwrap_or(sentinel::DEFAULT_FAILOVER_TIMEOUT);
                sentinel::subscribe(&mut c, COMMAND_TIMEOUT).await?;
                attempt = 0;
                let mut quiet = 0;
                loop {
                    match c.next_push(SENTINEL_PING).await? {
                        Some(push) => {
                            quiet = 0;
                            if let Some(n) = sentinel::notice(&push, &s.master) {
                                self.heard(i, n, timeout);
                            }
                        }
                        None if quiet == 0 => {
                            quiet = 1;
                            c.send(&["PING"]).await?;
                        }
                        None => return Err::<(), _>(RedisError::Timeout),
                    }
                }
            }
            .or(async {
                shutdown.wait().await;
                Ok(())
            })
            .await;
            if shutdown.is_triggered() {
                return;
            }
            if let Err(e) = watched {
                self.count(Op::Connect);
                self.inner.log.line(format_args!(
                    "redis: sentinel {}:{}: {}; connecting again",
                    addr.0,
                    addr.1,
                    explain(&e)
                ));
            }
            attempt = attempt.saturating_add(1);
            if super::pause_or_stop(backoff(attempt), &shutdown).await {
                return;
            }
        }
    }

    /// What sentinel `i` said about our master (its `failover-timeout` is `timeout`).
    fn heard(&self, i: usize, notice: Notice, timeout: Duration) {
        match notice {
            Notice::Failing => {
                if !self.inner.fence.is_up() {
                    self.inner.log.line(format_args!(
                        "redis: a sentinel started a failover of the master: publishing is \
                         refused (503) until the promotion"
                    ));
                }
                self.inner.fence.raise(i, timeout);
            }
            Notice::Over => self.inner.fence.lower(i),
            Notice::Moved(host, port) => {
                self.inner.fence.lower_all();
                self.switched_to(Endpoint::Tcp(host, port));
            }
        }
    }

    /// A sentinel announced a new master: the broker is down until the reader reads
    /// from it, and the connections made before are dropped (once per new master: every
    /// sentinel announces the switch).
    fn switched_to(&self, to: Endpoint) {
        let mut hint = self.inner.hint.lock().unwrap_or_else(|p| p.into_inner());
        if hint.as_ref() == Some(&to) {
            return;
        }
        *hint = Some(to.clone());
        drop(hint);
        self.inner.log.line(format_args!(
            "redis: the sentinels promoted {to}: following"
        ));
        self.moved();
        self.set_down(format!("failover: the master moved to {to}; reconnecting"));
    }

    /// Connects to the master: first the one a sentinel last announced (it must say
    /// `ROLE` master; within [`sentinel::SENTINEL_TIMEOUT`]), else the one the sentinels
    /// name when asked.
    ///
    /// # Errors
    ///
    /// As [`Connection::connect`].
    pub(super) async fn connect_master(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Connection, RedisError> {
        let url = &self.inner.cfg.url;
        let hint = self
            .inner
            .hint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(h) = hint
            && let Ok(c) =
                Connection::connect_to(url, &h, name, timeout.min(sentinel::SENTINEL_TIMEOUT)).await
        {
            return Ok(c);
        }
        Connection::connect(url, name, timeout).await
    }

    /// The master moved (or may have): connections made before are dropped, and the
    /// writer may reconnect at once.
    pub(super) fn moved(&self) {
        self.inner.generation.fetch_add(1, Relaxed);
        let mut s = self.state();
        s.writer_retry_at = None;
        s.writer_attempts = 0;
    }

    /// The reader connected to `master`: whether it is another master than the one it
    /// read from (a failover).
    pub(super) fn reading_from(&self, master: &Endpoint) -> bool {
        let now = master.to_string();
        let mut s = self.state();
        let before = s.master.replace(now.clone());
        drop(s);
        let moved = before.as_deref().is_some_and(|b| b != now);
        if moved {
            self.inner.failovers.fetch_add(1, Relaxed);
            self.inner.log.line(format_args!(
                "redis: reading from the new master {now} (was {}); checking the cursor there",
                before.unwrap_or_default()
            ));
        }
        moved
    }

    /// Checks the ids the reader read lately against the new master on `conn`: those it
    /// lacks are a `lost` reset for this node's subscribers, counted. Then the reader's
    /// count of entries-added starts again from the new master's (see `acked.rs` for
    /// why). After a failure the check is made again on the next connection.
    pub(super) async fn check_read(&self, reader: &mut Reader, conn: &mut Connection) {
        let ids = reader.recent.ids();
        let text: Vec<String> = ids.iter().map(EventId::to_string).collect();
        let gone = if text.is_empty() {
            Ok(Vec::new())
        } else {
            stream::missing(conn, &self.inner.cfg.stream, &text, COMMAND_TIMEOUT).await
        };
        let gone = match gone {
            Ok(g) => g,
            Err(e) => {
                // Meanwhile the reader's rule falls back to "the cursor's entry is gone".
                reader.position.seen = None;
                self.count(Op::Xrange);
                self.inner.log.line(format_args!(
                    "redis: checking the entries read lately on the new master failed: {}",
                    explain(&e)
                ));
                return;
            }
        };
        reader.unchecked = false;
        reader.recent.clear();
        reader.position.seen = None;
        if gone.is_empty() {
            return;
        }
        let n = gone.len() as u64;
        self.inner.gaps.fetch_add(1, Relaxed);
        self.inner.lost_entries.fetch_add(n, Relaxed);
        self.inner.log.line(format_args!(
            "redis: {n} entries this node read are missing on the new master (lost in the \
             failover): subscribers get a lost reset"
        ));
        self.inner.hub.lost(None);
    }

    /// Checks the ids this node acknowledged lately against the new master on `conn`,
    /// and adds a loss marker for those it lacks (see `acked.rs`). A failure is logged:
    /// the ids are then not checked again.
    pub(super) async fn check_acked(&self, conn: &mut Connection) {
        let ids = self.inner.acked.take();
        if ids.is_empty() {
            return;
        }
        let cfg = &self.inner.cfg;
        let text: Vec<String> = ids.iter().map(EventId::to_string).collect();
        let checked = async {
            let gone = stream::missing(conn, &cfg.stream, &text, COMMAND_TIMEOUT).await?;
            let gone: Vec<EventId> = gone.iter().filter_map(|g| g.parse().ok()).collect();
            if gone.is_empty() {
                return Ok(gone);
            }
            let (n, list) = marker_fields(&gone);
            let fields: [(&[u8], &[u8]); 2] = [
                (MARKER_FIELD.as_bytes(), n.as_bytes()),
                (MARKER_IDS.as_bytes(), list.as_bytes()),
            ];
            stream::xadd(conn, &cfg.stream, cfg.maxlen, &fields, COMMAND_TIMEOUT).await?;
            self.inner.loss_markers.fetch_add(1, Relaxed);
            Ok::<_, RedisError>(gone)
        }
        .await;
        match checked {
            Ok(gone) if gone.is_empty() => {}
            Ok(gone) => self.inner.log.line(format_args!(
                "redis: {} of the {} entries this node acknowledged lately are missing on \
                 the new master: a loss marker tells every node",
                gone.len(),
                ids.len()
            )),
            Err(e) => {
                self.count(Op::Xrange);
                self.inner.log.line(format_args!(
                    "redis: checking {} acknowledged entries on the new master failed: {}",
                    ids.len(),
                    explain(&e)
                ));
            }
        }
    }
}
