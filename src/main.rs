//! The `ssehub` binary: flags → [`Config`] → [`Server`] → exit code.
//!
//! Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the server cannot run
//! (e.g. the port is in use), 2 for a bad flag or value. `ssehub probe URL` (a health
//! check) exits 0 on a `2xx` answer and 1 otherwise.
//!
//! Under systemd: listeners handed down by socket activation (`LISTEN_FDS`) replace
//! `--bind`, and `$NOTIFY_SOCKET` gets `READY`, `STATUS`, `WATCHDOG` and `STOPPING`.
//!
//! `SIGUSR2` starts the binary at the path this process was started from, with the same
//! arguments, and hands it the listeners, the history and every live stream (see
//! `server/handover/`); a process started so finds `SSEHUB_HANDOVER` set and takes over
//! instead of binding.

use std::process::ExitCode;
use std::time::Duration;

use futures_lite::StreamExt;
use ssehub::config::{Command, help};
use ssehub::server::handover::{self, Upgrade, UpgradeTrigger};
use ssehub::{Config, Log, Server, Shutdown, daemon};

/// The deadline of `ssehub probe`. **Unit:** seconds. **Why:** well under the usual
/// health-check timeouts (Docker's default is 30 s), long enough for a loaded server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a successor waits for each read of its predecessor's state. **Unit:**
/// seconds. **Why:** the predecessor sends at once; it stops waiting for our
/// confirmation at `CONFIRM_TIMEOUT` (10 s) anyway.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    // The path as started, kept for an upgrade: the file there then is the one started.
    let exe = std::env::current_exe().ok();
    let handed = env(handover::SOCKET_ENV);
    // Socket activation: taken first, then the variables are cleared, as sd_listen_fds(1)
    // does, so that no child process believes the listeners are its own.
    let inherited = daemon::inherited(env);
    clear_listen_vars();
    let raw_args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("probe") {
        return probe(args.nth(1), args.next());
    }
    let config = match Config::from_args(args, env) {
        Ok(Command::Run(c)) => *c,
        Ok(Command::Help) => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("ssehub {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ssehub: {e}");
            return ExitCode::from(2);
        }
    };
    let log = if config.quiet {
        Log::silent()
    } else {
        Log::stderr()
    };
    let shutdown = Shutdown::new();
    let server = match (handed, inherited) {
        (Some(name), _) => match handover::receive(&name, RECEIVE_TIMEOUT) {
            Ok(got) => Server::from_handover(config, got, log.clone(), shutdown.clone()),
            Err(e) => {
                eprintln!("ssehub: taking over from the predecessor: {e}");
                return ExitCode::from(1);
            }
        },
        (None, inherited) => match inherited {
            Ok(l) if l.is_empty() => Server::bind(config, log.clone(), shutdown.clone()),
            Ok(l) => Server::from_inherited(config, l, log.clone(), shutdown.clone()),
            Err(e) => {
                eprintln!("ssehub: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let mut server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ssehub: {e}");
            return ExitCode::from(1);
        }
    };
    match daemon::Notifier::from_env(env) {
        Ok(Some(n)) => {
            let stall = env(daemon::STALL_ACCEPT_HOOK).map(Into::into);
            server = server.notify(n, daemon::watchdog_interval(env), stall);
        }
        Ok(None) => {}
        Err(e) => log.line(format_args!("NOTIFY_SOCKET unusable, not notifying: {e}")),
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        server = server.release_memory_with(release_heap);
    }
    let mut upgrade = None;
    if let Some(exe) = exe {
        let (s, trigger) = server.upgrade_on(Upgrade {
            exe,
            args: raw_args,
        });
        server = s;
        upgrade = Some(trigger);
    }
    if let Err(e) = watch_signals(shutdown, upgrade, log.clone()) {
        eprintln!("ssehub: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
    let stats = server.run_threaded();
    log.line(format_args!(
        "stopped: {} connections served, {} events published",
        stats.connections, stats.events_published
    ));
    ExitCode::SUCCESS
}

/// `ssehub probe URL`: one `GET`; exit 0 on `2xx`, 1 otherwise, one line on stderr.
fn probe(url: Option<String>, extra: Option<String>) -> ExitCode {
    let (Some(url), None) = (url, extra) else {
        eprintln!("ssehub probe: usage: ssehub probe http://HOST:PORT/PATH");
        return ExitCode::from(2);
    };
    match daemon::probe(&url, PROBE_TIMEOUT) {
        Ok(status) if (200..300).contains(&status) => {
            eprintln!("ssehub probe: {url}: {status}");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("ssehub probe: {url}: {status}, not 2xx");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("ssehub probe: {url}: {e}");
            ExitCode::from(1)
        }
    }
}

/// Gives glibc's free heap pages back to the system (`malloc_trim(0)`: every whole free
/// page, not only the top of the heap). The server calls it once a burst of
/// connections is over (see `server/release.rs`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_heap() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: `malloc_trim` takes no pointer and touches only the allocator's own free
    // chunks, under its own locks; glibc provides it in static and dynamic builds alike.
    unsafe {
        malloc_trim(0);
    }
}

/// Removes the socket-activation variables (and a predecessor's handover channel) from
/// the environment.
fn clear_listen_vars() {
    for var in daemon::LISTEN_VARS.iter().chain(&[handover::SOCKET_ENV]) {
        if std::env::var_os(var).is_some() {
            // SAFETY: called at the top of `main`, before any thread is started (the
            // signal thread, the executors and the reactor come later), so no other
            // thread can read or write the environment meanwhile.
            unsafe { std::env::remove_var(var) };
        }
    }
}

/// Fires `shutdown` on the first SIGINT or SIGTERM; asks for a handover on each
/// SIGUSR2 (ignored without an `upgrade`).
fn watch_signals(
    shutdown: Shutdown,
    upgrade: Option<UpgradeTrigger>,
    log: Log,
) -> std::io::Result<()> {
    use async_signal::{Signal, Signals};
    let mut signals = Signals::new([Signal::Int, Signal::Term, Signal::Usr2])?;
    std::thread::Builder::new()
        .name("ssehub-signals".into())
        .spawn(move || {
            futures_lite::future::block_on(async {
                while let Some(Ok(sig)) = signals.next().await {
                    log.line(format_args!("received {sig:?}"));
                    match (sig, &upgrade) {
                        (Signal::Usr2, Some(u)) => u.request(),
                        (Signal::Usr2, None) => log.line(format_args!(
                            "cannot hand over: the binary's path is unknown"
                        )),
                        _ => {
                            shutdown.trigger();
                            return;
                        }
                    }
                }
            })
        })?;
    Ok(())
}
