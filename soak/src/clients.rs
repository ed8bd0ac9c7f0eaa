//! The subscribers of a run: steady, slow (never reading), churning and reconnecting
//! clients, and the connector that starts them.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_executor::Executor;
use futures_lite::{AsyncReadExt, Future};

use crate::cluster::Phase;
use crate::counters::{CONNECTED, Role, add, get};
use crate::dial::{READ_BUF, write_timed};
use crate::runtime::Rt;
use crate::session::{End, Plan, StreamState, session};
use crate::signal::{sleep_until, until};

/// Most churn plus reconnect sessions alive at once.
const MAX_SESSIONS: u64 = 2000;
/// How long a slow client may take to drain its socket to the server's close.
const SLOW_DRAIN: Duration = Duration::from_secs(2);

/// A steady subscriber: connects once and reads until the run stops. When a restart
/// (`--server-cmd`) ends its stream, it reconnects with the last id it saw, as a browser
/// would, and its checks go on across the reconnect.
async fn steady_client(rt: Arc<Rt>, idx: usize) {
    let slot = &rt.slots[idx];
    let mut st = StreamState::new(Role::Steady, rt.count_gaps());
    st.extra.node = rt.cluster.node_of(idx);
    let mut ever = false;
    let end = loop {
        let era = rt.restart.era();
        let last_id = st.parser.last_id().to_vec();
        let mut connected = false;
        let end = session(
            &rt,
            &mut st,
            (!last_id.is_empty()).then_some(&last_id[..]),
            &rt.stop,
            Plan::default(),
            Some(slot),
            || {
                connected = true;
                slot.state.store(CONNECTED, Ordering::Relaxed);
                add(&rt.c.connected_now, 1);
                if !ever {
                    add(&rt.c.connected, 1);
                    add(&rt.c.initial_resolved, 1);
                }
            },
        )
        .await;
        ever |= connected;
        if connected {
            rt.c.connected_now.fetch_sub(1, Ordering::Relaxed);
        }
        let restarted = matches!(end, End::ServerClosed | End::Failed(_)) && rt.restart.hit(era);
        if !restarted || rt.stop.fired() {
            break end;
        }
        slot.state.store(0, Ordering::Relaxed);
        if connected {
            add(&rt.restart.reconnected, 1);
        }
        st.parser.reconnect();
        let pause = if rt.restart.is_down() { 50 } else { 5 };
        if !sleep_until(Instant::now() + Duration::from_millis(pause), &rt.stop).await {
            break End::Stopped;
        }
    };
    let state = match end {
        End::Failed(e) => {
            add(&rt.c.connect_failures, 1);
            if !ever {
                add(&rt.c.initial_resolved, 1);
            }
            rt.error(format!("client {idx}: {e}"));
            2
        }
        End::ServerClosed => {
            if !rt.stop.fired() {
                add(&rt.c.dropped, 1);
                rt.error(format!("client {idx}: the server closed the stream"));
            }
            3
        }
        End::Stopped | End::Deadline => 4,
    };
    slot.state.store(state, Ordering::Relaxed);
}

/// A client that sends its request and never reads, until the slow check: then it drains
/// its socket and expects the server's close.
async fn slow_client(rt: Arc<Rt>, idx: usize) {
    let node = rt.cluster.node_of(idx);
    let started = async {
        let mut s = rt.cluster.connect(&rt.dial, node, &rt.active).await?;
        let req = rt.cluster.stream_request(node, None);
        write_timed(&mut s, &req, &rt.active).await?;
        io::Result::Ok(s)
    }
    .await;
    add(&rt.c.initial_resolved, 1);
    let mut stream = match started {
        Ok(s) => s,
        Err(e) => {
            add(&rt.c.slow_failed, 1);
            add(&rt.c.slow_done, 1);
            rt.error(format!("slow client {idx}: {e}"));
            return;
        }
    };
    add(&rt.c.slow_connected, 1);
    rt.cluster.count_slow(node);
    rt.active.wait().await;
    let deadline = (Instant::now() + SLOW_DRAIN).min(rt.end_at - Duration::from_millis(700));
    let mut buf = [0u8; READ_BUF];
    let mut first = Vec::new();
    let mut drained = 0u64;
    let evicted = loop {
        match until(stream.read(&mut buf), &rt.stop, Some(deadline)).await {
            Some(Ok(0)) | Some(Err(_)) => break true,
            Some(Ok(n)) => {
                if first.len() < 12 {
                    first.extend_from_slice(&buf[..n.min(12)]);
                }
                drained += n as u64;
            }
            None => break false,
        }
    };
    add(&rt.c.slow_drained_bytes, drained);
    let ok_head = first.starts_with(b"HTTP/1.1 200") || first.starts_with(b"HTTP/1.0 200");
    if !ok_head {
        add(&rt.c.slow_failed, 1);
        rt.error(format!(
            "slow client {idx}: no 200 response (got {:?})",
            String::from_utf8_lossy(&first)
        ));
    } else if evicted {
        add(&rt.c.slow_evicted, 1);
    } else {
        add(&rt.c.slow_not_evicted, 1);
    }
    add(&rt.c.slow_done, 1);
}

/// Decrements the in-flight session count when a session task ends.
struct InFlight(Arc<Rt>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.c.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn millis(lo: u64, hi: u64) -> Duration {
    Duration::from_millis(fastrand::u64(lo..hi))
}

/// A churn client: connects, reads for 100–500 ms, hangs up.
async fn churn_client(rt: Arc<Rt>) {
    let _guard = InFlight(rt.clone());
    let mut st = StreamState::new(Role::Churn, rt.count_gaps());
    st.extra.node = rt.cluster.next_node(Role::Churn);
    let plan = Plan {
        max_dwell: Some(millis(100, 500)),
        ..Plan::default()
    };
    let era = rt.restart.era();
    let end = session(&rt, &mut st, None, &rt.active, plan, None, || {
        add(&rt.c.churn_sessions, 1)
    })
    .await;
    match end {
        End::Failed(_) | End::ServerClosed if rt.restart.hit(era) => {
            add(&rt.restart.sessions_ended, 1);
        }
        End::Failed(e) => {
            add(&rt.c.churn_failed, 1);
            rt.error(format!("churn client: {e}"));
        }
        End::ServerClosed => {
            add(&rt.c.churn_dropped, 1);
            rt.error("churn client: the server closed the stream early".into());
        }
        End::Stopped | End::Deadline => {}
    }
}

/// A reconnecting client: reads until it saw an event, hangs up, waits 100 ms, resumes
/// with `Last-Event-ID` and must continue without a gap.
async fn reconnect_client(rt: Arc<Rt>) {
    let _guard = InFlight(rt.clone());
    add(&rt.c.reconnect_sessions, 1);
    let mut st = StreamState::new(Role::Reconnect, rt.count_gaps());
    st.extra.node = rt.cluster.next_node(Role::Reconnect);
    let plan = |lo, hi| Plan {
        min_dwell: Some(millis(lo, hi)),
        need_event: true,
        max_dwell: Some(Duration::from_secs(3)),
    };
    let era = rt.restart.era();
    let first = session(&rt, &mut st, None, &rt.active, plan(300, 800), None, || {}).await;
    match first {
        End::Deadline => {}
        End::Stopped => return,
        // A restart ended it: resume across the restart, once the server is back.
        End::ServerClosed | End::Failed(_) if rt.restart.hit(era) => {
            add(&rt.restart.sessions_ended, 1);
            while rt.restart.is_down() {
                if !sleep_until(Instant::now() + Duration::from_millis(50), &rt.active).await {
                    return;
                }
            }
        }
        End::Failed(e) => {
            add(&rt.c.reconnect_failed, 1);
            rt.error(format!("reconnect client: {e}"));
            return;
        }
        End::ServerClosed => {
            add(&rt.c.reconnect_failed, 1);
            rt.error("reconnect client: the server closed the stream".into());
            return;
        }
    }
    let last_id = st.parser.last_id().to_vec();
    if last_id.is_empty() || st.events_seen == 0 {
        add(&rt.c.reconnect_no_id, 1);
        return;
    }
    if !sleep_until(Instant::now() + Duration::from_millis(100), &rt.active).await {
        return;
    }
    st.parser.reconnect();
    // On another node when there is one: the id is replayed by a node that did not send it.
    st.extra.node = rt.cluster.other_node(st.extra.node);
    let era = rt.restart.era();
    let second = session(
        &rt,
        &mut st,
        Some(&last_id),
        &rt.active,
        plan(200, 600),
        None,
        || add(&rt.c.reconnects, 1),
    )
    .await;
    if st.events_seen > 0 {
        add(&rt.c.reconnects_checked, 1);
    }
    match second {
        End::Failed(_) | End::ServerClosed if rt.restart.hit(era) => {
            add(&rt.restart.sessions_ended, 1);
        }
        End::Failed(e) => {
            add(&rt.c.reconnect_failed, 1);
            rt.error(format!("reconnect client (resuming): {e}"));
        }
        End::ServerClosed => {
            add(&rt.c.reconnect_failed, 1);
            rt.error("reconnect client: the server closed the resumed stream".into());
        }
        _ => {}
    }
}

/// Spawns `task` `rate` times per second until the active phase ends.
async fn spawner<F, Fut>(rt: Arc<Rt>, ex: Arc<Executor<'static>>, rate: f64, task: F)
where
    F: Fn(Arc<Rt>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if rate <= 0.0 {
        return;
    }
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    loop {
        next += interval;
        if !sleep_until(next, &rt.active).await {
            return;
        }
        if get(&rt.c.in_flight) < MAX_SESSIONS {
            add(&rt.c.in_flight, 1);
            ex.spawn(task(rt.clone())).detach();
        }
    }
}

/// Connects the initial clients (slow ones first, so that they have the longest time to
/// be evicted), takes the baseline sample, then starts churn and reconnects.
pub(crate) async fn connector(rt: Arc<Rt>, ex: Arc<Executor<'static>>) {
    let total = rt.cfg.slow + rt.cfg.clients;
    let start = Instant::now();
    for i in 0..total {
        if rt.cfg.connect_rate > 0.0 {
            let due = start + Duration::from_secs_f64(i as f64 / rt.cfg.connect_rate);
            if !sleep_until(due, &rt.active).await {
                break;
            }
        } else if rt.active.fired() {
            break;
        }
        if i < rt.cfg.slow {
            ex.spawn(slow_client(rt.clone(), i)).detach();
        } else {
            ex.spawn(steady_client(rt.clone(), i - rt.cfg.slow))
                .detach();
        }
        if i % 64 == 63 {
            futures_lite::future::yield_now().await;
        }
    }
    let mut complete = false;
    while !rt.active.fired() {
        if get(&rt.c.initial_resolved) >= total as u64 {
            complete = true;
            break;
        }
        sleep_until(Instant::now() + Duration::from_millis(20), &rt.active).await;
    }
    let baseline = rt.sample_server();
    rt.cluster.sample_extra(Phase::Baseline);
    {
        let mut s = rt.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.baseline = baseline;
        s.baseline_at_secs = Some(rt.secs());
        s.baseline_complete = complete;
    }
    rt.baseline_taken.fire();
    if rt.active.fired() {
        return;
    }
    let churn = ex.spawn(spawner(rt.clone(), ex.clone(), rt.cfg.churn, churn_client));
    let reconnect = ex.spawn(spawner(
        rt.clone(),
        ex.clone(),
        rt.cfg.reconnect,
        reconnect_client,
    ));
    churn.await;
    reconnect.await;
}
