//! A small Redis client of our own, on async-net: RESP2 (`resp.rs`), the address and
//! credentials (`url.rs`), one logged-in connection with pipelined, time-bounded
//! exchanges (`conn.rs`), the stream commands the hub uses (`stream.rs`), and Sentinel
//! (`sentinel.rs`: where the master is, and when it moves).
//!
//! Why not the `redis` crate: with smol support it still pulls in tokio and about 40
//! other crates, and its default response timeout breaks `XREAD BLOCK`. What the hub
//! needs is a handful of commands (`AUTH`, `SELECT`, `CLIENT SETNAME`, `XADD`, `XREAD`,
//! `XRANGE`, `XREVRANGE`, `PING`, `WAIT`, `ROLE`, `SENTINEL`) on a few connections, over
//! TCP, TLS (`tls.rs`, the `tls` feature) or a unix socket.

mod conn;
pub mod resp;
pub mod sentinel;
pub mod stream;
#[cfg(feature = "tls")]
pub mod tls;
mod url;

pub use conn::{Connection, ErrorKind, RedisError, check};
pub use url::{DEFAULT_PORT, DEFAULT_SENTINEL_PORT, Endpoint, RedisUrl, Sentinels, TlsFiles};
