//! An in-memory stream, and a harness that serves it with the real connection handler,
//! without a socket: for tests, fuzz targets and seeded mutation loops. Not part of the
//! supported API.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

use crate::config::Config;
use crate::hub::{DirectSink, Hub};
use crate::log::Log;
use crate::server::{Conn, Ctx, serve_connection};
use crate::shutdown::Shutdown;

/// A stream whose read side yields fixed input (in pieces of at most `piece` bytes) and
/// then end of stream, and whose write side records everything written.
///
/// The peer behaves like one that sent its input and closed: once the read side has
/// reported end of stream, writes fail with `BrokenPipe`. Reads and writes never wait, so a handler driven
/// by it always finishes.
///
/// # Examples
///
/// ```
/// use ssehub::testing::{Harness, MemStream};
///
/// let h = Harness::new(ssehub::Config::default());
/// let s = MemStream::new(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec());
/// futures_lite::future::block_on(h.serve(s.clone()));
/// assert!(s.written().starts_with(b"HTTP/1.1 200 OK\r\n"));
/// ```
#[derive(Debug, Clone)]
pub struct MemStream {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    input: Vec<u8>,
    pos: usize,
    piece: usize,
    output: Vec<u8>,
    shut: bool,
    /// Whether the read side has reported end of stream.
    eof: bool,
    /// Once the input is read: wait forever (a client that keeps its connection open)
    /// instead of reporting end of stream.
    hold_open: bool,
    /// Offer the hub a direct sink (see [`MemStream::with_direct_sink`]).
    direct: bool,
}

/// Most bytes a `MemStream` records (it drops the rest), so a long stream cannot grow it
/// without bound.
pub const MAX_RECORDED: usize = 1 << 20;

impl MemStream {
    /// A stream that reads `input` in one piece per read call (up to the reader's buffer).
    pub fn new(input: Vec<u8>) -> MemStream {
        MemStream::with_piece(input, usize::MAX)
    }

    /// A stream that hands out at most `piece` bytes per read (at least 1).
    pub fn with_piece(input: Vec<u8>, piece: usize) -> MemStream {
        MemStream {
            inner: Arc::new(Mutex::new(Inner {
                input,
                pos: 0,
                piece: piece.max(1),
                output: Vec::new(),
                shut: false,
                eof: false,
                hold_open: false,
                direct: false,
            })),
        }
    }

    /// A stream that, once its input is read, stays open (reads wait forever) rather
    /// than reporting end of stream: a subscriber that keeps listening.
    pub fn held_open(self) -> MemStream {
        self.lock().hold_open = true;
        self
    }

    /// A stream that offers the hub a direct sink, so that publishes reach it through
    /// direct writes (recorded like any other write) while its writer waits.
    pub fn with_direct_sink(self) -> MemStream {
        self.lock().direct = true;
        self
    }

    /// Everything written so far (up to [`MAX_RECORDED`] bytes).
    pub fn written(&self) -> Vec<u8> {
        self.lock().output.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AsyncRead for MemStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut g = self.lock();
        if g.shut {
            return Poll::Ready(Ok(0));
        }
        let start = g.pos;
        let n = buf.len().min(g.piece).min(g.input.len() - start);
        buf[..n].copy_from_slice(&g.input[start..start + n]);
        g.pos += n;
        if n == 0 && g.hold_open {
            return Poll::Pending;
        }
        if n == 0 && !buf.is_empty() {
            g.eof = true;
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.record(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl MemStream {
    /// Records `buf` as written; fails once the peer is gone.
    fn record(&self, buf: &[u8]) -> io::Result<usize> {
        let mut g = self.lock();
        if g.shut || g.eof {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let room = MAX_RECORDED.saturating_sub(g.output.len()).min(buf.len());
        g.output.extend_from_slice(&buf[..room]);
        Ok(buf.len())
    }
}

impl Conn for MemStream {
    fn shut_down(&self) {
        self.lock().shut = true;
    }

    fn direct_sink(&self) -> Option<Arc<dyn DirectSink>> {
        if self.lock().direct {
            Some(Arc::new(self.clone()))
        } else {
            None
        }
    }
}

impl DirectSink for MemStream {
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        self.record(bytes)
    }

    fn shut_down(&self) {
        self.lock().shut = true;
    }
}

/// The real connection handler, with its own hub, for in-memory streams. Direct writes
/// run at once on the publishing thread.
#[derive(Debug)]
pub struct Harness {
    ctx: Arc<Ctx>,
}

impl Harness {
    /// A handler configured by `config`, logging nothing.
    pub fn new(config: Config) -> Harness {
        let ctx = Ctx::new(config, Log::silent(), Shutdown::new());
        ctx.hub.set_direct_runner(|job| job.run());
        Harness { ctx }
    }

    /// The hub, to publish to the streams being served.
    pub fn hub(&self) -> &Hub {
        &self.ctx.hub
    }

    /// Shuts down as the server does: connections waiting for a request close, the hub
    /// closes every stream after what it has queued.
    pub fn shutdown(&self) {
        self.ctx.shutdown.trigger();
        self.ctx.hub.close();
    }

    /// Serves `stream` as one connection, until it closes (or becomes a stream that
    /// ends).
    pub async fn serve(&self, stream: MemStream) {
        serve_connection(stream, "127.0.0.1:1".parse().expect("address"), &self.ctx).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Command;

    const CORPUS: &[&[u8]] = &[
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /stream?topic=a&lastEventId=3 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 2\r\n\r\n",
        b"POST /publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"data\":\"hi\"}\n",
        b"POST /publish?event=e HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"GET /stats HTTP/1.0\r\n\r\nGET /metrics HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
    ];

    fn harness() -> Harness {
        let Ok(Command::Run(c)) =
            Config::from_args(["--publish-token", "t", "--no-demo"], |_| None)
        else {
            panic!("flags")
        };
        Harness::new(*c)
    }

    fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..rng.usize(1..6) {
            let i = rng.usize(0..=v.len());
            match rng.u8(0..5) {
                0 if i < v.len() => v[i] = rng.u8(..),
                1 => v.insert(i, *b"\r\n\0: \t%+".get(rng.usize(0..9)).unwrap_or(&b'x')),
                2 => v.truncate(i),
                3 if i < v.len() => {
                    v.remove(i);
                }
                _ => {
                    let j = rng.usize(0..=v.len());
                    let (a, b) = (i.min(j), i.max(j));
                    let dup = v[a..b].to_vec();
                    v.splice(a..a, dup);
                }
            }
        }
        v
    }

    /// A bounded, seeded mutation loop over the whole connection handler: it must never
    /// panic, and whatever it writes must start with a status line.
    #[test]
    fn mutated_requests_never_panic_and_always_get_a_status_line() {
        let h = harness();
        for seed in 0..20_000u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let base = CORPUS[rng.usize(0..CORPUS.len())];
            let input = mutate(&mut rng, base);
            let s = MemStream::with_piece(input.clone(), rng.usize(1..64));
            futures_lite::future::block_on(h.serve(s.clone()));
            let out = s.written();
            assert!(
                out.is_empty() || out.starts_with(b"HTTP/1.1 "),
                "seed {seed}: input {:?} gave {:?}",
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&out[..out.len().min(80)])
            );
        }
    }

    #[test]
    fn corpus_requests_are_answered() {
        let h = harness();
        for input in CORPUS {
            let s = MemStream::with_piece(input.to_vec(), 7);
            futures_lite::future::block_on(h.serve(s.clone()));
            let out = String::from_utf8_lossy(&s.written()).into_owned();
            assert!(
                out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.1 204"),
                "{:?} -> {out:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn a_held_stream_gets_direct_writes_through_the_handler() {
        let h = harness();
        let s = MemStream::new(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n".to_vec())
            .held_open()
            .with_direct_sink();
        let driver = async {
            // Let the handler subscribe, write its preamble and park its writer.
            for _ in 0..1000 {
                if h.hub().len() == 1 && !s.written().is_empty() {
                    break;
                }
                futures_lite::future::yield_now().await;
            }
            for _ in 0..10 {
                futures_lite::future::yield_now().await;
            }
            let topic = crate::topic::Topic::new("t").unwrap();
            h.hub()
                .publish(&topic, &crate::sse::Event::new("hi").unwrap());
            h.shutdown();
        };
        futures_lite::future::block_on(futures_lite::future::zip(h.serve(s.clone()), driver));
        let out = String::from_utf8_lossy(&s.written()).into_owned();
        let last = format!("id: {}-1\ndata: hi\n\n", h.hub().epoch());
        assert!(out.ends_with(&last), "{out:?}");
        assert_eq!(h.ctx.stats.snapshot().direct_writes, 1);
    }
}
