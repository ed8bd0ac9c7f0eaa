//! Connections to the server under test: a TCP connect with a limit on handshakes in
//! progress ([`Dialer`]), from the source addresses of `--bind-sources` in turn, a write
//! with a deadline, and their buffer and timeout.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use async_net::TcpStream;
use futures_lite::AsyncWriteExt;

use crate::signal::{Signal, until};

/// Buffer for a response head (and a slow client's drain). **Unit:** bytes.
pub(crate) const READ_BUF: usize = 4096;
/// Deadline for a TCP connect, a request write, or a response head.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connection handshakes in progress at once (keeps the server's accept backlog
/// from overflowing when `--connect-rate` is 0).
const MAX_HANDSHAKES: usize = 256;

/// Connects with at most [`MAX_HANDSHAKES`] handshakes in progress; one per run.
#[derive(Debug)]
pub(crate) struct Dialer {
    /// A slot per handshake in progress: sent before the connect, taken back after it.
    handshakes: (Sender<()>, Receiver<()>),
    /// Source addresses bound in turn (`--bind-sources`); empty: the kernel picks.
    sources: Vec<Ipv4Addr>,
    /// The next source's index.
    next: AtomicUsize,
}

impl Dialer {
    /// A dialer that binds `sources` in turn (empty: the kernel picks the source).
    pub(crate) fn new(sources: Vec<Ipv4Addr>) -> Dialer {
        Dialer {
            handshakes: async_channel::bounded(MAX_HANDSHAKES),
            sources,
            next: AtomicUsize::new(0),
        }
    }

    /// The TCP connect itself: from the next source address, if there are any.
    async fn open(&self, dest: SocketAddr) -> io::Result<TcpStream> {
        if self.sources.is_empty() {
            return TcpStream::connect(dest).await;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len();
        connect_from(self.sources[i], dest).await
    }

    /// Connects to `dest`, with the handshake limit and [`IO_TIMEOUT`].
    pub(crate) async fn connect(&self, dest: SocketAddr, stop: &Signal) -> io::Result<TcpStream> {
        let deadline = Instant::now() + IO_TIMEOUT;
        let gone = || io::Error::new(io::ErrorKind::Interrupted, "stopped");
        match until(self.handshakes.0.send(()), stop, Some(deadline)).await {
            Some(Ok(())) => {}
            None if !stop.fired() => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "connect {dest}: no handshake slot within 5 s ({MAX_HANDSHAKES} connections still in their handshake)"
                    ),
                ));
            }
            _ => return Err(gone()),
        }
        let r = until(self.open(dest), stop, Some(deadline)).await;
        let _ = self.handshakes.1.try_recv();
        match r {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(io::Error::new(e.kind(), format!("connect {dest}: {e}"))),
            None if stop.fired() => Err(gone()),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect {dest}: timed out"),
            )),
        }
    }
}

/// Connects to `dest` from `source` (port 0): with `IP_BIND_ADDRESS_NO_PORT` the kernel
/// picks the port at connect time, for the whole 4-tuple, so one source address serves
/// every destination with its full ephemeral range (without it, `bind` would reserve a
/// port per source for all destinations at once).
async fn connect_from(source: Ipv4Addr, dest: SocketAddr) -> io::Result<TcpStream> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let SocketAddr::V4(dest) = dest else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--bind-sources needs an IPv4 destination",
        ));
    };
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    bind_address_no_port(&fd)?;
    rustix::net::bind(&fd, &SocketAddrV4::new(source, 0))
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("bind {source}: {e}")))?;
    match rustix::net::connect(&fd, &dest) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    let stream = async_io::Async::new(std::net::TcpStream::from(fd))?;
    stream.writable().await?;
    if let Some(e) = stream.get_ref().take_error()? {
        return Err(e);
    }
    Ok(TcpStream::from(stream))
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` on `fd` (Linux 4.2+).
#[allow(unsafe_code)]
fn bind_address_no_port(fd: &std::os::fd::OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: `fd` is an open socket for the duration of the call; the option value is
    // a live `c_int` and its exact size is passed, as `setsockopt(2)` requires.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes all of `bytes` within [`IO_TIMEOUT`].
pub(crate) async fn write_timed(s: &mut TcpStream, bytes: &[u8], stop: &Signal) -> io::Result<()> {
    match until(s.write_all(bytes), stop, Some(Instant::now() + IO_TIMEOUT)).await {
        Some(r) => r,
        None => Err(io::ErrorKind::TimedOut.into()),
    }
}
