//! Shutdown signalling and completion tracking, built on `async-channel`.
//!
//! A [`Shutdown`] is a cloneable "stop now" signal: [`Shutdown::trigger`] closes a channel
//! that nobody ever sends on, and every clone waiting in [`Shutdown::wait`] wakes up.
//!
//! A [`Guard`] tracks completion: every task holds a clone, and
//! [`GuardWait::wait_all_dropped`] finishes when the last clone is gone (the channel's last
//! sender dropped), without counting anything by hand.

use async_channel::{Receiver, Sender};

/// A cloneable, level-triggered stop signal.
///
/// # Examples
///
/// ```
/// let stop = ssehub::Shutdown::new();
/// let seen = stop.clone();
/// assert!(!seen.is_triggered());
/// stop.trigger();
/// futures_lite::future::block_on(seen.wait()); // returns at once
/// assert!(seen.is_triggered());
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Shutdown {
        let (tx, rx) = async_channel::bounded(1);
        Shutdown { tx, rx }
    }

    /// Fires the signal (idempotent).
    pub fn trigger(&self) {
        self.tx.close();
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        self.tx.is_closed()
    }

    /// Waits until the signal fires.
    pub async fn wait(&self) {
        // Nothing is ever sent: recv only returns once the channel is closed.
        let _ = self.rx.recv().await;
    }
}

/// Completion tracking: clone one into every task that must finish before shutdown ends.
#[derive(Debug, Clone)]
pub struct Guard {
    _tx: Sender<()>,
}

/// The waiting side of a [`Guard`].
#[derive(Debug)]
pub struct GuardWait {
    rx: Receiver<()>,
}

impl Guard {
    /// A guard and the handle that waits for all its clones to drop.
    pub fn new() -> (Guard, GuardWait) {
        let (tx, rx) = async_channel::bounded(1);
        (Guard { _tx: tx }, GuardWait { rx })
    }
}

impl GuardWait {
    /// Waits until every [`Guard`] clone has been dropped.
    pub async fn wait_all_dropped(&self) {
        let _ = self.rx.recv().await;
    }

    /// How many guard clones are alive.
    pub fn alive(&self) -> usize {
        self.rx.sender_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;

    #[test]
    fn guard_wait_ends_when_last_clone_drops() {
        let (g, w) = Guard::new();
        let g2 = g.clone();
        assert_eq!(w.alive(), 2);
        drop(g);
        assert!(future::block_on(future::poll_once(w.wait_all_dropped())).is_none());
        drop(g2);
        future::block_on(w.wait_all_dropped());
    }

    #[test]
    fn trigger_wakes_every_clone() {
        let s = Shutdown::new();
        let c = s.clone();
        assert!(future::block_on(future::poll_once(c.wait())).is_none());
        s.trigger();
        s.trigger();
        future::block_on(c.wait());
    }
}
