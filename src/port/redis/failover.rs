//! Following the master through Sentinel failovers.
//!
//! Three signals say the master moved, and each makes the node ask the sentinels again
//! (in [`Connection::connect`], which checks `ROLE` on the answer):
//!
//! - a `+switch-master` message for our master on a sentinel's pub/sub (this watcher,
//!   subscribed to one sentinel at a time, the next one after a failure, with backoff);
//! - a `READONLY` answer to a publish (the master was demoted to a replica);
//! - the connection breaking (the master died), or a `ROLE` that is no longer master.
//!
//! The first two bump the broker's generation: the writer and the reader drop the
//! connections made before it. From the moment the master is lost until the reader
//! reads from the new one, the broker is down (`/health` 503, publishing 503 with
//! `Retry-After`). The reader's first read on the new master runs the usual loss check
//! ([`stream::Position`](crate::redis::stream::Position)) from the node's cursor: entries
//! this node read that the new master lacks (asynchronous replication lost them) are a
//! `lost` reset for its subscribers, and are counted.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_lite::FutureExt;

use super::{Broker, COMMAND_TIMEOUT, CONNECT_TIMEOUT, Op, backoff, explain};
use crate::redis::sentinel;
use crate::redis::{Endpoint, RedisError};
use crate::shutdown::Shutdown;

/// How long the watcher waits for a message before it pings its sentinel. **Unit:**
/// seconds. **Why:** a sentinel that went away silently is noticed within two of these.
pub const SENTINEL_PING: Duration = Duration::from_secs(2);

impl Broker {
    /// Listens for `+switch-master` on the sentinels until `shutdown`, one sentinel at a
    /// time, moving to the next with backoff after a failure.
    pub async fn watch_sentinels(self, shutdown: Shutdown) {
        let Some(s) = self.inner.cfg.url.sentinel.clone() else {
            return;
        };
        let mut attempt = 0u32;
        let mut next = 0usize;
        loop {
            let addr = &s.addrs[next % s.addrs.len()];
            next += 1;
            let watched = async {
                let mut c = sentinel::connect(&s, addr, CONNECT_TIMEOUT).await?;
                sentinel::subscribe(&mut c, COMMAND_TIMEOUT).await?;
                attempt = 0;
                let mut quiet = 0;
                loop {
                    match c.next_push(SENTINEL_PING).await? {
                        Some(push) => {
                            quiet = 0;
                            if let Some((host, port)) = sentinel::switched(&push, &s.master) {
                                self.switched_to(&Endpoint::Tcp(host, port));
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
                    "redis: sentinel {}:{}: {}; trying the next",
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

    /// A sentinel announced a new master: the broker is down until the reader reads
    /// from it, and the connections made before are dropped.
    fn switched_to(&self, to: &Endpoint) {
        self.inner.log.line(format_args!(
            "redis: the sentinels switched the master to {to}: following"
        ));
        self.moved();
        self.set_down(format!("failover: the master moved to {to}; reconnecting"));
    }

    /// The master moved (or may have): connections made before are dropped, and the
    /// writer may reconnect at once.
    pub(super) fn moved(&self) {
        self.inner.generation.fetch_add(1, Relaxed);
        let mut s = self.state();
        s.writer_retry_at = None;
        s.writer_attempts = 0;
    }

    /// The reader connected to `master`: a failover if it is not the one it read from.
    pub(super) fn reading_from(&self, master: &Endpoint) {
        let now = master.to_string();
        let mut s = self.state();
        let before = s.master.replace(now.clone());
        drop(s);
        if before.as_deref().is_some_and(|b| b != now) {
            self.inner.failovers.fetch_add(1, Relaxed);
            self.inner.log.line(format_args!(
                "redis: reading from the new master {now} (was {}); checking the cursor there",
                before.unwrap_or_default()
            ));
        }
    }
}
