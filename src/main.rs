//! The `ssehub` binary: flags → [`Config`] → [`Server`] → exit code.
//!
//! Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the server cannot run
//! (e.g. the port is in use), 2 for a bad flag or value.

use std::process::ExitCode;

use futures_lite::StreamExt;
use ssehub::config::{Command, help};
use ssehub::{Config, Log, Server, Shutdown};

fn main() -> ExitCode {
    let args = std::env::args().skip(1);
    let config = match Config::from_args(args, |k| std::env::var(k).ok()) {
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
    let server = match Server::bind(config, log.clone(), shutdown.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ssehub: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = watch_signals(shutdown, log.clone()) {
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

/// Fires `shutdown` on the first SIGINT or SIGTERM.
fn watch_signals(shutdown: Shutdown, log: Log) -> std::io::Result<()> {
    use async_signal::{Signal, Signals};
    let mut signals = Signals::new([Signal::Int, Signal::Term])?;
    std::thread::Builder::new()
        .name("ssehub-signals".into())
        .spawn(move || {
            futures_lite::future::block_on(async {
                if let Some(Ok(sig)) = signals.next().await {
                    log.line(format_args!("received {sig:?}"));
                    shutdown.trigger();
                }
            })
        })?;
    Ok(())
}
