//! The soak run: it starts the publisher, the subscribers' connector and the progress
//! line, and runs the phases that end it.
//!
//! Phases (all bounded by `--duration`, which is also the hard cap):
//! 1. **Active** (`duration - tail`): the publisher runs from the start; initial clients
//!    connect at `--connect-rate`; once they all have (or failed), the server baseline
//!    is sampled and churn and reconnect sessions start.
//! 2. **Tail** (`tail = clamp(duration / 10, 1.5 s, 5 s)`): publishing, churn and
//!    reconnects stop; slow clients drain their sockets to see whether the server closed
//!    them; steady clients get until the tail's end to receive the last published event;
//!    then the server is sampled once more and the report is built.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_executor::Executor;
use async_io::Timer;

use crate::clients::connector;
use crate::cluster::Phase;
use crate::counters::{CONNECTED, PerRole, get};
use crate::publisher::spawn_publisher;
use crate::runtime::Rt;
use crate::signal::{sleep_until, until};

/// Prints a progress line every `--progress` seconds.
async fn progress(rt: Arc<Rt>) {
    let every = rt.cfg.progress;
    if every.is_zero() {
        return;
    }
    let mut next = Instant::now();
    let (mut last_pub, mut last_recv) = (0, 0);
    loop {
        next += every;
        if !sleep_until(next, &rt.stop).await {
            return;
        }
        let c = &rt.c;
        let (published, received) = (get(&c.published), c.received.get());
        let secs = every.as_secs_f64();
        let roles = |f: fn(&PerRole) -> &AtomicU64| c.roles.iter().map(|r| get(f(r))).sum::<u64>();
        let server = rt
            .sample_server()
            .map(|s| {
                format!(
                    " | server rss {} KiB cpu {:.2} s fds {}",
                    s.rss_kib, s.cpu_secs, s.fds
                )
            })
            .unwrap_or_default();
        eprintln!(
            "[{:6.1}s] clients {}/{} slow {}/{} | pub {} ({:.0}/s) err {} | recv {} ({:.0}/s) | gaps {} dup {} ooo {} | p50 {:.2} p99 {:.2} max {:.2} ms | churn {} reconnects {}{}",
            rt.secs(),
            get(&c.connected_now),
            rt.cfg.clients,
            get(&c.slow_connected),
            rt.cfg.slow,
            published,
            (published - last_pub) as f64 / secs,
            get(&c.publish_errors),
            received,
            (received - last_recv) as f64 / secs,
            roles(|r| &r.gaps),
            roles(|r| &r.duplicates),
            roles(|r| &r.out_of_order),
            rt.latency.quantile(0.5) as f64 / 1000.0,
            rt.latency.quantile(0.99) as f64 / 1000.0,
            rt.latency.max() as f64 / 1000.0,
            get(&c.churn_sessions),
            get(&c.reconnects),
            server,
        );
        (last_pub, last_recv) = (published, received);
    }
}

/// What the tail phase found.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tail {
    /// The last acknowledged sequence number.
    pub(crate) final_seq: u64,
    /// Own events connected steady clients had still not received at the end.
    pub(crate) missing: u64,
    /// Steady clients that had not caught up.
    pub(crate) behind: u64,
    /// Seconds from the end of the active phase until all caught up (if they did).
    pub(crate) caught_up_after_secs: Option<f64>,
    /// Steady clients still connected at the end.
    pub(crate) connected_at_end: u64,
}

/// Sums what connected steady clients still miss of `final_seq`: (events, clients).
fn behind(rt: &Rt, final_seq: u64) -> (u64, u64) {
    let (mut missing, mut clients) = (0, 0);
    for s in &rt.slots {
        if s.state.load(Ordering::Relaxed) != CONNECTED {
            continue;
        }
        let must = s.must_from.load(Ordering::Relaxed);
        let last = s.last_seq.load(Ordering::Relaxed);
        let have = last.max(must.saturating_sub(1));
        if must <= final_seq && have < final_seq {
            missing += final_seq - have;
            clients += 1;
        }
    }
    (missing, clients)
}

/// Runs the whole soak test; returns the tail findings.
pub(crate) async fn run(rt: Arc<Rt>, ex: Arc<Executor<'static>>) -> Tail {
    let start = rt.sample_server();
    rt.samples.lock().unwrap_or_else(|e| e.into_inner()).start = start;
    rt.cluster.sample_extra(Phase::Start);
    let publisher = spawn_publisher(rt.clone());
    ex.spawn(progress(rt.clone())).detach();
    let connector = ex.spawn(connector(rt.clone(), ex.clone()));

    Timer::at(rt.active_end).await;
    rt.active.fire();
    let tail_start = Instant::now();
    let _ = until(
        publisher,
        &rt.stop,
        Some(rt.end_at - Duration::from_millis(1200)),
    )
    .await;
    let _ = until(
        connector,
        &rt.stop,
        Some(rt.end_at - Duration::from_millis(1200)),
    )
    .await;
    let final_seq = rt.acked_seq.load(Ordering::SeqCst);
    let wait_end = rt.end_at - Duration::from_millis(600);
    let mut caught_up_after = None;
    loop {
        let sessions_done = get(&rt.c.in_flight) == 0;
        let slow_done = get(&rt.c.slow_done) >= (rt.cfg.slow as u64);
        let caught_up = !rt.publishing() || behind(&rt, final_seq).1 == 0;
        if caught_up && caught_up_after.is_none() {
            caught_up_after = Some(tail_start.elapsed().as_secs_f64());
        }
        if (sessions_done && slow_done && caught_up) || Instant::now() >= wait_end {
            break;
        }
        Timer::after(Duration::from_millis(25)).await;
    }
    let (missing, behind_clients) = if rt.publishing() {
        behind(&rt, final_seq)
    } else {
        (0, 0)
    };
    // Let the server notice the hang-ups of the last churn clients before sampling.
    Timer::at(
        (Instant::now() + Duration::from_millis(200)).min(rt.end_at - Duration::from_millis(300)),
    )
    .await;
    let end = rt.sample_server();
    rt.samples.lock().unwrap_or_else(|e| e.into_inner()).end = end;
    rt.cluster.sample_extra(Phase::End);
    let connected_at_end = get(&rt.c.connected_now);
    rt.stop.fire();
    Tail {
        final_seq,
        missing,
        behind: behind_clients,
        caught_up_after_secs: caught_up_after,
        connected_at_end,
    }
}
