//! The socket: the connection type the handler serves ([`Conn`]), the TCP stream as the
//! server holds it (one pointer), its `sendmsg` writes, and its direct sink.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
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

    /// The socket's descriptor, to hand to a successor process (see `handover/`);
    /// `None` (the default) for a connection that cannot be handed.
    fn handover_fd(&self) -> Option<Arc<dyn std::os::fd::AsFd + Send + Sync>> {
        None
    }

    /// The socket's descriptor, so that a resting stream's read side can be watched
    /// without the runtime's registration (see `watch.rs`); `None` (the default): the
    /// stream rests on its registration.
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Drops the runtime's registration of the socket, if it has one; the next wait for
    /// readiness makes it again.
    fn deregister(&self) {}
}

/// A TCP connection as the handler holds it: one pointer. (`async_net::TcpStream` also
/// caches two readiness futures, 120 bytes, and every subscriber's task holds its stream.)
#[derive(Debug, Clone)]
pub(crate) struct TcpConn(Arc<Sock>);

/// The socket, and its registration with the runtime's reactor while it needs one: made
/// on the first wait for readiness, dropped while its stream rests (see `watch.rs`),
/// since a registration costs about 240 bytes and a resting stream needs none. Boxed:
/// a resting stream then pays one pointer for it, not two (its `Arc` is 40 bytes, a
/// 48-byte allocation, where an unboxed one took 64).
#[derive(Debug)]
pub(crate) struct Sock {
    io: Arc<std::net::TcpStream>,
    reg: Mutex<Option<Box<Async<Arc<std::net::TcpStream>>>>>,
}

impl TryFrom<TcpStream> for TcpConn {
    type Error = io::Error;

    /// Takes the accepted stream's socket out of its registration (made again on the
    /// first wait). Fails only when the reactor cannot let it go.
    fn try_from(stream: TcpStream) -> io::Result<TcpConn> {
        let io: Arc<Async<std::net::TcpStream>> = stream.into();
        let io = match Arc::try_unwrap(io) {
            Ok(a) => a.into_inner()?,
            // Shared (not so for a stream just accepted): a descriptor of its own.
            Err(shared) => shared.get_ref().try_clone()?,
        };
        Ok(TcpConn(Arc::new(Sock {
            io: Arc::new(io),
            reg: Mutex::new(None),
        })))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TcpConn {
    /// A connection on a socket handed over by a predecessor process (registered with
    /// the reactor on its first wait, like an accepted one).
    pub(crate) fn from_std(stream: std::net::TcpStream) -> io::Result<TcpConn> {
        stream.set_nonblocking(true)?;
        Ok(TcpConn(Arc::new(Sock {
            io: Arc::new(stream),
            reg: Mutex::new(None),
        })))
    }

    /// Polls `f` on the reactor's registration, made first if there is none.
    fn poll_reg(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&Async<Arc<std::net::TcpStream>>, &mut Context<'_>) -> Poll<io::Result<()>>,
    ) -> Poll<io::Result<()>> {
        let mut reg = lock(&self.0.reg);
        if reg.is_none() {
            match Async::new_nonblocking(self.0.io.clone()) {
                Ok(a) => *reg = Some(Box::new(a)),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match reg.as_ref() {
            Some(a) => f(a, cx),
            None => Poll::Ready(Err(io::ErrorKind::Other.into())),
        }
    }
}

impl AsyncRead for TcpConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        use rustix::io::Errno;
        use rustix::net::RecvFlags;
        loop {
            match rustix::net::recv(&*self.0.io, &mut *buf, RecvFlags::DONTWAIT) {
                Ok((n, _)) => return Poll::Ready(Ok(n)),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
            match self.poll_reg(cx, |a, cx| a.poll_readable(cx)) {
                Poll::Ready(Ok(())) => continue,
                other => return other.map(|r| r.map(|()| 0)),
            }
        }
    }
}

impl AsyncWrite for TcpConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
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
                &*self.0.io,
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
            match self.poll_reg(cx, |a, cx| a.poll_writable(cx)) {
                Poll::Ready(Ok(())) => continue,
                other => return other.map(|r| r.map(|()| 0)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Stops writing (`shutdown(SHUT_WR)`), as `async-io` does for a TCP stream.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.io.shutdown(std::net::Shutdown::Write))
    }
}

impl Conn for TcpConn {
    fn shut_down(&self) {
        let _ = self.0.io.shutdown(std::net::Shutdown::Both);
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_reg(cx, |a, cx| a.poll_readable(cx))
    }

    fn handover_fd(&self) -> Option<Arc<dyn std::os::fd::AsFd + Send + Sync>> {
        Some(self.0.io.clone())
    }

    fn direct_sink(&self) -> Option<Arc<dyn DirectSink>> {
        Some(self.0.clone())
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.0.io.as_fd())
    }

    fn deregister(&self) {
        let reg = lock(&self.0.reg).take();
        drop(reg);
    }
}

/// One `send` (`MSG_NOSIGNAL | MSG_DONTWAIT`), for direct writes. The sink is the
/// connection's own `Arc`, so the descriptor stays open while a direct write holds it
/// even if the writer has ended.
impl DirectSink for Sock {
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        use rustix::io::Errno;
        use rustix::net::SendFlags;
        loop {
            match rustix::net::send(&*self.io, bytes, SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
                Ok(n) => return Ok(n),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        use rustix::io::Errno;
        use rustix::net::{SendAncillaryBuffer, SendFlags};
        loop {
            match rustix::net::sendmsg(
                &*self.io,
                bufs,
                &mut SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(n) => return Ok(n),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn shut_down(&self) {
        let _ = self.io.shutdown(std::net::Shutdown::Both);
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
