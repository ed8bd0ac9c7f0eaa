//! The Redis Stream commands the hub uses, with their replies parsed: `XADD` with an
//! approximate `MAXLEN`, the reader's `XREAD BLOCK` and its pipelined cursor check, the tail
//! at start (`XREVRANGE`) and a range for a resume older than the local history
//! (`XRANGE`).

use std::time::Duration;

use super::conn::{Connection, RedisError, check};
use super::resp::Value;

/// One stream entry: its id (`<ms>-<seq>`) and its field/value pairs in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The id Redis assigned.
    pub id: String,
    /// Field/value pairs.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    /// The first value of `field`.
    pub fn field(&self, field: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == field.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

fn protocol(what: &str) -> RedisError {
    RedisError::Reply {
        kind: super::conn::ErrorKind::Other,
        message: format!("unexpected reply shape: {what}"),
    }
}

/// Parses `[[id, [f, v, ...]], ...]` (the reply of XRANGE / XREVRANGE, and each stream's
/// entries in XREAD).
pub fn entries(v: &Value) -> Result<Vec<Entry>, RedisError> {
    if v.is_nil() {
        return Ok(Vec::new());
    }
    let items = v.as_array().ok_or_else(|| protocol("entries"))?;
    items
        .iter()
        .map(|e| {
            let pair = e.as_array().ok_or_else(|| protocol("entry"))?;
            let [id, fields] = pair else {
                return Err(protocol("entry pair"));
            };
            let id = std::str::from_utf8(id.as_bytes().ok_or_else(|| protocol("id"))?)
                .map_err(|_| protocol("id"))?
                .to_owned();
            let flat = if fields.is_nil() {
                &[][..]
            } else {
                fields.as_array().ok_or_else(|| protocol("fields"))?
            };
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            for kv in flat.chunks(2) {
                let [k, v] = kv else {
                    return Err(protocol("odd field list"));
                };
                let k = k.as_bytes().ok_or_else(|| protocol("field"))?.to_vec();
                let v = v.as_bytes().ok_or_else(|| protocol("value"))?.to_vec();
                pairs.push((k, v));
            }
            Ok(Entry { id, fields: pairs })
        })
        .collect()
}

/// `XADD key MAXLEN ~ maxlen * field value ...`: the id Redis assigned.
///
/// # Errors
///
/// The exchange's error, or the server's (e.g. `OOM`).
pub async fn xadd(
    conn: &mut Connection,
    key: &str,
    maxlen: usize,
    fields: &[(&[u8], &[u8])],
    timeout: Duration,
) -> Result<String, RedisError> {
    let maxlen = maxlen.to_string();
    let mut args: Vec<&[u8]> = vec![
        b"XADD",
        key.as_bytes(),
        b"MAXLEN",
        b"~",
        maxlen.as_bytes(),
        b"*",
    ];
    for (k, v) in fields {
        args.push(k);
        args.push(v);
    }
    let id = conn.call(&args, timeout).await?;
    let id = id.as_bytes().ok_or_else(|| protocol("XADD id"))?;
    Ok(String::from_utf8_lossy(id).into_owned())
}

/// The script of [`xadd_once`]: if the guard key exists, its value (the id the first
/// publish got) and 1; else `XADD`, the guard set to the new id with a TTL, the id and 0.
/// Redis runs a script atomically, so a retry after a lost reply finds the guard.
pub const XADD_ONCE: &str = "local prev = redis.call('GET', KEYS[2]) \
if prev then return {prev, 1} end \
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3)) \
redis.call('SET', KEYS[2], id, 'EX', ARGV[2]) \
return {id, 0}";

/// `XADD` guarded by `guard` (a key that lives `ttl_secs`): the entry is added only if no
/// publish with the same guard was added within the TTL. Returns the id and whether it
/// was the earlier publish's (nothing added).
///
/// # Errors
///
/// As [`xadd`].
pub async fn xadd_once(
    conn: &mut Connection,
    key: &str,
    guard: &str,
    ttl_secs: u64,
    maxlen: usize,
    fields: &[(&[u8], &[u8])],
    timeout: Duration,
) -> Result<(String, bool), RedisError> {
    let maxlen = maxlen.to_string();
    let ttl = ttl_secs.max(1).to_string();
    let mut args: Vec<&[u8]> = vec![
        b"EVAL",
        XADD_ONCE.as_bytes(),
        b"2",
        key.as_bytes(),
        guard.as_bytes(),
        maxlen.as_bytes(),
        ttl.as_bytes(),
    ];
    for (k, v) in fields {
        args.push(k);
        args.push(v);
    }
    let reply = conn.call(&args, timeout).await?;
    let parts = reply.as_array().ok_or_else(|| protocol("EVAL reply"))?;
    let id = parts
        .first()
        .and_then(Value::as_bytes)
        .ok_or_else(|| protocol("EVAL id"))?;
    let repeated = matches!(parts.get(1), Some(Value::Int(1)));
    Ok((String::from_utf8_lossy(id).into_owned(), repeated))
}

/// What one turn of the reader got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Whether the cursor's own entry still existed after the read (always true for the
    /// start cursor `0-0`). False: entries after it may have been trimmed or lost before
    /// this node read them.
    pub cursor_exists: bool,
    /// Entries after the cursor, oldest first.
    pub entries: Vec<Entry>,
}

/// One turn of the reader, pipelined: `XREAD COUNT count BLOCK block_ms STREAMS key
/// cursor`, then `XRANGE key cursor cursor` (does the cursor's entry still exist?),
/// within `block + slack`.
///
/// The check runs after the read, so it covers it: Redis trims a stream from its oldest
/// end, so when the cursor's entry is still there after the read, nothing after it was
/// trimmed before the read saw it, and the entries read are all there was (up to
/// `count`). Checked before the read instead, a trim landing while the read blocks
/// would lose entries silently. (`XDEL` of single entries is not detected.)
///
/// # Errors
///
/// The exchange's error, or a server error reply to either command.
pub async fn read(
    conn: &mut Connection,
    key: &str,
    cursor: &str,
    count: usize,
    block: Duration,
    slack: Duration,
) -> Result<Read, RedisError> {
    let count = count.to_string();
    let block_ms = block.as_millis().to_string();
    let cmds: Vec<Vec<&[u8]>> = vec![
        vec![
            b"XREAD",
            b"COUNT",
            count.as_bytes(),
            b"BLOCK",
            block_ms.as_bytes(),
            b"STREAMS",
            key.as_bytes(),
            cursor.as_bytes(),
        ],
        vec![
            b"XRANGE",
            key.as_bytes(),
            cursor.as_bytes(),
            cursor.as_bytes(),
        ],
    ];
    let mut replies = conn.pipeline(&cmds, block + slack).await?.into_iter();
    let got = check(replies.next().ok_or(RedisError::Closed)?)?;
    let range = check(replies.next().ok_or(RedisError::Closed)?)?;
    let cursor_exists = cursor == "0-0" || !entries(&range)?.is_empty();
    // XREAD: nil on timeout, else [[key, entries]].
    let entries = match got.as_array() {
        None => Vec::new(),
        Some(streams) => {
            let mut out = Vec::new();
            for s in streams {
                let pair = s.as_array().ok_or_else(|| protocol("XREAD stream"))?;
                if let [_, es] = pair {
                    out.extend(entries(es)?);
                }
            }
            out
        }
    };
    Ok(Read {
        cursor_exists,
        entries,
    })
}

/// The newest `n` entries, oldest first (`XREVRANGE key + - COUNT n`, reversed).
///
/// # Errors
///
/// The exchange's error.
pub async fn tail(
    conn: &mut Connection,
    key: &str,
    n: usize,
    timeout: Duration,
) -> Result<Vec<Entry>, RedisError> {
    let n = n.max(1).to_string();
    let v = conn
        .call(&["XREVRANGE", key, "+", "-", "COUNT", &n], timeout)
        .await?;
    let mut es = entries(&v)?;
    es.reverse();
    Ok(es)
}

/// Up to `n` entries from `from` on, inclusive (`XRANGE key from + COUNT n`).
///
/// # Errors
///
/// The exchange's error.
pub async fn range_from(
    conn: &mut Connection,
    key: &str,
    from: &str,
    n: usize,
    timeout: Duration,
) -> Result<Vec<Entry>, RedisError> {
    let n = n.max(1).to_string();
    let v = conn
        .call(&["XRANGE", key, from, "+", "COUNT", &n], timeout)
        .await?;
    entries(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::Bulk(Some(s.as_bytes().to_vec()))
    }

    #[test]
    fn entries_parse_and_bad_shapes_are_errors() {
        let v = Value::Array(Some(vec![Value::Array(Some(vec![
            b("1-0"),
            Value::Array(Some(vec![b("topic"), b("t"), b("data"), b("x")])),
        ]))]));
        let es = entries(&v).unwrap();
        assert_eq!(es[0].id, "1-0");
        assert_eq!(es[0].field("data"), Some(&b"x"[..]));
        assert_eq!(es[0].field("nope"), None);
        assert!(entries(&Value::Array(None)).unwrap().is_empty());
        for bad in [
            Value::Int(1),
            Value::Array(Some(vec![Value::Int(1)])),
            Value::Array(Some(vec![Value::Array(Some(vec![b("1-0")]))])),
            Value::Array(Some(vec![Value::Array(Some(vec![
                b("1-0"),
                Value::Array(Some(vec![b("odd")])),
            ]))])),
        ] {
            assert!(entries(&bad).is_err(), "{bad:?}");
        }
    }
}
