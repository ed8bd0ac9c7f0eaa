//! The socket: the connection type the handler serves ([`Conn`]), the TCP stream as the
//! server holds it (one pointer), its `sendmsg` writes, and its direct sink.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use async_net::TcpStream;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt};

use crate::hub::DirectSink;

/// A byte stream the connection handler can serve: a TCP stream, or an in-memory stream
/// in tests and fuzz targets.
pub(crate) trait Conn:
    AsyncRead + AsyncWrite + Clone + Unpin + Send + Sync + 'static
{
    /// Shuts both directions down, so that a task blocked on the stream wakes up.
    fn shut_down(&self);

    /// Whether a read may make progress, without reading: lets an idle subscriber's
    /// writer watch its read side without a `read` system call on every wake-up.
    /// `Ready` may be spurious; the default is always `Ready`.
    fn poll_readable(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The socket as the hub may write it directly while the subscriber's writer waits
    /// (see the hub's "Direct writes"); `None` (the default) keeps every frame queued.
    fn direct_sink(&self) -> Option<Arc<dyn DirectSink>> {
        None
    }
}

/// A TCP connection as the handler holds it: one pointer. (`async_net::TcpStream` also
/// caches two readiness futures, 120 bytes, and every subscriber's task holds its stream.)
#[derive(Debug, Clone)]
pub(crate) struct TcpConn(Arc<Async<std::net::TcpStream>>);

impl From<TcpStream> for TcpConn {
    fn from(stream: TcpStream) -> TcpConn {
        TcpConn(stream.into())
    }
}

impl AsyncRead for TcpConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }

    /// `sendmsg` rather than `writev`: the socket call skips the file-position lock and
    /// the VFS layer that `writev` goes through (`vfs_writev` + `fdget_pos` were 3–5 % of
    /// the server's samples in the fan-out profiles), and `MSG_NOSIGNAL` makes a gone peer
    /// an error, never a signal.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        use rustix::io::Errno;
        use rustix::net::{SendAncillaryBuffer, SendFlags};
        loop {
            let sent = rustix::net::sendmsg(
                self.0.get_ref(),
                bufs,
                &mut SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            );
            match sent {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
            // Would block: wait for the reactor to see the socket writable, then retry.
            match self.0.poll_writable(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_close(cx)
    }
}

impl Conn for TcpConn {
    fn shut_down(&self) {
        let _ = self.0.get_ref().shutdown(std::net::Shutdown::Both);
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }

    fn direct_sink(&self) -> Option<Arc<dyn DirectSink>> {
        Some(self.0.clone())
    }
}

/// One `send` (`MSG_NOSIGNAL | MSG_DONTWAIT`), for direct writes. The sink is the
/// connection's own `Arc`, so the descriptor stays open while a direct write holds it
/// even if the writer has ended.
impl DirectSink for Async<std::net::TcpStream> {
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        use rustix::io::Errno;
        use rustix::net::SendFlags;
        loop {
            match rustix::net::send(
                self.get_ref(),
                bytes,
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(n) => return Ok(n),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn shut_down(&self) {
        let _ = self.get_ref().shutdown(std::net::Shutdown::Both);
    }
}

/// Writes all of `bytes` within `timeout`.
pub(super) async fn write_timed<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    stream
        .write_all(bytes)
        .or(async {
            Timer::after(timeout).await;
            Err(io::ErrorKind::TimedOut.into())
        })
        .await
}

/// How long a lingering close waits for the next byte before it closes. **Unit:** ms.
/// **Why:** a client still sending its request sends without pauses (on loopback, its
/// window reopens within microseconds of a read); one that has been silent this long has
/// sent all it will, and closing now leaves no unread input to turn into a reset.
pub const LINGER_IDLE: Duration = Duration::from_millis(250);

/// [`linger_close`] within the configured bounds (`--linger-timeout`, `--linger-bytes`).
pub(super) async fn linger<S: Conn>(stream: &mut S, limits: &crate::config::Limits) {
    linger_close(stream, limits.linger_timeout, limits.linger_bytes).await;
}

/// Closes a connection in stages after a refusal (RFC 9112 §9.6): stop writing, then
/// read and discard what the client still sends, until it is silent for [`LINGER_IDLE`],
/// for at most `timeout` and `max_bytes` in all, then close. Closing with unread input makes the kernel send a reset, and a client
/// still sending its request (a long request line, a body) would then lose the answer.
/// The reads are this connection's own, in its own task: other clients are not delayed.
pub(super) async fn linger_close<S: Conn>(stream: &mut S, timeout: Duration, max_bytes: usize) {
    let _ = stream.close().await;
    let deadline = Instant::now() + timeout;
    // On the heap, and only while lingering: an array here would sit in the request
    // phase's future of every connection.
    let mut sink = vec![0u8; 4096];
    let mut left = max_bytes;
    while left > 0 {
        let wait_until = deadline.min(Instant::now() + LINGER_IDLE);
        let read = async { stream.read(&mut sink).await.ok() }
            .or(async {
                Timer::at(wait_until).await;
                None
            })
            .await;
        match read {
            Some(n) if n > 0 => left = left.saturating_sub(n),
            // End of stream, an error, silence, or the deadline.
            _ => break,
        }
    }
    stream.shut_down();
}
