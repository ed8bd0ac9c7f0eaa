//! Asking Redis Sentinel where the master is (`SENTINEL get-master-addr-by-name`), and
//! hearing of failovers (`+switch-master` on the sentinels' pub/sub).
//!
//! The sentinels are asked in order; the first that knows the master answers. A
//! connection made from that answer still checks `ROLE` (in [`Connection::connect`]):
//! a sentinel can name the old master for a moment after a failover.

use std::time::{Duration, Instant};

use super::conn::{Connection, ErrorKind, RedisError, check};
use super::resp::Value;
use super::url::{Endpoint, Sentinels};

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

/// A sentinel's address as an [`Endpoint`].
pub fn endpoint(addr: &(String, u16)) -> Endpoint {
    Endpoint::Tcp(addr.0.clone(), addr.1)
}

/// Connects to one sentinel and logs in with the sentinels' credentials.
///
/// # Errors
///
/// The connect or login failure.
pub async fn connect(
    s: &Sentinels,
    addr: &(String, u16),
    timeout: Duration,
) -> Result<Connection, RedisError> {
    Connection::connect_plain(
        &endpoint(addr),
        s.user.as_deref(),
        s.password.as_deref(),
        timeout,
    )
    .await
}

/// Asks the sentinels, in order, where the master is, by `deadline`.
///
/// # Errors
///
/// When no sentinel answered with an address: the last sentinel's error, or "no sentinel
/// knows the master".
pub async fn master_addr(s: &Sentinels, deadline: Instant) -> Result<(String, u16), RedisError> {
    let mut last = None;
    for addr in &s.addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let t = left.min(SENTINEL_TIMEOUT);
        let asked = async {
            let mut c = connect(s, addr, t).await?;
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

/// Subscribes `conn` (a sentinel's) to [`SWITCH_MASTER`] and [`PROMOTED`].
///
/// # Errors
///
/// The exchange's error, or an answer that is not the two confirmations.
pub async fn subscribe(conn: &mut Connection, timeout: Duration) -> Result<(), RedisError> {
    conn.send(&["SUBSCRIBE", SWITCH_MASTER, PROMOTED]).await?;
    for _ in 0..2 {
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
}
