//! `ssehub-soak`: the soak and load tool of ssehub. It works against any SSE server on
//! this machine's loopback: many subscribers (plus slow, churning and reconnecting ones)
//! check every event with a WHATWG event-stream parser while one keep-alive publisher
//! posts numbered events, and a JSON report says whether the server kept up.
//!
//! Event ids are opaque text (ssehub writes `<epoch>-<offset>`): the tool only echoes
//! them back in `Last-Event-ID` and checks order on the `seq` in each event's data. A
//! server's `reset` event (a resume that cannot continue where it left off) is counted
//! by reason, and the gap after it is reported as announced (`announced_gaps`); a gap
//! no reset announced is a failure.
//!
//! Several `--url`s are several nodes of one hub (ssehub on one Redis, nchan on one
//! Redis): subscribers are spread over them, reconnecting clients resume on another
//! node, and every subscriber must see the same events in the same order with the same
//! ids (`cluster.rs`, `order.rs`). A `lost` reset (the broker lost entries) may come on
//! any stream; `503` answers to publishing are counted apart, and tolerated with
//! `--tolerate-unavailable` while publishing recovers.
//!
//! Restart mode (`--server-cmd`, `--restart-after`): the tool runs the server itself and
//! restarts it mid-run on the same port; every subscriber resumes with `Last-Event-ID`
//! and must get exactly the events it missed, or a reset first (`server.rs`).
//!
//! Doctor mode (`ssehub-soak doctor URL`, `doctor.rs`): what a proxy between the tool
//! and the hub does to a stream (buffering, an idle cut-off, added headers), with a
//! verdict.
//!
//! Exit status: 0 when every check passed, 1 when one failed, 2 for bad usage.
//!
//! Files, from the leaves up; each uses only files before it (`tests/layout.rs` checks):
//! `http.rs` `sse.rs` `check.rs` `histogram.rs` `order.rs` `procfs.rs` `signal.rs`
//! (the wire, the checks, the clock) → `args.rs` → `spread.rs` (`--processes`) → `doctor.rs` (on its own) →
//! `counters.rs` `dial.rs` → `server.rs`
//! `cluster.rs` (restart mode, several nodes: each takes only what it needs) →
//! `runtime.rs` (the `Rt` every task shares) → `session.rs` `clients.rs` `publisher.rs`
//! → `run.rs` → `report.rs`.
//!
//! The tool does not use the ssehub library (a package of its own in ssehub's
//! workspace): it checks the server from the outside, with its own HTTP client and SSE
//! parser.

// One `setsockopt` in `dial.rs` (IP_BIND_ADDRESS_NO_PORT) is the only unsafe code.
#![deny(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

mod args;
mod check;
mod clients;
mod cluster;
mod counters;
mod dial;
mod doctor;
mod histogram;
mod http;
mod order;
mod procfs;
mod publisher;
mod report;
mod run;
mod runtime;
mod server;
mod session;
mod signal;
mod spread;
mod sse;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_executor::Executor;

use crate::args::Command;
use crate::runtime::Rt;
use crate::server::{Restart, ServerProc};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = match args::parse(argv.clone()) {
        Ok(Command::Run(c)) => *c,
        Ok(Command::Doctor(d)) => return doctor::run(*d),
        Ok(Command::Help) => {
            print!("{}", args::help());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ssehub-soak: {e}");
            return ExitCode::from(2);
        }
    };
    // `--processes P`: the others start first, each with its share of the clients.
    let (mine, each) = spread::shares(cfg.clients, cfg.processes);
    let children = if cfg.processes > 1 {
        match spread::Children::start(cfg.processes - 1, &spread::child_args(&argv, each)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("ssehub-soak: cannot start --processes children: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        spread::Children::default()
    };
    cfg.clients = mine;
    let needed = (cfg.clients + cfg.slow) as u64 + 64;
    if let Some(limit) = procfs::open_files_limit().filter(|&l| l < needed) {
        eprintln!(
            "ssehub-soak: warning: open files limit is {limit}, this run needs about {needed} (raise it with ulimit -n)"
        );
    }
    let threads = cfg
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Restart mode: the server is started before the run's clock starts.
    let restart = Restart::default();
    let server = cfg
        .server
        .as_ref()
        .map(|s| Arc::new(ServerProc::start(s, cfg.base.addr, &restart)));
    if server.is_some() && !restart.found.lock().is_ok_and(|f| f.errors.is_empty()) {
        return ExitCode::from(1);
    }
    let restart_after = cfg.server.as_ref().and_then(|s| s.restart_after);
    let restarts = cfg.server.as_ref().map_or(1, |s| s.restarts);
    let mut rt = Rt::new(cfg);
    rt.restart = restart;
    let rt = Arc::new(rt);
    let restarter = server.clone().zip(restart_after).map(|(server, after)| {
        let rt = rt.clone();
        std::thread::spawn(move || {
            for k in 1..=restarts {
                let at = rt.t0 + after * k;
                while Instant::now() < at {
                    if rt.stop.fired() {
                        return;
                    }
                    std::thread::sleep(
                        Duration::from_millis(20).min(at.saturating_duration_since(Instant::now())),
                    );
                }
                server.restart(&rt.restart, &rt.stop);
            }
        })
    });
    let ex = Arc::new(Executor::new());
    let (done_tx, done_rx) = async_channel::bounded::<()>(1);
    let workers: Vec<_> = (1..threads)
        .filter_map(|i| {
            let ex = ex.clone();
            let done = done_rx.clone();
            std::thread::Builder::new()
                .name(format!("soak-{i}"))
                .spawn(move || async_io::block_on(ex.run(done.recv())))
                .ok()
        })
        .collect();
    // The run ends by itself at --duration; the extra second only guards against a bug.
    let hard_cap = rt.end_at + Duration::from_secs(1);
    let tail = async_io::block_on(ex.run(async {
        futures_lite::FutureExt::or(
            async { Some(run::run(rt.clone(), ex.clone()).await) },
            async {
                async_io::Timer::at(hard_cap).await;
                None
            },
        )
        .await
    }));
    rt.stop.fire();
    rt.active.fire();
    let tail = tail.unwrap_or_else(|| {
        eprintln!("ssehub-soak: the run overran its hard cap; reporting what was seen");
        run::Tail::default()
    });
    if let Some(t) = restarter {
        let _ = t.join();
    }
    if let Some(server) = &server {
        server.finish(&rt.restart);
    }
    let mut report = report::build(&rt, tail, threads);
    let (others, failed) = children.collect();
    report.processes = others;
    if !failed.is_empty() {
        report.ok = false;
        report.failed_checks.extend(failed);
    }
    done_tx.close();
    for w in workers {
        let _ = w.join();
    }
    match serde_json::to_string_pretty(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("ssehub-soak: cannot write the report: {e}");
            return ExitCode::from(1);
        }
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("ssehub-soak: FAILED: {}", report.failed_checks.join("; "));
        ExitCode::from(1)
    }
}
