//! ssehub: a small, fast, hard-to-break Server-Sent Events broadcast hub on smol.
//!
//! Producers publish events; the hub encodes each event **once** into a shared frame and
//! hands it to every subscriber's **bounded** queue without ever waiting; one writer task
//! per subscriber moves frames from its queue to its socket. A subscriber that falls a
//! whole queue behind is evicted at once, so one slow or hostile client cannot hurt the
//! others, and memory stays bounded whatever clients do.
//!
//! # Implementation
//!
//! ```text
//!              accept (async-net)            request head (our parser)
//! TcpListener ───────────────▶ connection task ───────────────▶ router
//!                                                                │
//!   GET /stream ──▶ Hub::subscribe(topics, last_id) ──▶ writer loop ──▶ socket
//!   POST /publish ─▶ bearer auth ─▶ Hub::publish(event)              ▲
//!   GET /health /stats /metrics /                                     │ frames
//!                                                                     │
//! Producers (smol tasks) ──▶ Hub::publish ──▶ encode ONCE ──▶ try_send(frame) to each
//!   demo events, heartbeat, stdin            (shared frame)     bounded async-channel
//!                                                  Full ──▶ evict, shut the socket down
//! ```
//!
//! 1. The accept loop takes a connection, or answers `503` with `Retry-After` at the
//!    connection cap. Accept errors back off (10 ms to 1 s) and never stop the loop.
//! 2. [`http::read::read_head`] reads the request head within the byte limit and the
//!    deadline; [`http::head`] parses it (pure code, no I/O).
//! 3. Short routes answer and keep the connection (keep-alive, pipelining); `GET /stream`
//!    frees the request buffer and becomes the subscriber's writer loop.
//! 4. The writer waits for a frame while watching the read side (a hang-up is noticed at
//!    once), drains what else is queued, and writes the batch with one vectored write
//!    under the write deadline.
//! 5. [`Hub::publish`] assigns the id, encodes, stores the frame in the replay history and
//!    `try_send`s it: `Full` evicts (queue full), `Closed` prunes (hung up).
//! 6. The heartbeat is a constant comment frame broadcast through the same queues, so a
//!    client that stops reading fills up on heartbeats and is evicted.
//!
//! # Limits
//!
//! | limit | default | on violation |
//! |---|---|---|
//! | request line | 8 KiB | `414`, close |
//! | request head | 8 KiB | `431`, close |
//! | header fields | 32 | `431`, close |
//! | request body | 64 KiB | `413`, close |
//! | head/body read deadline | 10 s | `408`, close |
//! | connections | 10,000 | `503` + `Retry-After`, close |
//! | queue per subscriber | 100 frames | evicted (`queue_full`) |
//! | one write to a subscriber | 10 s | evicted (`write_timeout`) |
//! | replay history | 1,000 events / 4 MiB | oldest dropped; a comment tells the client |
//!
//! # Example
//!
//! ```no_run
//! use ssehub::{Config, Log, Server, Shutdown};
//!
//! let shutdown = Shutdown::new();
//! let server = Server::bind(Config::default(), Log::stderr(), shutdown.clone())?;
//! println!("listening on {}", server.local_addr());
//! // Elsewhere: shutdown.trigger() stops it gracefully.
//! let stats = server.run_threaded();
//! println!("served {} connections", stats.connections);
//! # Ok::<(), ssehub::server::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod config;
pub mod cors;
pub mod http;
pub mod hub;
pub mod log;
pub mod metrics;
pub mod page;
pub mod producer;
pub mod publish;
pub mod server;
pub mod shutdown;
pub mod sse;
pub mod stats;
pub mod testing;
pub mod writer;

pub use config::Config;
pub use hub::Hub;
pub use log::Log;
pub use server::Server;
pub use shutdown::Shutdown;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
