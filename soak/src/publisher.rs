//! The publisher: one keep-alive connection posting numbered events, on a thread of its
//! own.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_io::Timer;
use async_net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt, Future, FutureExt};
use serde::{Deserialize, Serialize};

use crate::args::{EVENT_NAME, Rate, Style};
use crate::cluster;
use crate::counters::add;
use crate::dial::IO_TIMEOUT;
use crate::http::{self, Dechunker, Framing};
use crate::runtime::{Rt, connect};
use crate::signal::{sleep_until, unix_us, until};

/// The publish answer of ssehub.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    delivered_to: u64,
}

/// The publish request body.
#[derive(Debug, Serialize)]
struct PublishBody<'a> {
    data: &'a str,
    event: &'a str,
    topic: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    private: bool,
}

/// The event data for `seq`: `{"seq":N,"sent_us":M,"pad":"xx…"}` padded to `size` bytes.
fn event_data(seq: u64, sent_us: u64, size: usize) -> String {
    let base = format!("{{\"seq\":{seq},\"sent_us\":{sent_us},\"pad\":\"\"}}");
    let pad = size.saturating_sub(base.len());
    let mut s = String::with_capacity(base.len() + pad);
    s.push_str(&base[..base.len() - 2]);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str("\"}");
    s
}

/// Sends one request on a keep-alive connection and reads the answer: (status, body,
/// whether the server closes the connection).
async fn exchange(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    req: &[u8],
) -> io::Result<(u16, Vec<u8>, bool)> {
    s.write_all(req).await?;
    let mut chunk = [0u8; 4096];
    let head_len = loop {
        if let Some(n) = http::head_len(buf) {
            break n;
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("response head too large"));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = http::parse_head(&buf[..head_len]).map_err(io::Error::other)?;
    buf.drain(..head_len);
    let mut body = Vec::new();
    match head.framing {
        Framing::Length(n) => {
            let n = usize::try_from(n).map_err(io::Error::other)?;
            while buf.len() < n {
                let k = s.read(&mut chunk).await?;
                if k == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..k]);
            }
            body.extend(buf.drain(..n));
        }
        Framing::Chunked => {
            let mut d = Dechunker::default();
            loop {
                d.feed(buf, |p| body.extend_from_slice(p))
                    .map_err(io::Error::other)?;
                buf.clear();
                if d.is_done() {
                    break;
                }
                let k = s.read(&mut chunk).await?;
                if k == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..k]);
            }
        }
        Framing::Close => {
            body.append(buf);
            loop {
                let k = s.read(&mut chunk).await?;
                if k == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..k]);
            }
        }
    }
    Ok((
        head.status,
        body,
        head.close || head.framing == Framing::Close,
    ))
}

/// Whether a publish answer with `status` means the event was published.
fn accepted(style: Style, status: u16) -> bool {
    match style {
        Style::Ssehub => status == 200,
        Style::Nchan => (200..300).contains(&status),
    }
}

/// The publisher: one keep-alive connection (one per node with `--publish-to
/// round-robin`), one request at a time, at the set rate.
async fn publisher(rt: Arc<Rt>) {
    let Some(p) = rt.cfg.publish.clone() else {
        return;
    };
    let targets = &rt.cfg.cluster.publish_targets;
    // Per target: the keep-alive connection, what was read past the last answer, and
    // the restart era it was opened in.
    let mut conns: Vec<(Option<TcpStream>, Vec<u8>, u64)> = (0..targets.len().max(1))
        .map(|_| (None, Vec::new(), 0))
        .collect();
    // Since when publishing is answered 503 (`cluster.rs`).
    let mut unavailable_since = None;
    let mut seq = 1u64;
    let start = Instant::now();
    let mut attempts = 0u64;
    if p.wait_connected {
        until(rt.baseline_taken.wait(), &rt.active, None).await;
        if rt.active.fired() {
            return;
        }
    }
    let start = if p.wait_connected {
        Instant::now()
    } else {
        start
    };
    *rt.publish_started.lock().unwrap_or_else(|e| e.into_inner()) = Some(start);
    while !rt.active.fired() {
        if let Rate::PerSec(r) = p.rate {
            let due = start + Duration::from_secs_f64(attempts as f64 / r);
            if due > Instant::now() && !sleep_until(due, &rt.active).await {
                break;
            }
        }
        let k = attempts as usize % conns.len();
        let (addr, host, target) = match targets.get(k) {
            Some(t) => (Some(t.addr), &t.host, &t.target),
            None => (p.addr, &p.host, &p.target),
        };
        let (conn, buf, opened_in) = &mut conns[k];
        attempts += 1;
        // Failures from here on are the restart's when one began meanwhile.
        let era = rt.restart.era();
        let stream = match conn {
            Some(s) => s,
            None => match match addr {
                Some(addr) => rt.dial.connect(addr, &rt.active).await,
                None => connect(&rt, &rt.active).await,
            } {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    buf.clear();
                    *opened_in = era;
                    conn.insert(s)
                }
                Err(e) => {
                    if rt.restart.hit(era) {
                        add(&rt.restart.publish_errors, 1);
                        sleep_until(Instant::now() + Duration::from_millis(20), &rt.active).await;
                    } else if !rt.active.fired() {
                        add(&rt.c.publish_errors, 1);
                        rt.error(format!("publisher: {e}"));
                        sleep_until(Instant::now() + Duration::from_millis(200), &rt.active).await;
                    }
                    continue;
                }
            },
        };
        rt.sent_seq.store(seq, Ordering::SeqCst);
        let data = event_data(seq, unix_us(), p.body_size);
        let body = match p.style {
            Style::Ssehub => serde_json::to_vec(&PublishBody {
                data: &data,
                event: EVENT_NAME,
                topic: &p.topic,
                private: p.private_every > 0 && seq.is_multiple_of(p.private_every),
            })
            .unwrap_or_default(),
            Style::Nchan => data.into_bytes(),
        };
        let req = http::post_json(target, host, p.token.as_deref(), &body);
        // The request in flight is finished even when the phase ends (bounded by the
        // timeout), so that the acknowledged sequence number is exact.
        let answer = exchange(stream, buf, &req)
            .or(async {
                Timer::after(IO_TIMEOUT).await;
                Err(io::ErrorKind::TimedOut.into())
            })
            .await;
        match answer {
            Ok((status, body, close)) if accepted(p.style, status) => {
                add(&rt.c.published, 1);
                rt.acked_seq.store(seq, Ordering::SeqCst);
                rt.cluster.on_published(&mut unavailable_since);
                if let Ok(a) = serde_json::from_slice::<Answer>(&body) {
                    add(&rt.c.delivered_to, a.delivered_to);
                }
                seq += 1;
                if close {
                    *conn = None;
                }
            }
            Ok((_, _, close)) if rt.restart.hit(era) => {
                // Refused by a server going down or coming up: the same seq again.
                add(&rt.restart.publish_errors, 1);
                if close {
                    *conn = None;
                }
                sleep_until(Instant::now() + Duration::from_millis(20), &rt.active).await;
            }
            Ok((503, body, close)) => {
                // The server cannot publish now (its broker is down). Expected
                // (--tolerate-unavailable): the retry is a new event, since this one may
                // have reached the broker all the same (see cluster.rs); otherwise the
                // same seq is used again.
                rt.cluster
                    .on_unavailable(&mut unavailable_since, target, &body);
                if rt.cfg.cluster.tolerate_unavailable {
                    rt.cluster.abandon(seq);
                    seq += 1;
                }
                if close {
                    *conn = None;
                }
                sleep_until(Instant::now() + cluster::UNAVAILABLE_RETRY, &rt.active).await;
            }
            Ok((status, body, close)) => {
                // Not published: the same seq is used again.
                add(&rt.c.publish_errors, 1);
                rt.error(format!(
                    "publisher: POST {target} answered {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                ));
                if close {
                    *conn = None;
                }
                sleep_until(Instant::now() + Duration::from_millis(100), &rt.active).await;
            }
            Err(_) if rt.restart.hit(era) || rt.restart.hit(*opened_in) => {
                // A restart cut the answer off, or the connection was opened before a
                // restart (an idle keep-alive connection the old process closed as it
                // handed over, seen at a slow rate only at the next publish): published
                // or not, the same seq again, and a subscriber seeing it twice is the
                // restart's doing.
                add(&rt.restart.publish_errors, 1);
                rt.restart.ambiguous(seq);
                *conn = None;
                if !rt.restart.hit(era) {
                    // Only the connection was stale: again at once on a new one, in
                    // the same slot of the rate.
                    attempts -= 1;
                }
            }
            Err(e) => {
                // Unknown whether it was published: the same seq is used again (a
                // subscriber may then see a duplicate, reported as such).
                add(&rt.c.publish_errors, 1);
                rt.error(format!("publisher: {e}"));
                *conn = None;
            }
        }
    }
}

/// Runs the publisher on a thread of its own and returns a future that completes when it
/// has finished. On the executor it shared a queue with every subscriber's reader, so with
/// 1,000 subscribers "publish again as soon as the answer arrives" waited behind the
/// readers woken by the previous event: the tool, not the server, set the pace. (Should the
/// thread not start, it runs on the executor as before.)
pub(crate) fn spawn_publisher(rt: Arc<Rt>) -> impl Future<Output = ()> + Send + 'static {
    let (done_tx, done_rx) = async_channel::bounded::<()>(1);
    let thread_rt = rt.clone();
    let started = std::thread::Builder::new()
        .name("soak-publisher".into())
        .spawn(move || {
            async_io::block_on(publisher(thread_rt));
            drop(done_tx);
        });
    let fallback = match started {
        Ok(_) => None,
        Err(e) => {
            rt.error(format!(
                "publisher thread: {e}; publishing from the executor"
            ));
            Some(publisher(rt))
        }
    };
    async move {
        match fallback {
            Some(fut) => fut.await,
            None => {
                let _ = done_rx.recv().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::payload;

    #[test]
    fn event_data_is_padded_json() {
        let d = event_data(7, 123, 0);
        assert_eq!(d, r#"{"seq":7,"sent_us":123,"pad":""}"#);
        let d = event_data(7, 123, 100);
        assert_eq!(d.len(), 100);
        let v: serde_json::Value = serde_json::from_str(&d).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(payload(d.as_bytes()).unwrap().sent_us, 123);
    }

    #[test]
    fn publish_answers() {
        assert!(accepted(Style::Ssehub, 200));
        assert!(!accepted(Style::Ssehub, 202));
        assert!(accepted(Style::Nchan, 201) && accepted(Style::Nchan, 202));
        assert!(!accepted(Style::Nchan, 403) && !accepted(Style::Nchan, 199));
    }
}
