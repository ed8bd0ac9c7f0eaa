//! Connections to the server under test: a TCP connect with a limit on handshakes in
//! progress ([`Dialer`]), a write with a deadline, and their buffer and timeout.

use std::io;
use std::net::SocketAddr;
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
}

impl Default for Dialer {
    fn default() -> Self {
        Dialer {
            handshakes: async_channel::bounded(MAX_HANDSHAKES),
        }
    }
}

impl Dialer {
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
        let r = until(TcpStream::connect(dest), stop, Some(deadline)).await;
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

/// Writes all of `bytes` within [`IO_TIMEOUT`].
pub(crate) async fn write_timed(s: &mut TcpStream, bytes: &[u8], stop: &Signal) -> io::Result<()> {
    match until(s.write_all(bytes), stop, Some(Instant::now() + IO_TIMEOUT)).await {
        Some(r) => r,
        None => Err(io::ErrorKind::TimedOut.into()),
    }
}
