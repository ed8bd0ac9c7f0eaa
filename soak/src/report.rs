//! The final JSON report and the pass/fail decision.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::args::Config;
use crate::check::ResetReason;
use crate::cluster;
use crate::counters::PerRole;
use crate::procfs::{self, Sample};
use crate::run::Tail;
use crate::runtime::Rt;
use crate::server::Found;

/// Client counts.
#[derive(Debug, Serialize)]
pub struct Clients {
    /// Steady subscribers asked for.
    pub requested: usize,
    /// Steady subscribers that got their stream.
    pub connected: u64,
    /// Steady subscribers that could not connect.
    pub connect_failures: u64,
    /// Steady subscribers whose stream the server closed during the run.
    pub dropped_by_server: u64,
    /// Steady subscribers connected at the end.
    pub connected_at_end: u64,
}

/// Event counts.
#[derive(Debug, Serialize)]
pub struct Events {
    /// Events published and acknowledged (0 with `--no-publish`).
    pub published: u64,
    /// `published` per second of the active phase.
    pub publish_rate_achieved: f64,
    /// Failed publish requests.
    pub publish_errors: u64,
    /// Sum of the server's `delivered_to` answers.
    pub server_delivered_to: u64,
    /// The last acknowledged sequence number.
    pub final_seq: u64,
    /// Events received by steady and churn subscribers (own events when publishing).
    pub received: u64,
    /// `received` per second of the active phase.
    pub delivered_per_sec: f64,
    /// Seconds from the first publish request to the end of the active phase.
    pub publish_secs: Option<f64>,
    /// `received` per second of `publish_secs` (with `--wait-connected`, every own
    /// event arrives in that window).
    pub delivered_per_publish_sec: Option<f64>,
    /// Events that were not the tool's own (other producers, other event types).
    pub foreign: u64,
    /// Comment lines (heartbeats, greetings).
    pub comments: u64,
    /// Events without a `seq` in their data (`--no-publish`: not checked; ids are
    /// opaque, so order is checked on the server's demo events' `seq`).
    pub unsequenced: u64,
    /// Body bytes read by subscribers.
    pub bytes_received: u64,
}

/// Ordering checks of steady and churn subscribers.
#[derive(Debug, Serialize)]
pub struct Checks {
    /// Whether gaps are checked (not for server ids with a topic filter).
    pub gaps_checked: bool,
    /// Missing events within what a subscriber should have seen, including
    /// `tail_missing`, that no reset event announced: silent gaps, a failure.
    pub gaps: u64,
    /// Missing events that a reset event announced first (reported, not a failure).
    pub announced_gaps: u64,
    /// Reset events received by any subscriber, by reason.
    pub resets: Resets,
    /// Reset events other than `lost` on streams that sent no `Last-Event-ID` (a
    /// failure: such a stream starts live).
    pub unexpected_resets: u64,
    /// Of those: events published before the end that connected steady clients never got.
    pub tail_missing: u64,
    /// Steady clients that had not caught up with the last event at the end.
    pub clients_behind_at_end: u64,
    /// Seconds after publishing stopped until every steady client had the last event.
    pub caught_up_after_secs: Option<f64>,
    /// Events seen twice.
    pub duplicates: u64,
    /// Events older than one already seen.
    pub out_of_order: u64,
}

/// Reset events by the reason the server gave.
#[derive(Debug, Serialize)]
pub struct Resets {
    /// The id was older than the server's history.
    pub evicted: u64,
    /// The id was of another history (before a restart).
    #[serde(rename = "other-epoch")]
    pub other_epoch: u64,
    /// The server could not place the id.
    pub unknown: u64,
    /// The id was ahead of the server's history.
    pub future: u64,
    /// The server's broker lost entries it had not read (on any stream).
    pub lost: u64,
    /// A reason the tool does not know, or none.
    pub other: u64,
}

/// Publish → receive latency. **Unit:** milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// Slow clients.
#[derive(Debug, Serialize)]
pub struct Slow {
    /// Asked for.
    pub requested: usize,
    /// Connected and sent their request.
    pub connected: u64,
    /// Could not connect or got no `200`.
    pub failed: u64,
    /// Closed by the server before the end.
    pub evicted: u64,
    /// Still served at the end.
    pub not_evicted: u64,
    /// Bytes they drained at the check.
    pub drained_bytes: u64,
}

/// Churn sessions.
#[derive(Debug, Serialize)]
pub struct Churn {
    /// Sessions per second asked for.
    pub rate: f64,
    /// Sessions that got a stream.
    pub sessions: u64,
    /// Sessions that could not connect.
    pub failed: u64,
    /// Sessions the server closed early.
    pub dropped_by_server: u64,
    /// Gaps seen by churn clients (included in `checks.gaps`).
    pub gaps: u64,
}

/// Reconnect sessions.
#[derive(Debug, Serialize)]
pub struct Reconnect {
    /// Sessions per second asked for.
    pub rate: f64,
    /// Sessions started.
    pub sessions: u64,
    /// Reconnections with `Last-Event-ID`.
    pub reconnects: u64,
    /// Reconnections followed by at least one event (continuity checked).
    pub checked: u64,
    /// Sessions without any event before the hang-up (nothing to resume from).
    pub no_event_before_hangup: u64,
    /// Sessions that failed to connect or were closed by the server.
    pub failed: u64,
    /// Missing events across or after a reconnect that no reset announced.
    pub gaps: u64,
    /// Missing events across a reconnect that a reset event announced.
    pub announced_gaps: u64,
    /// Events seen twice.
    pub duplicates: u64,
    /// Events out of order.
    pub out_of_order: u64,
}

/// Server resource samples.
#[derive(Debug, Serialize)]
pub struct Server {
    /// The process id.
    pub pid: u32,
    /// At start.
    pub start: Option<Sample>,
    /// Once all initial clients were connected.
    pub baseline: Option<Sample>,
    /// Seconds from start to the baseline sample.
    pub baseline_at_secs: Option<f64>,
    /// Whether all initial clients were connected (or failed) at the baseline.
    pub baseline_complete: bool,
    /// At the end (after churn).
    pub end: Option<Sample>,
    /// Highest RSS sampled. **Unit:** KiB.
    pub peak_rss_kib: Option<u64>,
    /// End minus baseline. **Unit:** KiB.
    pub rss_growth_kib: Option<i64>,
    /// End minus baseline.
    pub fd_growth: Option<i64>,
    /// CPU time used between start and end. **Unit:** seconds.
    pub cpu_secs: Option<f64>,
    /// CPU time used between the baseline and the end (excludes connecting the
    /// initial clients). **Unit:** seconds.
    pub cpu_secs_since_baseline: Option<f64>,
    /// `cpu_secs_since_baseline` per own event received by a subscriber.
    /// **Unit:** microseconds.
    pub cpu_us_per_delivered_event: Option<f64>,
    /// How CPU ticks were converted.
    pub cpu_ticks_per_sec_assumed: f64,
}

/// Restart mode (`--server-cmd`).
#[derive(Debug, Serialize)]
pub struct Restarts {
    /// Restarts asked for (0, or `--restarts`).
    pub planned: u64,
    /// How the server was restarted (`term`, `kill`, `usr2`, `usr2_fail`).
    pub signal: crate::args::StopSignal,
    /// What starting, restarting and stopping the server found.
    #[serde(flatten)]
    pub found: Found,
    /// Steady subscribers that reconnected (with `Last-Event-ID`) after the restart.
    pub clients_reconnected: u64,
    /// Churn and reconnect sessions the restart ended (not failures).
    pub sessions_ended: u64,
    /// Publish attempts the restart made fail (retried with the same `seq`; not
    /// counted in `events.publish_errors`).
    pub publish_errors: u64,
    /// Events seen twice because the restart cut off their publish's answer and they
    /// were published again (not counted in `checks.duplicates`).
    pub republished_duplicates: u64,
}

/// The tool's own resources.
#[derive(Debug, Serialize)]
pub struct Tool {
    /// CPU time used. **Unit:** seconds.
    pub cpu_secs: Option<f64>,
    /// Resident memory at the end. **Unit:** KiB.
    pub rss_kib: Option<u64>,
    /// Executor threads.
    pub threads: usize,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The run's configuration.
    pub config: Config,
    /// Wall time of the run. **Unit:** seconds.
    pub elapsed_secs: f64,
    /// Length of the active phase. **Unit:** seconds.
    pub active_secs: f64,
    /// Steady clients.
    pub clients: Clients,
    /// Events.
    pub events: Events,
    /// Ordering checks.
    pub checks: Checks,
    /// Latency.
    pub latency_ms: Latency,
    /// Slow clients.
    pub slow: Slow,
    /// Churn.
    pub churn: Churn,
    /// Reconnects.
    pub reconnect: Reconnect,
    /// Server samples, with `--server-pid`.
    pub server: Option<Server>,
    /// Restart mode, with `--server-cmd`.
    pub restart: Option<Restarts>,
    /// The tool itself.
    pub tool: Tool,
    /// Several nodes, publishing unavailable, extra processes (each only when it applies).
    #[serde(flatten)]
    pub multi: cluster::Extra,
    /// The first errors seen.
    pub errors: Vec<String>,
    /// With `--processes P`: the reports of the other P-1 processes, as they wrote them
    /// (each with its own `ok`; this report's `ok` needs all of them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<serde_json::Value>,
    /// Whether every check passed.
    pub ok: bool,
    /// The checks that failed.
    pub failed_checks: Vec<String>,
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// `cpu_secs` spread over `events`, in microseconds (rounded to 0.001).
fn per_event_us(cpu_secs: f64, events: u64) -> f64 {
    (cpu_secs * 1e6 / events.max(1) as f64 * 1000.0).round() / 1000.0
}

fn diff(a: u64, b: u64) -> i64 {
    a as i64 - b as i64
}

/// Builds the report from the run's state and decides pass or fail.
pub fn build(rt: &Rt, tail: Tail, threads: usize) -> Report {
    let c = &rt.c;
    let [steady, churn, reconnect]: &[PerRole; 3] = &c.roles;
    let active_secs = (rt.active_end - rt.t0).as_secs_f64();
    let received = c.received.get();
    let publishing = rt.cfg.publish.is_some();
    let gaps_checked = publishing || rt.cfg.topics.is_empty();
    let resets = |r: ResetReason| get(&c.resets[r.index()]);
    let checks = Checks {
        gaps_checked,
        gaps: get(&steady.gaps) + get(&churn.gaps) + tail.missing,
        announced_gaps: get(&steady.announced_gaps) + get(&churn.announced_gaps),
        resets: Resets {
            evicted: resets(ResetReason::Evicted),
            other_epoch: resets(ResetReason::OtherEpoch),
            unknown: resets(ResetReason::Unknown),
            future: resets(ResetReason::Future),
            lost: resets(ResetReason::Lost),
            other: resets(ResetReason::Other),
        },
        unexpected_resets: get(&c.unexpected_resets),
        tail_missing: tail.missing,
        clients_behind_at_end: tail.behind,
        caught_up_after_secs: tail.caught_up_after_secs,
        duplicates: get(&steady.duplicates) + get(&churn.duplicates),
        out_of_order: get(&steady.out_of_order) + get(&churn.out_of_order),
    };
    let samples = *rt.samples.lock().unwrap_or_else(|e| e.into_inner());
    let server = rt.cfg.server_pid.map(|pid| Server {
        pid,
        start: samples.start,
        baseline: samples.baseline,
        baseline_at_secs: samples.baseline_at_secs,
        baseline_complete: samples.baseline_complete,
        end: samples.end,
        peak_rss_kib: samples.peak_rss_kib,
        rss_growth_kib: samples
            .end
            .zip(samples.baseline)
            .map(|(e, b)| diff(e.rss_kib, b.rss_kib)),
        fd_growth: samples
            .end
            .zip(samples.baseline)
            .map(|(e, b)| diff(e.fds, b.fds)),
        cpu_secs: samples
            .end
            .zip(samples.start)
            .map(|(e, s)| ((e.cpu_secs - s.cpu_secs) * 100.0).round() / 100.0),
        cpu_secs_since_baseline: samples
            .end
            .zip(samples.baseline)
            .map(|(e, b)| ((e.cpu_secs - b.cpu_secs) * 100.0).round() / 100.0),
        cpu_us_per_delivered_event: samples
            .end
            .zip(samples.baseline)
            .filter(|_| publishing && received > 0)
            .map(|(e, b)| per_event_us(e.cpu_secs - b.cpu_secs, received)),
        cpu_ticks_per_sec_assumed: procfs::TICKS_PER_SEC,
    });
    let own = procfs::sample("self").ok();
    let publish_secs = rt
        .publish_started
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .map(|s| rt.active_end.saturating_duration_since(s).as_secs_f64())
        .filter(|&s| s > 0.0);
    let mut report = Report {
        config: rt.cfg.clone(),
        elapsed_secs: (rt.t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        active_secs,
        clients: Clients {
            requested: rt.cfg.clients,
            connected: get(&c.connected),
            connect_failures: get(&c.connect_failures),
            dropped_by_server: get(&c.dropped),
            connected_at_end: tail.connected_at_end,
        },
        events: Events {
            published: get(&c.published),
            publish_rate_achieved: (get(&c.published) as f64 / active_secs * 10.0).round() / 10.0,
            publish_errors: get(&c.publish_errors),
            server_delivered_to: get(&c.delivered_to),
            final_seq: tail.final_seq,
            received,
            delivered_per_sec: (received as f64 / active_secs).round(),
            publish_secs: publish_secs.map(|s| (s * 1000.0).round() / 1000.0),
            delivered_per_publish_sec: publish_secs.map(|s| (received as f64 / s).round()),
            foreign: c.foreign.get(),
            comments: c.comments.get(),
            unsequenced: get(&c.unsequenced),
            bytes_received: c.bytes.get(),
        },
        checks,
        latency_ms: Latency {
            count: rt.latency.count(),
            p50: ms(rt.latency.quantile(0.50)),
            p90: ms(rt.latency.quantile(0.90)),
            p99: ms(rt.latency.quantile(0.99)),
            max: ms(rt.latency.max()),
        },
        slow: Slow {
            requested: rt.cfg.slow,
            connected: get(&c.slow_connected),
            failed: get(&c.slow_failed),
            evicted: get(&c.slow_evicted),
            not_evicted: get(&c.slow_not_evicted),
            drained_bytes: get(&c.slow_drained_bytes),
        },
        churn: Churn {
            rate: rt.cfg.churn,
            sessions: get(&c.churn_sessions),
            failed: get(&c.churn_failed),
            dropped_by_server: get(&c.churn_dropped),
            gaps: get(&churn.gaps),
        },
        reconnect: Reconnect {
            rate: rt.cfg.reconnect,
            sessions: get(&c.reconnect_sessions),
            reconnects: get(&c.reconnects),
            checked: get(&c.reconnects_checked),
            no_event_before_hangup: get(&c.reconnect_no_id),
            failed: get(&c.reconnect_failed),
            gaps: get(&reconnect.gaps),
            announced_gaps: get(&reconnect.announced_gaps),
            duplicates: get(&reconnect.duplicates),
            out_of_order: get(&reconnect.out_of_order),
        },
        server,
        restart: rt.cfg.server.as_ref().map(|s| Restarts {
            planned: if s.restart_after.is_some() {
                u64::from(s.restarts)
            } else {
                0
            },
            signal: s.restart_signal,
            found: rt
                .restart
                .found
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            clients_reconnected: get(&rt.restart.reconnected),
            sessions_ended: get(&rt.restart.sessions_ended),
            publish_errors: get(&rt.restart.publish_errors),
            republished_duplicates: get(&rt.restart.duplicates),
        }),
        tool: Tool {
            cpu_secs: procfs::own_cpu_secs(),
            rss_kib: own.map(|s| s.rss_kib),
            threads,
        },
        multi: rt.cluster.report(get(&c.published), received),
        errors: rt.errors.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        ok: false,
        processes: Vec::new(),
        failed_checks: Vec::new(),
    };
    report.failed_checks = failed_checks(&report, &rt.cfg);
    report.ok = report.failed_checks.is_empty();
    report
}

/// The names (with the numbers) of the checks that failed.
pub fn failed_checks(r: &Report, cfg: &Config) -> Vec<String> {
    let mut failed = Vec::new();
    let mut check = |bad: bool, what: String| {
        if bad {
            failed.push(what);
        }
    };
    check(
        r.clients.connect_failures > 0,
        format!("clients_not_connected: {}", r.clients.connect_failures),
    );
    check(
        r.clients.dropped_by_server > 0,
        format!("clients_dropped_by_server: {}", r.clients.dropped_by_server),
    );
    check(r.checks.gaps > 0, format!("gaps: {}", r.checks.gaps));
    check(
        r.checks.unexpected_resets > 0,
        format!("unexpected_resets: {}", r.checks.unexpected_resets),
    );
    check(
        r.checks.duplicates > 0,
        format!("duplicates: {}", r.checks.duplicates),
    );
    check(
        r.checks.out_of_order > 0,
        format!("out_of_order: {}", r.checks.out_of_order),
    );
    check(
        r.events.publish_errors > 0,
        format!("publish_errors: {}", r.events.publish_errors),
    );
    check(
        cfg.clients > 0 && !cfg.idle && r.events.received == 0,
        "nothing_received".to_string(),
    );
    check(
        r.slow.failed > 0,
        format!("slow_not_connected: {}", r.slow.failed),
    );
    check(
        r.slow.not_evicted > 0,
        format!("slow_not_evicted: {}", r.slow.not_evicted),
    );
    check(
        r.churn.failed + r.churn.dropped_by_server > 0,
        format!(
            "churn_failures: {}",
            r.churn.failed + r.churn.dropped_by_server
        ),
    );
    check(
        r.reconnect.failed > 0,
        format!("reconnect_failures: {}", r.reconnect.failed),
    );
    let rc = &r.reconnect;
    // A gap a reset announced is the server being honest about a loss (the history
    // did not reach back, or it restarted): reported, not a failure. A silent one is.
    check(
        rc.gaps + rc.duplicates + rc.out_of_order > 0,
        format!(
            "reconnect_continuity: gaps {} duplicates {} out_of_order {}",
            rc.gaps, rc.duplicates, rc.out_of_order
        ),
    );
    check(
        cfg.reconnect > 0.0 && rc.checked == 0,
        "reconnect_unchecked: no reconnect saw an event after resuming".to_string(),
    );
    if let Some(rs) = &r.restart {
        check(
            rs.found.restarts < rs.planned,
            format!("restart_not_done: {} of {}", rs.found.restarts, rs.planned),
        );
        check(
            !rs.found.errors.is_empty(),
            format!("server: {}", rs.found.errors.join("; ")),
        );
        // A handover keeps every stream: a reconnect, or an event published twice
        // because an answer was lost, is its failure.
        check(
            rs.signal.is_upgrade() && rs.clients_reconnected + rs.sessions_ended > 0,
            format!(
                "upgrade_reconnects: {} subscribers reconnected, {} sessions ended",
                rs.clients_reconnected, rs.sessions_ended
            ),
        );
        check(
            rs.signal.is_upgrade() && rs.republished_duplicates > 0,
            format!("upgrade_duplicates: {}", rs.republished_duplicates),
        );
    }
    if let Some(s) = &r.server {
        check(s.end.is_none(), "server_not_sampled_at_end".to_string());
        if let (Some(max), Some(g)) = (cfg.max_rss_growth_kib, s.rss_growth_kib) {
            check(g > max as i64, format!("rss_growth_kib: {g} > {max}"));
        }
        if let (Some(max), Some(g)) = (cfg.max_fd_growth, s.fd_growth) {
            check(g > max as i64, format!("fd_growth: {g} > {max}"));
        }
    }
    cluster::failed_checks(&r.multi, &mut failed);
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_event() {
        assert_eq!(per_event_us(2.0, 1_000_000), 2.0);
        assert_eq!(per_event_us(0.01, 3), 3333.333);
        assert_eq!(per_event_us(1.0, 0), 1e6);
    }
}
