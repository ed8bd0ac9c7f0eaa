//! A one-shot [`Signal`] and the waits that end when it fires, a deadline passes or the
//! work is done; the wall clock in microseconds. Imports nothing from the crate.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_channel::{Receiver, Sender};
use async_io::Timer;
use futures_lite::{Future, FutureExt};

/// A one-shot broadcast signal.
#[derive(Debug)]
pub(crate) struct Signal {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Default for Signal {
    fn default() -> Self {
        let (tx, rx) = async_channel::bounded(1);
        Signal { tx, rx }
    }
}

impl Signal {
    /// Fires the signal (idempotent).
    pub(crate) fn fire(&self) {
        self.tx.close();
    }

    /// Whether it has fired.
    pub(crate) fn fired(&self) -> bool {
        self.rx.is_closed()
    }

    /// Waits until it fires.
    pub(crate) async fn wait(&self) {
        let _ = self.rx.recv().await;
    }
}

/// Runs `fut` until it finishes (`Some`), `stop` fires or `deadline` passes (`None`).
pub(crate) async fn until<T>(
    fut: impl Future<Output = T>,
    stop: &Signal,
    deadline: Option<Instant>,
) -> Option<T> {
    async { Some(fut.await) }
        .or(async {
            stop.wait().await;
            None
        })
        .or(async {
            match deadline {
                Some(d) => {
                    Timer::at(d).await;
                }
                None => futures_lite::future::pending::<()>().await,
            }
            None
        })
        .await
}

/// Sleeps until `at`; false when `stop` fired first.
pub(crate) async fn sleep_until(at: Instant, stop: &Signal) -> bool {
    until(Timer::at(at), stop, None).await.is_some()
}

/// Microseconds since the Unix epoch.
pub(crate) fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
