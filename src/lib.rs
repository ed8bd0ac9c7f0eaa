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
//!   POST /publish ─▶ token check ─▶ Hub::publish(event)              ▲
//!   GET /health /stats /metrics /                                     │ frames
//!                                                                     │
//! Producers (smol tasks) ──▶ Hub::publish ──▶ encode ONCE ──▶ try_send(frame) to each
//!   demo events, heartbeat, stdin            (shared frame)     bounded async-channel
//!                                                  Full ──▶ evict, shut the socket down
//! ```
//!
//! # The files, in the order an event passes through them
//!
//! A published event enters as a request and leaves as bytes on each subscriber's socket:
//!
//! 1. `server/accept.rs`: the accept loop takes the publisher's connection (or answers
//!    `503` with `Retry-After` at the connection cap; accept errors back off).
//! 2. `server/connection.rs` with `http/` (`read.rs`, `head.rs`, `framing.rs`, `target.rs`): the head
//!    is read within its byte limit and deadline and parsed; `server/router.rs` maps
//!    method × path to a route.
//! 3. `server/publish.rs`: the bearer token is checked (the static token, or a JWT
//!    verified by `auth/`), the body read; `publish.rs` turns it into a [`Topic`] and an
//!    [`Event`] (`topic.rs`, `sse.rs`), public or private; a JWT's `publish` selectors
//!    must cover the topic.
//! 4. `hub/mod.rs`: [`Hub::publish`] assigns the id (`<epoch>-<offset>`, `event_id.rs`),
//!    encodes the event once (`sse.rs`), with `--history-file` appends it to the file first
//!    (`hub/log_writer.rs`, `hub/log_file.rs`, under a publish lock of its own, off the
//!    request thread), keeps the frame in `hub/history.rs`, and `try_send`s it to every
//!    matching subscriber (a private event only those whose token's rights cover its
//!    topic): `Full` evicts. When every writer waits, `hub/direct.rs` writes the frame to
//!    their sockets at once instead; `hub/writer_state.rs` is the protocol.
//! 5. `server/writer.rs` (started by `server/stream.rs`, after `server/access.rs` has
//!    verified the subscriber's token, if any, with `auth/`): each subscriber's writer
//!    takes what is queued (`hub/subscription.rs`) and writes it in one `sendmsg`
//!    (`server/socket.rs`); a stream opened with a token ends when it expires.
//!
//! Around them: `config.rs` (flags), `producer.rs` (demo, heartbeat, stdin), `stats.rs`
//! (counters, shown by `server/status.rs`), `log.rs`, `shutdown.rs`, `page.rs`.
//! `auth/` (JWT verification, selectors, where a token comes from) sits just above the
//! leaves it uses (`topic`, `stats`).
//! Dependencies point one way: the leaves (`http/`, `event_id`, `topic`, `sse`, `log`,
//! `stats`, `shutdown`, `page`) import nothing above them (`sse` and `stats` use
//! `event_id`, the lowest); `redis/` and `publish` use leaves; `hub/` uses leaves and
//! `auth`; `config` embeds the HTTP and hub limits; `producer` uses the hub; `server/`
//! uses everything below it. A test (`tests/layout.rs`) reads the `crate::` paths and
//! fails on a dependency that does not point down, or a source file over 800 lines.
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
//! | replay history | 1,000 events / 4 MiB | oldest dropped; a resume from before them gets a `reset` event |
//! | history file (`--history-file`) | about twice the replay caps | compacted (rewritten, synced, renamed) |
//! | token | 7 KiB (7,168 bytes: the default head and request line keep 1 KiB beside it); 64 selectors per list, 256 bytes each | `401 invalid token: malformed` |
//!
//! # Ids and resuming
//!
//! An id is opaque text, `<epoch>-<offset>` ([`EventId`]): the epoch is the history's
//! start time in Unix milliseconds, fixed for the process's life, the offset dense from 1,
//! so a restart never issues an id twice. A client resuming with `Last-Event-ID` (or
//! `?lastEventId=`) gets exactly the retained events after its id when the id is of this
//! history and nothing after it was dropped (`continue`). Otherwise the stream starts with
//! a named `event: reset` (no `id:` line) whose one-line JSON data says why (`evicted`,
//! `other-epoch`, `unknown`, `future`), what the client sent and where the replay starts;
//! then every retained event certainly after the client's position (all of them for
//! `evicted` and `other-epoch`, none for ids that cannot be placed), then live. Without an
//! id the stream starts live (`initialized`). The outcome is also in the `SSE-Resume`
//! response header and counted in `/metrics` (`ssehub_resumes_total`,
//! `ssehub_resets_total`). A browser's `EventSource` discards comments, so the reset is an
//! event an application can listen to. With `--history-file` the history (epoch, offsets,
//! events) is kept in an append-only file and survives restarts (`hub/log_file.rs`): a
//! client resuming across a restart continues; a publish the file cannot take is
//! answered `503`.
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

pub mod auth;
pub mod broker;
pub mod config;
pub mod event_id;
#[doc(hidden)]
pub mod http;
pub mod hub;
pub mod log;
mod page;
mod producer;
pub mod publish;
pub mod redis;
pub mod server;
pub mod shutdown;
pub mod sse;
pub mod stats;
#[doc(hidden)]
pub mod testing;
pub mod topic;

pub use config::Config;
pub use event_id::EventId;
pub use hub::Hub;
pub use log::Log;
pub use server::Server;
pub use shutdown::Shutdown;
pub use sse::{Event, Frame};
pub use stats::Snapshot;
pub use topic::{Topic, Topics};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
