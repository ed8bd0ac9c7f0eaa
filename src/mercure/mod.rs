//! Mercure's vocabulary, without I/O: its topic patterns (`selector.rs`: URI templates
//! and URL patterns) and what its requests say (`query.rs`: a subscriber's selectors and
//! resume id, a form publish), and its active subscriptions (`subscriptions.rs`: the
//! registry, the events' topics, the documents). A leaf module: it works on strings, so `topic.rs` can hold
//! its patterns in a subscriber's filter and `auth` can match token selectors the same
//! way. The routes on the hub path are `server/mercure.rs`; DESIGN.md ("Speaking
//! Mercure") and README ("Coming from Mercure") say what is supported and what differs.

pub mod query;
mod selector;
pub mod subscriptions;

pub use selector::{MAX_PATTERN_STEPS, Pattern, PatternError, Syntax};

/// The hub path unless `--mercure-path` names another (`off` disables it).
pub const DEFAULT_PATH: &str = "/.well-known/mercure";
