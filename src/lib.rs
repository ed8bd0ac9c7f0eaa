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
//!    verified by `auth/`), the body read; `input.rs` turns it into an [`Envelope`]
//!    (topics, the first canonical; public or private; the publisher's id;
//!    `envelope.rs`) and an [`Event`] (`sse.rs`); a JWT's `publish` selectors must
//!    cover every topic. `Idempotency-Key` joins the envelope.
//! 4. `port/mod.rs`: [`Port::publish`], the one call every publisher makes, goes to the
//!    backend chosen at start: `port/memory.rs` (the default), `port/file.rs` (with
//!    `port/file/log_file.rs`: the record is appended, under a publish lock of its own,
//!    off the request thread) or `port/redis.rs` (`XADD`; the event comes back through
//!    this node's reader, `port/redis/reader.rs`; with Sentinel, refused while a
//!    failover runs, `port/redis/fence.rs`, and checked on a new master,
//!    `port/redis/acked.rs`). Each assigns the position
//!    (`<epoch>-<offset>`, `event_id.rs`, or Redis's), answers a retry with the first
//!    id, and hands the event to `hub/commit.rs`: encoded once (`sse.rs`), kept in
//!    `hub/history.rs`, and `hub/fan_out.rs` `try_send`s it to every subscriber that
//!    wants one of its topics (a private event only to those whose token's rights
//!    cover one; a subscriber that asked for `?tagged=1` gets the event's tagged twin,
//!    made once per event while one exists): `Full` evicts. When every writer waits, `hub/direct.rs` writes the
//!    frame to their sockets at once instead; `hub/writer_state.rs` is the protocol.
//! 5. `server/writer.rs` (started by `server/stream.rs`, after `server/access.rs` has
//!    verified the subscriber's token, if any, with `auth/`): each subscriber's writer
//!    takes what is queued (`hub/subscription.rs`) and writes it in one `sendmsg`
//!    (`server/socket.rs`); a stream opened with a token ends when it expires. An idle
//!    stream rests without a task (`server/rest.rs`), its read side watched in the
//!    server's own epoll set (`server/watch.rs`).
//!
//! Around them: `config/` (flags), `producer.rs` (demo, heartbeat, stdin, through the
//! port), `stats.rs`
//! (counters, shown by `server/status.rs`), `log.rs`, `shutdown.rs`, `page.rs`.
//! `daemon/` (a leaf) speaks systemd's protocols: `notify.rs` (`sd_notify` datagrams),
//! `listen.rs` (socket activation: listeners inherited through `LISTEN_FDS`, taken
//! without `unsafe`), `probe.rs` (`ssehub probe URL`, a container's health check);
//! `server/watchdog.rs` sends `READY`, `STATUS`, `WATCHDOG` (only while the accept
//! loops and the writers make progress) and `STOPPING`. `server/handover/` is the
//! upgrade on `SIGUSR2`: the listeners, the history and every live stream (socket and
//! state) pass to a successor process over `SCM_RIGHTS` (`wire.rs` holds the
//! snapshot's bytes, `transfer.rs` the socket), or the old process serves on.
//! `auth/` (JWT verification, selectors, where a token comes from) sits just above the
//! leaves it uses (`topic`, `stats`).
//! Dependencies point one way: the leaves (`http/`, `event_id`, `topic`, `sse`, `log`, `daemon`,
//! `stats`, `shutdown`, `page`, `envelope`) import nothing above them (`sse` and
//! `stats` use `event_id`, the lowest); `redis/` and `input` use leaves; `hub/` uses
//! leaves and `auth`; `port/` uses the hub and `redis/`, and is the only module that
//! names a backend; `config` embeds the HTTP and hub limits and the port's choice;
//! `producer` uses the port; `server/` uses everything below it. A test (`tests/layout.rs`) reads the `crate::` paths and
//! fails on a dependency that does not point down, or a source file over 800 lines.
//!
//! # Limits
//!
//! Each limit is a flag; its default, unit and environment twin are in the flag table,
//! [`config::FLAGS`] (which `--help` and README's configuration table print).
//!
//! | limit | set by | on violation |
//! |---|---|---|
//! | request line | `--max-request-line` | `414`, close |
//! | request head | `--max-head-bytes` | `431`, close |
//! | header fields | `--max-headers` | `431`, close |
//! | request body | `--max-body` | `413`, close |
//! | head/body read deadline | `--request-timeout` | `408`, close |
//! | connections | `--max-connections` | `503` + `Retry-After`, close |
//! | queue per subscriber | `--queue` | evicted (`queue_full`) |
//! | one write to a subscriber | `--write-timeout` | evicted (`write_timeout`) |
//! | replay history | `--history`, `--history-bytes` | oldest dropped; a resume from before them gets a `reset` event |
//! | history file (`--history-file`) | about twice the replay caps | compacted (rewritten, synced, renamed) |
//! | token | fixed: 7 KiB (7,168 bytes: the default head and request line keep 1 KiB beside it); 64 selectors per list, 256 bytes each | `401 invalid token: malformed` |
//! | a token's `payload` | fixed: 2,048 bytes as compact JSON ([`auth::MAX_PAYLOAD_BYTES`]) | `401 invalid token: malformed` |
//! | Mercure subscription events (`--mercure-subscriptions`) | fixed: 8 per connect or disconnect ([`mercure::subscriptions::MAX_TRACKED_SELECTORS`]), a queue of 1,024 to the port | more selectors not tracked; a full queue drops the event, counted |
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
//! events) is kept in an append-only file and survives restarts (`port/file/log_file.rs`): a
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
pub mod config;
pub mod daemon;
pub mod envelope;
pub mod event_id;
#[doc(hidden)]
pub mod http;
pub mod hub;
pub mod input;
pub mod log;
pub mod mercure;
mod page;
pub mod port;
mod producer;
pub mod redis;
pub mod server;
pub mod shutdown;
pub mod sse;
pub mod stats;
#[doc(hidden)]
pub mod testing;
pub mod topic;

pub use config::Config;
pub use envelope::Envelope;
pub use event_id::EventId;
pub use hub::Hub;
pub use log::Log;
pub use port::Port;
pub use server::Server;
pub use shutdown::Shutdown;
pub use sse::{Event, Frame};
pub use stats::Snapshot;
pub use topic::{Topic, Topics};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
