//! Socket activation (`sd_listen_fds(3)`): listeners the service manager opened and
//! handed down as descriptors 3, 4, … with `LISTEN_FDS` (how many), `LISTEN_PID` (for
//! which process) and `LISTEN_FDNAMES` (their `FileDescriptorName=`s, `:`-separated).
//!
//! **Without `unsafe`.** Owning a descriptor by its number (`OwnedFd::from_raw_fd`) is
//! `unsafe`, and the crate forbids it. Instead each inherited descriptor is duplicated
//! through `pidfd_getfd(2)` on a pidfd of this very process (Linux 5.6; a process may
//! always take from itself), which returns an owned, close-on-exec copy safely. The
//! original number stays open, unused, for the process's life (the manager keeps its
//! own copy of the socket anyway); the binary clears `LISTEN_*` so no child takes it.
//!
//! Only TCP listeners (IPv4 or IPv6, `ListenStream=` with an address or a port) are
//! taken; anything else is refused with the descriptor and its name.

use std::fmt;
use std::io;
use std::net::TcpListener;

use rustix::net::SocketType;
use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};

/// The first inherited descriptor (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: i32 = 3;

/// Most inherited descriptors taken. **Why:** a bound on a number read from the
/// environment; a unit with more sockets than this is a mistake.
pub const MAX_LISTEN_FDS: usize = 64;

/// One listener handed down by the service manager.
#[derive(Debug)]
pub struct Inherited {
    /// Its `FileDescriptorName=` (`unknown` when the manager sent no names).
    pub name: String,
    /// The listening socket, owned, close-on-exec.
    pub listener: TcpListener,
}

/// Why the inherited listeners cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ListenError {
    /// `LISTEN_FDS` or `LISTEN_FDNAMES` is malformed.
    Env(String),
    /// A descriptor could not be taken or is not a listening TCP socket.
    Fd {
        /// Its number.
        fd: i32,
        /// Its name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::Env(e) => write!(f, "socket activation: {e}"),
            ListenError::Fd { fd, name, reason } => {
                write!(f, "socket activation: descriptor {fd} ({name}): {reason}")
            }
        }
    }
}

impl std::error::Error for ListenError {}

/// The listeners handed to this process, in descriptor order; empty when none were
/// (`LISTEN_FDS` unset, or `LISTEN_PID` is another process's). `lookup` reads a variable.
///
/// # Errors
///
/// [`ListenError`] when the variables are malformed or a descriptor is not a listening
/// TCP socket (or cannot be taken: a kernel before 5.6, or a seccomp filter).
pub fn inherited(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<Inherited>, ListenError> {
    let me = getpid().as_raw_nonzero().get();
    let fds = match parse(&lookup, me)? {
        Some(fds) if !fds.is_empty() => fds,
        _ => return Ok(Vec::new()),
    };
    let fd_err = |fd: i32, name: &str, e: &dyn fmt::Display| ListenError::Fd {
        fd,
        name: name.to_owned(),
        reason: e.to_string(),
    };
    let pidfd = pidfd_open(getpid(), PidfdFlags::empty())
        .map_err(|e| fd_err(LISTEN_FDS_START, &fds[0].1, &format!("pidfd_open: {e}")))?;
    fds.into_iter()
        .map(|(fd, name)| {
            let owned = pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty())
                .map_err(|e| fd_err(fd, &name, &format!("pidfd_getfd: {e}")))?;
            check_listener(&owned).map_err(|e| fd_err(fd, &name, &e))?;
            Ok(Inherited {
                name,
                listener: TcpListener::from(owned),
            })
        })
        .collect()
}

/// Whether `fd` is a listening TCP socket.
fn check_listener(fd: &rustix::fd::OwnedFd) -> io::Result<()> {
    let not = |what: &str| Err(io::Error::other(format!("not {what}")));
    if rustix::net::sockopt::socket_type(fd)? != SocketType::STREAM {
        return not("a stream socket");
    }
    if !rustix::net::sockopt::socket_acceptconn(fd)? {
        return not("listening");
    }
    let addr = rustix::net::getsockname(fd)?;
    if std::net::SocketAddr::try_from(addr).is_err() {
        return not("an IPv4 or IPv6 socket (unix sockets are not served)");
    }
    Ok(())
}

/// The descriptors and names the variables give to process `me`: `None` when they are
/// not for it (`LISTEN_PID` unset or another's, `LISTEN_FDS` unset).
fn parse(
    lookup: &impl Fn(&str) -> Option<String>,
    me: i32,
) -> Result<Option<Vec<(i32, String)>>, ListenError> {
    let (Some(pid), Some(count)) = (lookup("LISTEN_PID"), lookup("LISTEN_FDS")) else {
        return Ok(None);
    };
    if pid.trim().parse::<i32>().ok() != Some(me) {
        return Ok(None);
    }
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| ListenError::Env(format!("LISTEN_FDS is not a number: {count:?}")))?;
    if count > MAX_LISTEN_FDS {
        return Err(ListenError::Env(format!(
            "LISTEN_FDS={count} exceeds {MAX_LISTEN_FDS}"
        )));
    }
    let names: Vec<String> = match lookup("LISTEN_FDNAMES") {
        Some(n) => n.split(':').map(str::to_owned).collect(),
        None => vec!["unknown".to_owned(); count],
    };
    if names.len() != count {
        return Err(ListenError::Env(format!(
            "LISTEN_FDNAMES has {} names for {count} descriptors",
            names.len()
        )));
    }
    Ok(Some(
        (LISTEN_FDS_START..)
            .zip(names)
            .collect::<Vec<(i32, String)>>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_env(vars: &[(&str, &str)]) -> Result<Option<Vec<(i32, String)>>, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        parse(&lookup, 42).map_err(|e| e.to_string())
    }

    #[test]
    fn the_variables_table() {
        let named =
            |v: &[(i32, &str)]| Ok(Some(v.iter().map(|(f, n)| (*f, n.to_string())).collect()));
        assert_eq!(parse_env(&[]), Ok(None));
        assert_eq!(parse_env(&[("LISTEN_FDS", "2")]), Ok(None));
        assert_eq!(
            parse_env(&[("LISTEN_PID", "7"), ("LISTEN_FDS", "2")]),
            Ok(None)
        );
        assert_eq!(
            parse_env(&[("LISTEN_PID", "42"), ("LISTEN_FDS", "2")]),
            named(&[(3, "unknown"), (4, "unknown")])
        );
        assert_eq!(
            parse_env(&[
                ("LISTEN_PID", "42"),
                ("LISTEN_FDS", "2"),
                ("LISTEN_FDNAMES", "public:admin")
            ]),
            named(&[(3, "public"), (4, "admin")])
        );
        assert_eq!(
            parse_env(&[("LISTEN_PID", "42"), ("LISTEN_FDS", "0")]),
            Ok(Some(vec![]))
        );
        for bad in [
            &[("LISTEN_PID", "42"), ("LISTEN_FDS", "two")][..],
            &[("LISTEN_PID", "42"), ("LISTEN_FDS", "1000")],
            &[
                ("LISTEN_PID", "42"),
                ("LISTEN_FDS", "2"),
                ("LISTEN_FDNAMES", "one"),
            ],
        ] {
            assert!(parse_env(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nothing_inherited_without_the_variables() {
        assert!(inherited(|_| None).unwrap().is_empty());
    }
}
