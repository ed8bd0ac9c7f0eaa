//! The per-token cap on concurrent streams (`--max-streams-per-token`): streams opened
//! with one token's `sub`, or, without a `sub`, with one token, count against one cap;
//! over it the stream is refused with `429` and `Retry-After` (as Mercure 1.0
//! recommends). A leaked token then cannot hold every connection of the hub, and a
//! page that opens a stream per tab finds out (`ssehub.js` shares one per browser).
//!
//! A stream holds its [`Slot`] from the check to its end; dropping the slot gives it back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::http::response::Response;

/// What `Retry-After` says to a stream refused at its token's cap. **Unit:** seconds.
/// **Why:** a slot frees only when one of the token's own streams ends, which is rarely
/// soon; a client that retries every few seconds costs little and gets in when one does.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Open streams per token key, and how many were refused.
#[derive(Debug)]
pub(super) struct Quota {
    /// Most streams per key; 0: no cap.
    max: u32,
    open: Mutex<HashMap<String, u32>>,
    refused: AtomicU64,
}

/// One open stream's place under its token's cap; given back when dropped.
#[derive(Debug)]
pub(super) struct Slot {
    quota: Arc<Quota>,
    key: String,
}

impl Quota {
    /// A cap of `max` streams per token (0: none).
    pub(super) fn new(max: u32) -> Arc<Quota> {
        Arc::new(Quota {
            max,
            open: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        })
    }

    /// A slot for a stream opened with a token whose `sub` is `sub` (else the token
    /// itself counts), `None` without a cap, or the `429` to answer.
    pub(super) fn take(
        self: &Arc<Self>,
        sub: Option<&str>,
        token: &str,
    ) -> Result<Option<Slot>, Response> {
        if self.max == 0 {
            return Ok(None);
        }
        let key = key(sub, token);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            drop(open);
            self.refused.fetch_add(1, Ordering::Relaxed);
            let whose = if sub.is_some() { "its sub" } else { "it" };
            return Err(Response::text(
                429,
                &format!(
                    "this token already has {} open streams, the most for {whose} (--max-streams-per-token)",
                    self.max
                ),
            )
            .header("Retry-After", RETRY_AFTER_SECS.to_string())
            .close());
        }
        *n += 1;
        Ok(Some(Slot {
            quota: self.clone(),
            key,
        }))
    }

    /// The slot a predecessor's stream held under `key` (see [`Slot::key`]), taken
    /// without the cap's check (the predecessor made it): a handed stream counts
    /// against its token's cap here as it did there. `None` without a cap.
    pub(super) fn adopt(self: &Arc<Self>, key: &str) -> Option<Slot> {
        if self.max == 0 {
            return None;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        *open.entry(key.to_owned()).or_insert(0) += 1;
        Some(Slot {
            quota: self.clone(),
            key: key.to_owned(),
        })
    }

    /// Streams refused at a token's cap since start.
    pub(super) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Slot {
    /// The key it counts under: `sub:` and the token's `sub`, or `token:` and a digest
    /// of the token (never the token itself).
    pub(super) fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.quota.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The key a stream counts under: its token's `sub`, else a digest of the token (the
/// token itself is never kept).
fn key(sub: Option<&str>, token: &str) -> String {
    match sub {
        Some(sub) => format!("sub:{sub}"),
        None => {
            let digest = Sha256::digest(token.as_bytes());
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("token:{hex}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_per_sub_else_per_token_and_slots_come_back() {
        let q = Quota::new(2);
        let a1 = q.take(Some("alice"), "t1").unwrap();
        let _a2 = q.take(Some("alice"), "t2").unwrap();
        let refused = q.take(Some("alice"), "t3").unwrap_err();
        assert_eq!(refused.status, 429);
        assert!(
            refused
                .headers
                .contains(&("Retry-After", RETRY_AFTER_SECS.to_string()))
        );
        assert_eq!(q.refused(), 1);
        // Another sub, and tokens without one, have caps of their own.
        assert!(q.take(Some("bob"), "t1").unwrap().is_some());
        let _t = q.take(None, "x").unwrap();
        let _t2 = q.take(None, "x").unwrap();
        assert_eq!(q.take(None, "x").unwrap_err().status, 429);
        assert!(q.take(None, "y").unwrap().is_some());
        drop(a1);
        assert!(q.take(Some("alice"), "t3").unwrap().is_some());
    }

    #[test]
    fn an_adopted_slot_counts_against_the_cap_like_the_one_it_replaces() {
        let old = Quota::new(2);
        let a = old.take(Some("alice"), "t1").unwrap().unwrap();
        let q = Quota::new(2);
        let adopted = q.adopt(a.key()).unwrap();
        // Over the cap is still adopted (the predecessor allowed it), and counts.
        let _b = q.adopt(a.key()).unwrap();
        assert!(q.take(Some("alice"), "t2").is_err(), "two held: full");
        drop(adopted);
        assert!(q.take(Some("alice"), "t2").unwrap().is_some());
        assert!(
            Quota::new(0).adopt("sub:alice").is_none(),
            "no cap, no slot"
        );
    }

    #[test]
    fn zero_is_no_cap_and_empty_keys_are_freed() {
        let q = Quota::new(0);
        for _ in 0..10 {
            assert!(q.take(Some("a"), "t").unwrap().is_none());
        }
        let q = Quota::new(1);
        drop(q.take(Some("a"), "t").unwrap());
        assert!(q.open.lock().unwrap().is_empty());
        assert_ne!(key(Some("x"), "t"), key(None, "t"));
        assert!(!key(None, "secret").contains("secret"));
    }
}
