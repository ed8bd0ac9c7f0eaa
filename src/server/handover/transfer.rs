//! The handover's channel: a unix socket in the abstract namespace (nothing on disk, so
//! `ProtectSystem=strict` and a read-only root do not matter) that only the successor the
//! old process started may use (its peer credentials are checked), and the
//! `SCM_RIGHTS` messages that carry the descriptors.
//!
//! | step | who | what |
//! |---|---|---|
//! | 1 | old | listens on `@ssehub-handover-<pid>-<nonce>`, starts the successor with the name in [`SOCKET_ENV`] |
//! | 2 | successor | connects; the old process accepts only the pid it started |
//! | 3 | old | the snapshot's length (`u64`) and bytes, the descriptor count (`u32`) |
//! | 4 | old | the descriptors, up to [`FD_BATCH`] per one-byte message |
//! | 5 | successor | one byte, [`CONFIRM`], once it serves |
//!
//! No `unsafe`: rustix's `sendmsg`/`recvmsg` take and give owned descriptors.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::Duration;

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The variable that tells a successor where to fetch its state.
pub const SOCKET_ENV: &str = "SSEHUB_HANDOVER";

/// Descriptors per message. **Why:** the kernel takes at most 253 per message
/// (`SCM_MAX_FD`).
pub const FD_BATCH: usize = 200;

/// The successor's confirmation: it serves the listeners and the streams now.
pub const CONFIRM: u8 = b'K';

/// Largest snapshot a successor accepts. **Unit:** bytes. **Why:** a bound on a length
/// read from a socket; the history is capped at `--history-bytes` and a stream owes at
/// most its queue and its replay backlog.
pub const MAX_SNAPSHOT: u64 = 1 << 32;

/// The old process's end, before the successor connects.
#[derive(Debug)]
pub(crate) struct Channel {
    listener: Async<UnixListener>,
    name: String,
}

impl Channel {
    /// Listens on a fresh abstract name.
    pub(crate) fn open() -> io::Result<Channel> {
        let name = format!(
            "ssehub-handover-{}-{:016x}",
            std::process::id(),
            fastrand::u64(..)
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let listener = Async::new(UnixListener::bind_addr(&addr)?)?;
        Ok(Channel { listener, name })
    }

    /// The name to hand the successor (in [`SOCKET_ENV`]).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Waits for process `pid` to connect; anyone else is turned away.
    pub(crate) async fn accept(&self, pid: u32) -> io::Result<Async<UnixStream>> {
        loop {
            let (conn, _) = self.listener.accept().await?;
            let peer = rustix::net::sockopt::socket_peercred(&conn)?;
            if peer.pid.as_raw_nonzero().get() as u32 == pid {
                return Ok(conn);
            }
        }
    }
}

/// Sends the snapshot and the descriptors (steps 3 and 4).
pub(crate) async fn send(
    conn: &mut Async<UnixStream>,
    snapshot: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    conn.write_all(&(snapshot.len() as u64).to_le_bytes())
        .await?;
    conn.write_all(snapshot).await?;
    conn.write_all(&(fds.len() as u32).to_le_bytes()).await?;
    conn.flush().await?;
    for batch in fds.chunks(FD_BATCH) {
        conn.write_with(|s| send_fds(s, batch)).await?;
    }
    Ok(())
}

/// One byte with `fds` attached.
fn send_fds(sock: &UnixStream, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FD_BATCH))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors for one message"));
    }
    let sent = rustix::net::sendmsg(
        sock,
        &[IoSlice::new(b"F")],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    match sent {
        1 => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "descriptors not sent",
        )),
    }
}

/// Waits for the successor's [`CONFIRM`] (step 5). An end of stream means it failed.
pub(crate) async fn confirmed(conn: &mut Async<UnixStream>) -> io::Result<()> {
    let mut b = [0u8; 1];
    match conn.read(&mut b).await? {
        1 if b[0] == CONFIRM => Ok(()),
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the successor closed the channel without confirming",
        )),
        _ => Err(io::Error::other(
            "the successor sent something else than its confirmation",
        )),
    }
}

/// What a successor received: the snapshot's bytes, the descriptors in order, and the
/// channel to confirm on.
#[derive(Debug)]
pub struct Received {
    pub(crate) snapshot: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) channel: UnixStream,
}

/// The successor's side of steps 2–4: connects to `name` and takes what the old
/// process sends, each read within `timeout`.
///
/// # Errors
///
/// When the old process cannot be reached, closes early, or sends more than
/// `MAX_SNAPSHOT` (4 GiB) bytes.
pub fn receive(name: &str, timeout: Duration) -> io::Result<Received> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let mut sock = UnixStream::connect_addr(&addr)?;
    sock.set_read_timeout(Some(timeout))?;
    let mut len = [0u8; 8];
    sock.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len);
    if len > MAX_SNAPSHOT {
        return Err(io::Error::other(format!("snapshot of {len} bytes refused")));
    }
    let mut snapshot = Vec::new();
    (&mut sock).take(len).read_to_end(&mut snapshot)?;
    if snapshot.len() as u64 != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut count = [0u8; 4];
    sock.read_exact(&mut count)?;
    let count = u32::from_le_bytes(count) as usize;
    let mut fds = Vec::with_capacity(count.min(1 << 16));
    while fds.len() < count {
        let before = fds.len();
        recv_fds(&sock, &mut fds)?;
        if fds.len() == before {
            return Err(io::Error::other("a descriptor message carried none"));
        }
    }
    Ok(Received {
        snapshot,
        fds,
        channel: sock,
    })
}

/// One byte and the descriptors attached to it.
fn recv_fds(sock: &UnixStream, out: &mut Vec<OwnedFd>) -> io::Result<()> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FD_BATCH))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let got = rustix::net::recvmsg(
        sock.as_fd(),
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    if got.bytes != 1 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            out.extend(fds);
        }
    }
    Ok(())
}

/// Step 5: tells the old process the successor serves.
pub(crate) fn confirm(channel: &mut UnixStream) -> io::Result<()> {
    channel.write_all(&[CONFIRM])
}
