//! Running as a daemon: the systemd protocols and the container's health check.
//!
//! A leaf: nothing here knows the server. The server takes what these files give.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` (this) | the environment variables systemd sets, read once |
//! | `notify.rs` | `sd_notify`: one datagram per message to `$NOTIFY_SOCKET` |
//! | `listen.rs` | socket activation: listeners inherited through `LISTEN_FDS` |
//! | `probe.rs` | `ssehub probe URL`: a one-request HTTP/1.1 health check |
//!
//! Why a file of our own and not a crate (`sd-notify`, `listenfd`): the notify protocol
//! is one `sendto` of `KEY=value` lines, socket activation is three variables and a loop
//! over descriptors; both fit in fewer lines than a dependency's manifest entry costs to
//! review, and they need nothing beyond `std` and `rustix`, already here.

mod listen;
mod notify;
mod probe;

use std::time::Duration;

pub use listen::{Inherited, LISTEN_FDS_START, ListenError, MAX_LISTEN_FDS, inherited};
pub use notify::{NOTIFY_SEND_TIMEOUT, Notifier};
pub use probe::{ProbeError, probe};

/// The variables socket activation sets; [`inherited`] reads them and the binary clears
/// them afterwards (as `sd_listen_fds(1)` does), so no child process takes the
/// listeners for its own.
pub const LISTEN_VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// **Test hook**, not a setting: while the file this variable names exists, every accept
/// loop pauses before its next turn (10 ms sleeps), so a test can stall the accept loop
/// of a real process and see the watchdog stop. Unset in production; costs nothing then.
pub const STALL_ACCEPT_HOOK: &str = "SSEHUB_TEST_STALL_ACCEPT";

/// The watchdog interval systemd asks for (`WATCHDOG_USEC`), when it is meant for this
/// process (`WATCHDOG_PID` unset or ours). `lookup` reads an environment variable.
pub fn watchdog_interval(lookup: impl Fn(&str) -> Option<String>) -> Option<Duration> {
    let usec: u64 = lookup("WATCHDOG_USEC")?.trim().parse().ok()?;
    if let Some(pid) = lookup("WATCHDOG_PID")
        && pid.trim() != std::process::id().to_string()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_reads_usec_and_checks_the_pid() {
        let me = std::process::id().to_string();
        let env = |usec: Option<&str>, pid: Option<&str>| {
            let (usec, pid) = (usec.map(str::to_owned), pid.map(str::to_owned));
            watchdog_interval(move |k| match k {
                "WATCHDOG_USEC" => usec.clone(),
                "WATCHDOG_PID" => pid.clone(),
                _ => None,
            })
        };
        assert_eq!(env(Some("400000"), None), Some(Duration::from_millis(400)));
        assert_eq!(
            env(Some("400000"), Some(&me)),
            Some(Duration::from_millis(400))
        );
        assert_eq!(env(Some("400000"), Some("1")), None);
        assert_eq!(env(Some("0"), None), None);
        assert_eq!(env(Some("soon"), None), None);
        assert_eq!(env(None, None), None);
    }
}
