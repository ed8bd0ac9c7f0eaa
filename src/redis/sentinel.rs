//! Asking Redis Sentinel where the master is (`SENTINEL get-master-addr-by-name`), and
//! hearing of failovers on the sentinels' pub/sub: when one starts (only the sentinel
//! that leads it announces its steps), when a replica is promoted, when it ends or is
//! given up ([`notice`]).
//!
//! The sentinels are asked in order; the first that knows the master answers. A
//! connection made from that answer still checks `ROLE` (in [`Connection::connect`]):
//! a sentinel can name the old master for a moment after a failover.

use std::time::{Duration, Instant};

use super::conn::{Connection, ErrorKind, RedisError, check};
use super::resp::Value;
use super::url::{Endpoint, Sentinels, TlsFiles};

/// Longest one sentinel may take to answer (connecting included), within the caller's
/// deadline. **Unit:** ms. **Why:** a sentinel that is down or black-holed must not use
/// up the whole connect timeout: the next one is asked.
pub const SENTINEL_TIMEOUT: Duration = Duration::from_millis(1000);

/// The channel on which a sentinel announces a new master, once the failover is done:
/// `<name> <old-ip> <old-port> <new-ip> <new-port>`.
pub const SWITCH_MASTER: &str = "+switch-master";

/// The channel on which a sentinel announces the replica it promoted, before it
/// reconfigures the other replicas and announces [`SWITCH_MASTER`]:
/// `slave <name> <ip> <port> @ <master-name> <master-ip> <master-port>`. **Why we
/// listen:** until the old master is turned into a replica it still takes writes, and
/// what it takes from then on is lost; a node that moves at the promotion writes to the
/// new master seconds sooner.
pub const PROMOTED: &str = "+promoted-slave";

/// What a sentinel does when no `failover-timeout` is configured (Sentinel's own
/// default). **Unit:** ms.
pub const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_millis(180_000);

/// The channels a failover's steps are announced on, in the order the leading sentinel
/// goes through them (`sentinel.c`'s events) up to the promotion (after it, the steps
/// are the promoted master's, not a danger to writes). Each message names the
/// instance (`master <name> <ip> <port>`, or `<type> <name> <ip> <port> @ <master-name>
/// <master-ip> <master-port>`).
pub const FAILOVER_STEPS: [&str; 6] = [
    "+try-failover",
    "+elected-leader",
    "+failover-state-select-slave",
    "+selected-slave",
    "+failover-state-send-slaveof-noone",
    "+failover-state-wait-promotion",
];

/// The channels on which a failover is given up or over (without a promotion this node
/// heard of): the fence it raised comes down.
pub const FAILOVER_ENDS: [&str; 5] = [
    "-failover-abort-not-elected",
    "-failover-abort-no-good-slave",
    "-failover-abort-slave-timeout",
    "+failover-end-for-timeout",
    "+failover-end",
];

/// What a sentinel's message says about our master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A failover of it started or moved on a step (it has not promoted a replica yet):
    /// writes to the master from now on may be lost.
    Failing,
    /// The failover this sentinel ran ended or was given up.
    Over,
    /// A replica was promoted (`+promoted-slave`), or the sentinels switched to it
    /// (`+switch-master`): the new master's `host:port`.
    Moved(String, u16),
}

/// A sentinel's address as an [`Endpoint`].
pub fn endpoint(addr: &(String, u16)) -> Endpoint {
    Endpoint::Tcp(addr.0.clone(), addr.1)
}

/// Connects to one sentinel and logs in with the sentinels' credentials, over TLS when
/// `tls` says so (`rediss-sentinel://`: the same CA, SNI and client certificate as the
/// master's connections).
///
/// # Errors
///
/// The connect or login failure.
pub async fn connect(
    s: &Sentinels,
    addr: &(String, u16),
    tls: Option<&TlsFiles>,
    timeout: Duration,
) -> Result<Connection, RedisError> {
    Connection::connect_plain(
        &endpoint(addr),
        s.user.as_deref(),
        s.password.as_deref(),
        tls,
        timeout,
    )
    .await
}

/// The master's `failover-timeout` as one sentinel has it (`SENTINEL MASTER name`), or
/// [`DEFAULT_FAILOVER_TIMEOUT`] when it does not say.
///
/// # Errors
///
/// The exchange's error (an unknown master is an error reply).
pub async fn failover_timeout(
    conn: &mut Connection,
    master: &str,
    timeout: Duration,
) -> Result<Duration, RedisError> {
    let v = conn.call(&["SENTINEL", "MASTER", master], timeout).await?;
    let ms = v.as_array().and_then(|flat| {
        flat.chunks(2).find_map(|kv| match kv {
            [k, v] if k.as_bytes() == Some(b"failover-timeout") => {
                std::str::from_utf8(v.as_bytes()?).ok()?.parse::<u64>().ok()
            }
            _ => None,
        })
    });
    Ok(ms.map_or(DEFAULT_FAILOVER_TIMEOUT, Duration::from_millis))
}

/// Asks the sentinels, in order, where the master is, by `deadline` (over TLS when `tls`
/// says so).
///
/// # Errors
///
/// When no sentinel answered with an address: the last sentinel's error, or "no sentinel
/// knows the master".
pub async fn master_addr(
    s: &Sentinels,
    tls: Option<&TlsFiles>,
    deadline: Instant,
) -> Result<(String, u16), RedisError> {
    let mut last = None;
    for addr in &s.addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let t = left.min(SENTINEL_TIMEOUT);
        let asked = async {
            let mut c = connect(s, addr, tls, t).await?;
            let v = c
                .call(&["SENTINEL", "get-master-addr-by-name", &s.master], t)
                .await?;
            Ok::<_, RedisError>(parse_addr(&v))
        }
        .await;
        match asked {
            Ok(Some(a)) => return Ok(a),
            Ok(None) => {}
            Err(e) => last = Some(format!("sentinel {}:{}: {e}", addr.0, addr.1)),
        }
    }
    Err(RedisError::Reply {
        kind: ErrorKind::Other,
        message: match last {
            Some(e) => format!("no sentinel named the master {:?} ({e})", s.master),
            None => format!("no sentinel knows the master {:?}", s.master),
        },
    })
}

/// `[host, port]` from `SENTINEL get-master-addr-by-name` (`None`: nil, not known).
fn parse_addr(v: &Value) -> Option<(String, u16)> {
    let [h, p] = v.as_array()? else { return None };
    let h = String::from_utf8(h.as_bytes()?.to_vec()).ok()?;
    let p = std::str::from_utf8(p.as_bytes()?).ok()?.parse().ok()?;
    Some((h, p))
}

/// Every channel [`subscribe`] listens on.
pub fn channels() -> Vec<&'static str> {
    let mut all = vec![SWITCH_MASTER, PROMOTED];
    all.extend(FAILOVER_STEPS);
    all.extend(FAILOVER_ENDS);
    all
}

/// Subscribes `conn` (a sentinel's) to [`channels`]: the switch, the promotion, and a
/// failover's steps and ends.
///
/// # Errors
///
/// The exchange's error, or an answer that is not one confirmation per channel.
pub async fn subscribe(conn: &mut Connection, timeout: Duration) -> Result<(), RedisError> {
    let channels = channels();
    let mut cmd = vec!["SUBSCRIBE"];
    cmd.extend(&channels);
    conn.send(&cmd).await?;
    for _ in 0..channels.len() {
        let v = conn.next_push(timeout).await?.ok_or(RedisError::Timeout)?;
        let v = check(v)?;
        let first = v
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_bytes);
        if first != Some(b"subscribe") {
            return Err(RedisError::Reply {
                kind: ErrorKind::Other,
                message: "unexpected reply to SUBSCRIBE".into(),
            });
        }
    }
    Ok(())
}

/// The master an event's text is about: `master <name> …`, or the name after `@`.
fn master_of<'a>(words: &[&'a str]) -> Option<&'a str> {
    match words {
        ["master", name, ..] => Some(name),
        _ => {
            let at = words.iter().position(|w| *w == "@")?;
            words.get(at + 1).copied()
        }
    }
}

/// What `push` (a pub/sub message from a sentinel) says about `master`, if anything.
pub fn notice(push: &Value, master: &str) -> Option<Notice> {
    let parts = push.as_array()?;
    if parts.first()?.as_bytes()? != b"message" {
        return None;
    }
    let channel = std::str::from_utf8(parts.get(1)?.as_bytes()?).ok()?;
    let text = std::str::from_utf8(parts.get(2)?.as_bytes()?).ok()?;
    let words: Vec<&str> = text.split(' ').collect();
    if let Some(to) = switched(push, master) {
        return Some(Notice::Moved(to.0, to.1));
    }
    if master_of(&words)? != master {
        return None;
    }
    if FAILOVER_STEPS.contains(&channel) {
        Some(Notice::Failing)
    } else if FAILOVER_ENDS.contains(&channel) {
        Some(Notice::Over)
    } else {
        None
    }
}

/// The new master's `host:port` if `push` is a [`SWITCH_MASTER`] or [`PROMOTED`]
/// message for `master`.
pub fn switched(push: &Value, master: &str) -> Option<(String, u16)> {
    let parts = push.as_array()?;
    if parts.first()?.as_bytes()? != b"message" {
        return None;
    }
    let channel = parts.get(1)?.as_bytes()?;
    let text = std::str::from_utf8(parts.get(2)?.as_bytes()?).ok()?;
    let words: Vec<&str> = text.split(' ').collect();
    let (name, host, port) = match (channel, words.as_slice()) {
        (b"+switch-master", [name, _, _, host, port]) => (*name, *host, *port),
        (b"+promoted-slave", ["slave", _, host, port, "@", name, _, _]) => (*name, *host, *port),
        _ => return None,
    };
    (name == master).then_some(())?;
    Some((host.to_owned(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::Bulk(Some(s.as_bytes().to_vec()))
    }

    #[test]
    fn answers_and_messages_parse() {
        let v = Value::Array(Some(vec![b("127.0.0.1"), b("6380")]));
        assert_eq!(parse_addr(&v), Some(("127.0.0.1".into(), 6380)));
        assert_eq!(parse_addr(&Value::Array(None)), None);
        assert_eq!(parse_addr(&Value::Bulk(None)), None);
        let msg = |text: &str| Value::Array(Some(vec![b("message"), b(SWITCH_MASTER), b(text)]));
        assert_eq!(
            switched(&msg("mymaster 127.0.0.1 6379 127.0.0.1 6380"), "mymaster"),
            Some(("127.0.0.1".into(), 6380))
        );
        assert_eq!(switched(&msg("other 1 2 3 4"), "mymaster"), None);
        assert_eq!(switched(&msg("mymaster 1 2"), "mymaster"), None);
        let promoted = |text: &str| Value::Array(Some(vec![b("message"), b(PROMOTED), b(text)]));
        assert_eq!(
            switched(
                &promoted("slave 127.0.0.1:7 127.0.0.1 7 @ mymaster 127.0.0.1 6379"),
                "mymaster"
            ),
            Some(("127.0.0.1".into(), 7))
        );
        assert_eq!(
            switched(&promoted("slave a:7 a 7 @ other b 6379"), "mymaster"),
            None
        );
        let confirm = Value::Array(Some(vec![b("subscribe"), b(SWITCH_MASTER), Value::Int(1)]));
        assert_eq!(switched(&confirm, "mymaster"), None);
    }

    #[test]
    fn a_failover_s_steps_and_ends_are_told_apart_for_our_master_only() {
        let on = |ch: &str, text: &str| {
            notice(
                &Value::Array(Some(vec![b("message"), b(ch), b(text)])),
                "mymaster",
            )
        };
        let m = "master mymaster 127.0.0.1 6379";
        for step in FAILOVER_STEPS {
            assert_eq!(on(step, m), Some(Notice::Failing), "{step}");
            assert_eq!(on(step, "master other 127.0.0.1 6379"), None, "{step}");
        }
        assert_eq!(
            on(
                "+selected-slave",
                "slave 127.0.0.1:7 127.0.0.1 7 @ mymaster 127.0.0.1 6379"
            ),
            Some(Notice::Failing)
        );
        for end in FAILOVER_ENDS {
            assert_eq!(on(end, m), Some(Notice::Over), "{end}");
        }
        assert_eq!(
            on(SWITCH_MASTER, "mymaster 127.0.0.1 6379 127.0.0.1 7"),
            Some(Notice::Moved("127.0.0.1".into(), 7))
        );
        assert_eq!(on("+sdown", m), None);
        assert_eq!(on("+try-failover", ""), None);
        assert_eq!(
            channels().len(),
            2 + FAILOVER_STEPS.len() + FAILOVER_ENDS.len()
        );
    }
}
