//! axum-peer: an SSE broadcast server on tokio + axum, built the way ssehub is, for
//! `scripts/bench.sh` to measure ssehub against. A measuring stick, never a dependency.
//!
//! - `GET /stream`: `text/event-stream`; a `: connected` comment at once, then every
//!   event as `id: N\n[event: E\n]data: ...\n\n`.
//! - `POST /publish` with `Authorization: Bearer TOKEN`: a JSON object
//!   (`Content-Type: application/json`; `data`, `event`, `topic`, `retry`) or a plain-text
//!   body (the data; `?event=` names it), as ssehub takes them. One topic: `topic` is
//!   accepted and ignored. Answers `{"id": N, "delivered_to": K}`.
//! - `GET /health`: `200 ok`.
//!
//! Each subscriber has a bounded channel of [`QUEUE`] events; a publish that finds it
//! full evicts the subscriber at once (its entry is removed, which drops the channel and
//! ends the response stream). Each event is encoded once into one `Bytes` that every
//! subscriber's channel shares. `TCP_NODELAY` on every accepted socket; one tokio worker
//! thread per core.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use bytes::{BufMut, BytesMut};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

/// Events a subscriber may have queued before it is evicted (ssehub's `--queue 100`).
const QUEUE: usize = 100;

/// One subscriber, as the hub holds it: dropping it ends the subscriber's stream.
struct Subscriber {
    tx: mpsc::Sender<Bytes>,
    /// Dropped with the entry: the stream ends at once, without sending what is queued.
    _evict: oneshot::Sender<()>,
}

#[derive(Default)]
struct Hub {
    last_id: u64,
    subscribers: Vec<Subscriber>,
}

struct App {
    hub: Mutex<Hub>,
    token: Option<String>,
}

impl App {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Encodes the event once and offers it to every subscriber; a full (or closed)
    /// channel removes its subscriber. Returns (id, subscribers it was queued for).
    fn broadcast(&self, event: Option<&str>, data: &str, retry: Option<u64>) -> (u64, usize) {
        let mut hub = self.hub();
        hub.last_id += 1;
        let id = hub.last_id;
        let frame = encode(id, event, data, retry);
        hub.subscribers
            .retain(|s| s.tx.try_send(frame.clone()).is_ok());
        (id, hub.subscribers.len())
    }
}

/// `id: N\n[event: E\n][retry: R\n]data: LINE\n...\n`: one `data:` line per line of
/// `data` (CRLF, CR and LF all end a line).
fn encode(id: u64, event: Option<&str>, data: &str, retry: Option<u64>) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 64);
    b.put_slice(format!("id: {id}\n").as_bytes());
    if let Some(e) = event {
        b.put_slice(b"event: ");
        b.put_slice(e.as_bytes());
        b.put_u8(b'\n');
    }
    if let Some(r) = retry {
        b.put_slice(format!("retry: {r}\n").as_bytes());
    }
    for line in data.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
        b.put_slice(b"data: ");
        b.put_slice(line.as_bytes());
        b.put_u8(b'\n');
    }
    b.put_u8(b'\n');
    b.freeze()
}

async fn subscribe(State(app): State<Arc<App>>) -> Response {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (evict, evicted) = oneshot::channel();
    app.hub().subscribers.push(Subscriber { tx, _evict: evict });
    let hello = stream::once(async { Bytes::from_static(b": connected\n\n") });
    let events = hello.chain(ReceiverStream::new(rx)).take_until(evicted);
    let head = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        // An evicted subscriber's stream ends; the connection must close with it.
        (header::CONNECTION, "close"),
    ];
    (head, Body::from_stream(events.map(Ok::<_, Infallible>))).into_response()
}

/// ssehub's JSON publish body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEvent<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
    event: Option<String>,
    retry: Option<u64>,
    #[allow(dead_code)] // one topic
    topic: Option<IgnoredAny>,
}

/// ssehub's plain-text publish parameters.
#[derive(Deserialize)]
struct TextParams {
    event: Option<String>,
    retry: Option<u64>,
    #[allow(dead_code)] // one topic
    topic: Option<String>,
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    (status, why.into()).into_response()
}

async fn publish(
    State(app): State<Arc<App>>,
    Query(params): Query<TextParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = &app.token else {
        return refuse(
            StatusCode::FORBIDDEN,
            "publishing is off: start with --token TOKEN",
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim) != Some(token.as_str()) {
        return refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    let (event, data, retry): (Option<String>, Cow<str>, Option<u64>) = if is_json {
        let ev: JsonEvent = match serde_json::from_slice(&body) {
            Ok(ev) => ev,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
        };
        // A string is sent decoded; any other JSON value as its own text.
        let raw = ev.data.get();
        let data = if raw.starts_with('"') {
            match serde_json::from_str::<String>(raw) {
                Ok(s) => Cow::Owned(s),
                Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
            }
        } else {
            Cow::Borrowed(raw)
        };
        (ev.event, data, ev.retry)
    } else {
        match std::str::from_utf8(&body) {
            Ok(s) => (params.event, Cow::Borrowed(s), params.retry),
            Err(_) => return refuse(StatusCode::BAD_REQUEST, "the body is not UTF-8"),
        }
    };
    if data.contains('\0')
        || event
            .as_deref()
            .is_some_and(|e| e.contains(['\r', '\n', '\0']))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "NUL in data, or a line break in event",
        );
    }
    let (id, delivered_to) = app.broadcast(event.as_deref(), &data, retry);
    Json(serde_json::json!({"id": id, "delivered_to": delivered_to})).into_response()
}

/// `--bind ADDR` (default 127.0.0.1:8080) and `--token T` (publishing is off without it).
fn parse_args() -> Result<(SocketAddr, Option<String>), String> {
    let mut bind = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut token = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            println!("usage: axum-peer [--bind ADDR] [--token TOKEN]");
            std::process::exit(0);
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bind" => bind = value.parse().map_err(|e| format!("--bind {value}: {e}"))?,
            "--token" => token = Some(value),
            _ => return Err(format!("unknown flag {flag} (see --help)")),
        }
    }
    Ok((bind, token))
}

async fn serve(bind: SocketAddr, token: Option<String>) -> std::io::Result<()> {
    let app = Arc::new(App {
        hub: Mutex::default(),
        token,
    });
    let router = Router::new()
        .route("/stream", get(subscribe))
        .route("/publish", post(publish))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(app);
    // The backlog ssehub and the floor listen with (4096, capped by somaxconn): tokio's
    // `TcpListener::bind` listens with 1024, which overflows when 10,000 subscribers
    // connect at once and leaves some of them in SYN retries past the tool's deadline.
    let socket = if bind.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(bind)?;
    let listener = socket.listen(4096)?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    eprintln!("axum-peer: listening on http://{bind}");
    axum::serve(listener, router).await
}

fn main() {
    let (bind, token) = parse_args().unwrap_or_else(|e| {
        eprintln!("axum-peer: {e}");
        std::process::exit(2);
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(serve(bind, token)) {
        eprintln!("axum-peer: {e}");
        std::process::exit(1);
    }
}
