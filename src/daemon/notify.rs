//! `sd_notify`: tell the service manager about state changes, one datagram per message
//! to the unix socket `$NOTIFY_SOCKET` names (a path, or an abstract name after `@`).
//!
//! A message is `KEY=value` lines (`READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`);
//! see `sd_notify(3)`. A send that fails is reported to the caller and never retried:
//! the manager reads its socket at once, and a lost `STATUS` is replaced by the next.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Longest a send may block when the manager's socket queue is full. **Unit:** ms.
/// **Why:** the watchdog sends from the request thread; it must not hang there.
pub const NOTIFY_SEND_TIMEOUT: Duration = Duration::from_millis(250);

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` names (`lookup` reads a variable), or `None` when it
    /// is unset or empty (not started by a manager that listens).
    ///
    /// # Errors
    ///
    /// When the name is not a valid unix socket address or no socket can be made.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> io::Result<Option<Notifier>> {
        match lookup("NOTIFY_SOCKET") {
            Some(path) if !path.is_empty() => Notifier::new(&path).map(Some),
            _ => Ok(None),
        }
    }

    /// A notifier sending to `path`; a leading `@` names an abstract socket.
    ///
    /// # Errors
    ///
    /// When `path` is not a valid unix socket address or no socket can be made.
    pub fn new(path: &str) -> io::Result<Notifier> {
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
            None => SocketAddr::from_pathname(path)?,
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_write_timeout(Some(NOTIFY_SEND_TIMEOUT))?;
        Ok(Notifier { socket, addr })
    }

    /// Sends `message` (`KEY=value` lines) as one datagram.
    ///
    /// # Errors
    ///
    /// When the send fails (no listener, queue full past [`NOTIFY_SEND_TIMEOUT`]).
    pub fn send(&self, message: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(message.as_bytes(), &self.addr)
            .map(drop)
    }

    /// `READY=1` with a `STATUS=` line: the service is up.
    ///
    /// # Errors
    ///
    /// As [`Notifier::send`].
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `STATUS=` with `status` (line breaks become spaces).
    ///
    /// # Errors
    ///
    /// As [`Notifier::send`].
    pub fn status(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// `WATCHDOG=1`: the service is alive and making progress.
    ///
    /// # Errors
    ///
    /// As [`Notifier::send`].
    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    /// `RELOADING=1` and a status: a handover to a successor process has begun (see
    /// `server/handover/`); `READY=1` ends it (from the successor, or from this process
    /// after a rollback).
    ///
    /// # Errors
    ///
    /// When the datagram cannot be sent.
    pub fn reloading(&self, status: &str) -> io::Result<()> {
        self.send(&format!("RELOADING=1\nSTATUS={}", one_line(status)))
    }

    /// `MAINPID=` this process: a successor that took over tells the manager, before
    /// its predecessor exits, that it is the service's main process now (needs
    /// `NotifyAccess=all`: it is not the main process yet).
    ///
    /// # Errors
    ///
    /// When the datagram cannot be sent.
    pub fn main_pid(&self) -> io::Result<()> {
        self.send(&format!("MAINPID={}", std::process::id()))
    }

    /// Another handle on the same socket, for a second task that notifies.
    ///
    /// # Errors
    ///
    /// When the socket cannot be duplicated.
    pub fn try_clone(&self) -> io::Result<Notifier> {
        Ok(Notifier {
            socket: self.socket.try_clone()?,
            addr: self.addr.clone(),
        })
    }

    /// `STOPPING=1` with a `STATUS=` line: the service is shutting down.
    ///
    /// # Errors
    ///
    /// As [`Notifier::send`].
    pub fn stopping(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }
}

/// `s` with every line break replaced by a space: a value is one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(rx: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn each_message_is_one_datagram_to_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("ssehub-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier::from_env(|_| Some(path.to_str().unwrap().to_owned()))
            .unwrap()
            .expect("a notifier");
        n.ready("up\nnow").unwrap();
        n.watchdog().unwrap();
        n.stopping("bye").unwrap();
        assert_eq!(received(&rx), "READY=1\nSTATUS=up now");
        assert_eq!(received(&rx), "WATCHDOG=1");
        assert_eq!(received(&rx), "STOPPING=1\nSTATUS=bye");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_at_sign_names_an_abstract_socket() {
        let name = format!("ssehub-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Notifier::new(&format!("@{name}"))
            .unwrap()
            .status("3 clients")
            .unwrap();
        assert_eq!(received(&rx), "STATUS=3 clients");
    }

    #[test]
    fn no_variable_no_notifier() {
        assert!(Notifier::from_env(|_| None).unwrap().is_none());
        assert!(
            Notifier::from_env(|_| Some(String::new()))
                .unwrap()
                .is_none()
        );
    }
}
