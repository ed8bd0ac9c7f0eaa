//! The Redis Stream commands the hub uses, with their replies parsed: `XADD` with an
//! approximate `MAXLEN`, the reader's `XREAD` with the stream's shape taken in the same
//! atomic step and the rule that tells a real gap from a trim of what was read
//! ([`Position`]), the tail at start (`XREVRANGE`), the newest id, and a range for a
//! resume older than the local history (`XRANGE`), and which acknowledged ids a new
//! master lacks ([`missing`]).

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

/// `WAIT replicas timeout`: how many replicas acknowledged every write this connection
/// made so far, waiting at most `timeout` for `replicas` of them (the exchange gets
/// `timeout + slack`).
///
/// # Errors
///
/// The exchange's error.
pub async fn wait_replicas(
    conn: &mut Connection,
    replicas: usize,
    timeout: Duration,
    slack: Duration,
) -> Result<usize, RedisError> {
    let n = replicas.to_string();
    let ms = timeout.as_millis().max(1).to_string();
    match conn.call(&["WAIT", &n, &ms], timeout + slack).await? {
        Value::Int(k) => Ok(usize::try_from(k).unwrap_or(0)),
        _ => Err(protocol("WAIT reply")),
    }
}

/// A Lua function the reader's scripts share: the stream's length, its `entries-added`
/// counter (Redis 7 and later; -1 before) and its first entry's id (`''` when empty),
/// from `XINFO STREAM`, or `false` when the key does not exist.
const SHAPE: &str = "local function shape(key) \
if redis.call('EXISTS', key) == 0 then return false end \
local info = redis.call('XINFO', 'STREAM', key) \
local len, added, first = 0, -1, '' \
for i = 1, #info, 2 do \
local k, v = info[i], info[i + 1] \
if k == 'length' then len = v \
elseif k == 'entries-added' then added = v \
elseif k == 'first-entry' and v then first = v[1] end \
end \
return {len, added, first} \
end ";

/// The script of [`read`]: `XREAD COUNT n STREAMS key cursor` and the stream's shape, in
/// one atomic step.
pub const READ_CHECKED: &str = "return {redis.call('XREAD', 'COUNT', ARGV[1], 'STREAMS', \
KEYS[1], ARGV[2]), shape(KEYS[1])}";

/// The script of [`tail`]: the newest entries and the stream's shape, in one atomic step.
pub const TAIL_CHECKED: &str = "return {redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', \
ARGV[1]), shape(KEYS[1])}";

/// What the stream said about itself in the same instant as a read (`XINFO STREAM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Entries it holds now.
    pub length: u64,
    /// Entries ever added to it (`entries-added`, Redis 7 and later; `None` before).
    pub entries_added: Option<u64>,
    /// Its oldest entry's id (`None`: it is empty).
    pub first: Option<String>,
}

/// What one turn of the reader got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Entries after the cursor, oldest first.
    pub entries: Vec<Entry>,
    /// The stream's shape in the same instant (`None`: the key does not exist).
    pub shape: Option<Shape>,
}

/// Where a reader stands in the stream: its cursor, and how many entries the stream had
/// ever been given up to and including the cursor's (`seen`; `None` when not known: a
/// Redis before 7, which has no `entries-added` counter).
///
/// # The gap rule
///
/// A reader has missed entries exactly when an entry added after its cursor was removed
/// (trimmed or deleted) before the reader read it. The cursor's own entry being gone
/// says nothing: with `MAXLEN ~ 1` it is trimmed as soon as the next entry is added,
/// though the reader reads that one. [`read`] takes the entries after the cursor and the
/// stream's [`Shape`] in one atomic step, so with `added` (entries ever added, Redis's
/// counter) and `present` (entries after the cursor the stream holds now):
///
/// - `added - seen` entries were ever added after the cursor; when `present` is known
///   (the read got fewer than `count`, so it got them all; or the stream's first entry is
///   after the cursor, so it holds only such entries), a difference is exact:
///   `added - seen > present` means that many were removed unread (`lost`), and
///   `added - seen < present` cannot happen in one stream: it was deleted or flushed and
///   made again (`lost`, and read again from `0-0`).
/// - A full read from a cursor the stream still reaches: trims cut the oldest end, so
///   none reached past the cursor; only a counter gone backwards (a new stream) is a
///   loss. A removed entry after the cursor shows in a later read's count.
/// - No stream at all: a loss unless the cursor is `0-0`.
/// - Without the counter (Redis before 7) the rule falls back to "the cursor's entry is
///   gone" (the first entry is after it), which can report a loss that was not one when
///   the stream is trimmed to the entry after the cursor (a very short `MAXLEN`).
///
/// One case passes unseen: a stream deleted and made again whose counter lands exactly
/// where the reader's count expects it (`added - seen == present`); it takes a new
/// stream trimmed by exactly `seen` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The id of the last entry read (`0-0`: before the first).
    pub cursor: String,
    /// Entries ever added up to and including the cursor's.
    pub seen: Option<u64>,
}

impl Position {
    /// The position after the newest entry of `tail` (read with [`tail`], whose shape is
    /// `shape`).
    pub fn after_tail(tail: &[Entry], shape: Option<&Shape>) -> Position {
        Position {
            cursor: tail
                .last()
                .map_or_else(|| "0-0".to_owned(), |e| e.id.clone()),
            seen: match shape {
                None => Some(0),
                Some(s) => s.entries_added,
            },
        }
    }

    /// Applies one [`read`] of up to `count` entries from this position: whether entries
    /// after the cursor were lost (see the gap rule above), and the position after the
    /// entries read (the cursor back to `0-0` when the stream was made again and the read
    /// got nothing, so that it is read from its start).
    pub fn advance(&mut self, read: &Read, count: usize) -> bool {
        self.advance_counted(read, count).is_some()
    }

    /// As [`Position::advance`], with how many entries were lost: `Some(n)` on a loss,
    /// `n` exact when the counter and the entries after the cursor are known (entries
    /// added after the cursor and removed unread, or entries this node read that the
    /// stream no longer counts: a failover to a replica that lacked them), else at least
    /// 1.
    pub fn advance_counted(&mut self, read: &Read, count: usize) -> Option<u64> {
        let before = (self.seen, read.entries.len() as u64);
        let lost = self.advance_inner(read, count);
        if !lost {
            return None;
        }
        let n = match (before.0, read.shape.as_ref().and_then(|s| s.entries_added)) {
            (Some(s), Some(a)) => {
                let since = a.checked_sub(s);
                match since {
                    // Added after the cursor, fewer present than added.
                    Some(n) => n.saturating_sub(before.1),
                    // The counter went back: what this node counted past the stream's
                    // own count, less the entries read now (added after it).
                    None => s.saturating_sub(a.saturating_sub(before.1)),
                }
            }
            _ => 0,
        };
        Some(n.max(1))
    }

    fn advance_inner(&mut self, read: &Read, count: usize) -> bool {
        let at_start = self.cursor == "0-0";
        let Some(shape) = &read.shape else {
            self.cursor = "0-0".to_owned();
            self.seen = Some(0);
            return !at_start;
        };
        let k = read.entries.len() as u64;
        let first_after = shape
            .first
            .as_deref()
            .is_none_or(|f| newer(f, &self.cursor));
        let present = if read.entries.len() < count {
            Some(k)
        } else if first_after {
            Some(shape.length)
        } else {
            None
        };
        let (lost, remade) = match (self.seen, shape.entries_added, present) {
            (Some(s), Some(a), Some(p)) => {
                let since = a.checked_sub(s);
                (since != Some(p), since.is_none_or(|n| n < p))
            }
            (Some(s), Some(a), None) => (a < s, a < s),
            _ => (!at_start && first_after, !at_start && first_after),
        };
        self.seen = match (shape.entries_added, present) {
            (Some(a), Some(p)) => Some(a.saturating_sub(p - k)),
            (Some(_), None) if !lost => self.seen.map(|s| s + k),
            _ => None,
        };
        match read.entries.last() {
            Some(e) => self.cursor.clone_from(&e.id),
            None if lost && remade => {
                self.cursor = "0-0".to_owned();
                self.seen = shape.entries_added.map(|a| a.saturating_sub(shape.length));
            }
            None => {}
        }
        lost
    }
}

/// Whether stream id `a` is after `b` (`<ms>-<seq>`; text that is not an id is after).
fn newer(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Option<(u64, u64)> {
        let (ms, seq) = s.split_once('-')?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    };
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a > b,
        _ => true,
    }
}

fn shape(v: &Value) -> Result<Option<Shape>, RedisError> {
    if v.is_nil() {
        return Ok(None);
    }
    let int = |v: Option<&Value>| match v {
        Some(Value::Int(n)) => Ok(*n),
        _ => Err(protocol("stream shape")),
    };
    let parts = v.as_array().ok_or_else(|| protocol("stream shape"))?;
    let length = u64::try_from(int(parts.first())?).map_err(|_| protocol("length"))?;
    let entries_added = u64::try_from(int(parts.get(1))?).ok();
    let first = parts
        .get(2)
        .and_then(Value::as_bytes)
        .filter(|b| !b.is_empty())
        .map(|b| String::from_utf8_lossy(b).into_owned());
    Ok(Some(Shape {
        length,
        entries_added,
        first,
    }))
}

/// One turn of the reader, pipelined: `XREAD COUNT 1 BLOCK block_ms STREAMS key cursor`
/// (it waits for an entry; its reply is not used), then [`READ_CHECKED`], which reads up
/// to `count` entries after the cursor and takes the stream's [`Shape`] in the same
/// atomic step, all within `block + slack`. [`Position::advance`] then tells whether
/// entries were lost.
///
/// The shape is taken with the read, not before or after it: between two commands
/// another client's `XADD` can trim entries, and a check made then cannot tell entries
/// removed before the read (lost) from entries removed after it (read). (`XINFO` was
/// chosen over checking that the cursor's entry still exists, as first done: that entry
/// is trimmed as soon as the next one is added on a short stream, which said "lost" for
/// every entry with `MAXLEN ~ 1`.)
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
    let script = format!("{SHAPE}{READ_CHECKED}");
    let cmds: Vec<Vec<&[u8]>> = vec![
        vec![
            b"XREAD",
            b"COUNT",
            b"1",
            b"BLOCK",
            block_ms.as_bytes(),
            b"STREAMS",
            key.as_bytes(),
            cursor.as_bytes(),
        ],
        vec![
            b"EVAL",
            script.as_bytes(),
            b"1",
            key.as_bytes(),
            count.as_bytes(),
            cursor.as_bytes(),
        ],
    ];
    let mut replies = conn.pipeline(&cmds, block + slack).await?.into_iter();
    check(replies.next().ok_or(RedisError::Closed)?)?;
    let got = check(replies.next().ok_or(RedisError::Closed)?)?;
    let parts = got.as_array().ok_or_else(|| protocol("read reply"))?;
    // XREAD: nil when there is nothing, else [[key, entries]].
    let mut out = Vec::new();
    if let Some(streams) = parts.first().and_then(Value::as_array) {
        for s in streams {
            let pair = s.as_array().ok_or_else(|| protocol("XREAD stream"))?;
            if let [_, es] = pair {
                out.extend(entries(es)?);
            }
        }
    }
    let shape = match parts.get(1) {
        Some(v) => shape(v)?,
        None => None,
    };
    Ok(Read {
        entries: out,
        shape,
    })
}

/// The newest `n` entries, oldest first, and the stream's [`Shape`] in the same atomic
/// step ([`TAIL_CHECKED`]; `None`: no stream).
///
/// # Errors
///
/// The exchange's error.
pub async fn tail(
    conn: &mut Connection,
    key: &str,
    n: usize,
    timeout: Duration,
) -> Result<(Vec<Entry>, Option<Shape>), RedisError> {
    let n = n.max(1).to_string();
    let script = format!("{SHAPE}{TAIL_CHECKED}");
    let v = conn.call(&["EVAL", &script, "1", key, &n], timeout).await?;
    let parts = v.as_array().ok_or_else(|| protocol("tail reply"))?;
    let mut es = match parts.first() {
        Some(v) => entries(v)?,
        None => Vec::new(),
    };
    es.reverse();
    let shape = match parts.get(1) {
        Some(v) => shape(v)?,
        None => None,
    };
    Ok((es, shape))
}

/// The id of the newest entry (`XREVRANGE key + - COUNT 1`; `None`: the stream is empty
/// or absent).
///
/// # Errors
///
/// The exchange's error.
pub async fn newest(
    conn: &mut Connection,
    key: &str,
    timeout: Duration,
) -> Result<Option<String>, RedisError> {
    let v = conn
        .call(&["XREVRANGE", key, "+", "-", "COUNT", "1"], timeout)
        .await?;
    Ok(entries(&v)?.pop().map(|e| e.id))
}

/// The script of [`missing`]: the stream's first id (`''` when empty or absent), then
/// each id of `ARGV` the stream does not hold.
pub const MISSING: &str = "local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1) \
local out = {first[1] and first[1][1] or ''} \
for i = 1, #ARGV do \
if #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then out[#out + 1] = ARGV[i] end \
end \
return out";

/// Which of `ids` the stream lacks, leaving out those older than its first entry (a trim,
/// not a loss), in one atomic step ([`MISSING`]).
///
/// # Errors
///
/// The exchange's error.
pub async fn missing(
    conn: &mut Connection,
    key: &str,
    ids: &[String],
    timeout: Duration,
) -> Result<Vec<String>, RedisError> {
    let mut args: Vec<&str> = vec!["EVAL", MISSING, "1", key];
    args.extend(ids.iter().map(String::as_str));
    let v = conn.call(&args, timeout).await?;
    let parts = v.as_array().ok_or_else(|| protocol("missing reply"))?;
    let text = |v: &Value| {
        v.as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let first = parts.first().and_then(text).filter(|f| !f.is_empty());
    Ok(parts
        .iter()
        .skip(1)
        .filter_map(text)
        .filter(|id| first.as_deref().is_none_or(|f| !newer(f, id)))
        .collect())
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

    fn read_of(ids: &[&str], shape_of: Option<(u64, Option<u64>, &str)>) -> Read {
        Read {
            entries: ids
                .iter()
                .map(|id| Entry {
                    id: (*id).to_owned(),
                    fields: Vec::new(),
                })
                .collect(),
            shape: shape_of.map(|(length, entries_added, first)| Shape {
                length,
                entries_added,
                first: (!first.is_empty()).then(|| first.to_owned()),
            }),
        }
    }

    fn at(cursor: &str, seen: Option<u64>) -> Position {
        Position {
            cursor: cursor.to_owned(),
            seen,
        }
    }

    #[test]
    fn a_gap_is_an_entry_removed_before_it_was_read_not_a_trimmed_cursor() {
        // MAXLEN ~ 1: the cursor's entry was trimmed when the next was added; read: no gap.
        let mut p = at("1-0", Some(1));
        assert!(!p.advance(&read_of(&["2-0"], Some((1, Some(2), "2-0"))), 10));
        assert_eq!(p, at("2-0", Some(2)));
        // 2-0 was trimmed before it was read: a gap, then in step again.
        let mut p = at("1-0", Some(1));
        assert!(p.advance(&read_of(&["3-0"], Some((1, Some(3), "3-0"))), 10));
        assert_eq!(p, at("3-0", Some(3)));
        assert!(!p.advance(&read_of(&["4-0"], Some((1, Some(4), "4-0"))), 10));
        // Everything cut, nothing read: a gap, the cursor stays.
        let mut p = at("1-0", Some(1));
        assert!(p.advance(&read_of(&[], Some((0, Some(3), ""))), 10));
        assert_eq!(p, at("1-0", Some(3)));
        assert!(!p.advance(&read_of(&[], Some((0, Some(3), ""))), 10));
        // A full read from a cursor the stream still holds: trims cannot reach past it.
        let mut p = at("1-0", Some(1));
        assert!(!p.advance(&read_of(&["2-0", "3-0"], Some((4, Some(4), "1-0"))), 2));
        assert_eq!(p, at("3-0", Some(3)));
        // A full read past a cut: the stream's length tells.
        let mut p = at("1-0", Some(1));
        assert!(!p.advance(&read_of(&["2-0", "3-0"], Some((3, Some(4), "2-0"))), 2));
        assert_eq!(p, at("3-0", Some(3)));
        let mut p = at("1-0", Some(1));
        assert!(p.advance(&read_of(&["3-0", "4-0"], Some((3, Some(5), "3-0"))), 2));
        assert_eq!(p, at("4-0", Some(4)));
    }

    #[test]
    fn losses_are_counted_in_entries() {
        // Two of three added after the cursor were trimmed unread.
        let mut p = at("1-0", Some(1));
        let r = read_of(&["4-0"], Some((1, Some(4), "4-0")));
        assert_eq!(p.advance_counted(&r, 10), Some(2));
        // A failover to a replica that lacked the last 3 entries this node read (seen
        // 10, the new master counts 7), then one new entry there.
        let mut p = at("10-0", Some(10));
        let r = read_of(&["11-0"], Some((8, Some(8), "1-0")));
        assert_eq!(p.advance_counted(&r, 10), Some(3));
        assert_eq!(
            p.advance_counted(&read_of(&[], Some((8, Some(8), "1-0"))), 10),
            None
        );
        // Nothing known but the loss: at least one.
        let mut p = at("1-0", None);
        assert_eq!(
            p.advance_counted(&read_of(&["2-0"], Some((1, None, "2-0"))), 10),
            Some(1)
        );
    }

    #[test]
    fn a_stream_gone_or_made_again_is_a_gap_and_is_read_from_its_start() {
        let mut p = at("5-0", Some(5));
        assert!(p.advance(&read_of(&[], None), 10));
        assert_eq!(p, at("0-0", Some(0)));
        assert!(!p.advance(&read_of(&[], None), 10));
        // Made again with ids before the cursor: the counter went back.
        let mut p = at("5-0", Some(5));
        assert!(p.advance(&read_of(&[], Some((1, Some(1), "2-0"))), 10));
        assert_eq!(p, at("0-0", Some(0)));
        assert!(!p.advance(&read_of(&["2-0"], Some((1, Some(1), "2-0"))), 10));
        // Made again with later ids: more after the cursor than the counter allows.
        let mut p = at("5-0", Some(5));
        assert!(p.advance(&read_of(&["6-0", "7-0"], Some((2, Some(2), "6-0"))), 10));
        assert_eq!(p, at("7-0", Some(2)));
    }

    #[test]
    fn without_the_counter_a_gone_cursor_is_taken_as_a_gap() {
        // Redis before 7: no entries-added; the cursor's entry gone is all there is.
        let mut p = at("1-0", None);
        assert!(p.advance(&read_of(&["2-0"], Some((1, None, "2-0"))), 10));
        assert!(!p.advance(&read_of(&["3-0"], Some((2, None, "2-0"))), 10));
        assert_eq!(p, at("3-0", None));
        // At the start nothing was read, so nothing was missed.
        let mut p = at("0-0", None);
        assert!(!p.advance(&read_of(&["2-0"], Some((1, None, "2-0"))), 10));
        assert!(!newer("1-9", "2-0") && newer("2-0", "1-9") && newer("10-0", "9-0"));
    }
}
