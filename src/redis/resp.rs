//! RESP2, the Redis serialization protocol: commands out, replies in.
//!
//! A command is always an array of bulk strings (`*N\r\n$len\r\nbytes\r\n...`). A reply
//! is parsed from whatever bytes have arrived: [`parse`] reports `Ok(None)` for a valid
//! prefix, and the caller parses again from the start when more bytes arrive (replies
//! here are small: a reply of `n` bytes read in `k` pieces costs `O(n·k)`). Every reply
//! is bounded ([`ReplyLimits`]): a server (or anything pretending to be one) cannot make
//! the client buffer or allocate without bound.
//!
//! Only RESP2 is spoken: no `HELLO 3`, so no maps, sets, doubles or pushes.

use std::fmt;

/// One reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...`: the whole line after the `-`.
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$3\r\nfoo` (`None`: the null bulk string `$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*2 ...` (`None`: the null array `*-1`).
    Array(Option<Vec<Value>>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Simple(s) => write!(f, "+{s}"),
            Value::Error(e) => write!(f, "-{e}"),
            Value::Int(n) => write!(f, ":{n}"),
            Value::Bulk(None) => f.write_str("$nil"),
            Value::Bulk(Some(b)) => write!(f, "${:?}", String::from_utf8_lossy(b)),
            Value::Array(None) => f.write_str("*nil"),
            Value::Array(Some(items)) => f.debug_list().entries(items).finish(),
        }
    }
}

impl Value {
    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(b)) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The items of a non-null array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(Some(items)) => Some(items),
            _ => None,
        }
    }

    /// Whether this is a null bulk string or a null array.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Bulk(None) | Value::Array(None))
    }
}

/// Bounds on one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Most bytes of one reply, all nested items together. **Default:** 64 MiB.
    pub max_bytes: usize,
    /// Deepest nesting of arrays. **Default:** 8 (stream replies nest 4 deep).
    pub max_depth: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_bytes: 64 << 20,
            max_depth: 8,
        }
    }
}

/// Why bytes are not a RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespError {
    /// A type byte other than `+ - : $ *`.
    BadType(u8),
    /// A length or integer that is not a number, or out of range.
    BadNumber,
    /// A line that does not end in CRLF, or a bulk string not followed by CRLF.
    BadLineEnd,
    /// Over [`ReplyLimits::max_bytes`].
    TooLarge,
    /// Over [`ReplyLimits::max_depth`].
    TooDeep,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::BadType(b) => write!(f, "unexpected reply type byte 0x{b:02x}"),
            RespError::BadNumber => f.write_str("malformed length or integer in reply"),
            RespError::BadLineEnd => f.write_str("reply line does not end in CRLF"),
            RespError::TooLarge => f.write_str("reply over the size cap"),
            RespError::TooDeep => f.write_str("reply nested too deep"),
        }
    }
}

impl std::error::Error for RespError {}

/// Appends one command (an array of bulk strings) to `out`.
pub fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends the RESP2 encoding of a reply (for tests and fakes).
pub fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Simple(s) => {
            out.push(b'+');
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Error(e) => {
            out.push(b'-');
            out.extend_from_slice(e.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Int(n) => {
            out.push(b':');
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
        Value::Bulk(Some(b)) => {
            out.push(b'$');
            out.extend_from_slice(b.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Value::Array(None) => out.extend_from_slice(b"*-1\r\n"),
        Value::Array(Some(items)) => {
            out.push(b'*');
            out.extend_from_slice(items.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
            for i in items {
                encode_value(out, i);
            }
        }
    }
}

/// Parses one reply from the start of `buf`: `Ok(Some((value, consumed)))`, `Ok(None)`
/// when `buf` is a valid prefix (read more and call again with all of it).
///
/// # Errors
///
/// [`RespError`] as soon as the bytes present cannot start a valid reply, or a limit is
/// passed (even while the reply is incomplete).
pub fn parse(buf: &[u8], limits: ReplyLimits) -> Result<Option<(Value, usize)>, RespError> {
    let mut p = Parser {
        buf,
        pos: 0,
        limits,
    };
    match p.value(0)? {
        Some(v) => Ok(Some((v, p.pos))),
        // Still incomplete with more than a whole reply may hold buffered: refuse.
        None if buf.len() > limits.max_bytes => Err(RespError::TooLarge),
        None => Ok(None),
    }
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: ReplyLimits,
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

/// Longest header line (`$123456789`, `:-9223372036854775808`, an error message).
const MAX_LINE: usize = 64 * 1024;

impl Parser<'_> {
    /// The line after the type byte at `self.pos`, without CRLF; `None` if incomplete.
    fn line(&mut self) -> Result<Option<&[u8]>, RespError> {
        let start = self.pos + 1;
        match find_crlf(self.buf, start) {
            Some(end) => {
                let line = &self.buf[start..end];
                if line.contains(&b'\r') || line.contains(&b'\n') {
                    return Err(RespError::BadLineEnd);
                }
                self.pos = end + 2;
                Ok(Some(line))
            }
            None => {
                let partial = &self.buf[start.min(self.buf.len())..];
                if partial.len() > MAX_LINE {
                    return Err(RespError::TooLarge);
                }
                // A bare LF, or CR followed by something else, can never become CRLF.
                let bad = partial
                    .iter()
                    .enumerate()
                    .any(|(i, &b)| b == b'\n' || (b == b'\r' && i + 1 < partial.len()));
                if bad {
                    return Err(RespError::BadLineEnd);
                }
                Ok(None)
            }
        }
    }

    fn number(line: &[u8]) -> Result<i64, RespError> {
        let s = std::str::from_utf8(line).map_err(|_| RespError::BadNumber)?;
        let digits = s.strip_prefix('-').unwrap_or(s);
        // Strict: what Redis writes, no leading zeros and no `-0`, so that a parsed
        // reply encodes back to the same bytes.
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
            || s == "-0"
        {
            return Err(RespError::BadNumber);
        }
        s.parse().map_err(|_| RespError::BadNumber)
    }

    fn value(&mut self, depth: usize) -> Result<Option<Value>, RespError> {
        let Some(&kind) = self.buf.get(self.pos) else {
            return Ok(None);
        };
        let at = self.pos;
        let Some(line) = self.line()? else {
            return Ok(None);
        };
        let v = match kind {
            b'+' | b'-' => {
                let text = String::from_utf8_lossy(line).into_owned();
                if kind == b'+' {
                    Value::Simple(text)
                } else {
                    Value::Error(text)
                }
            }
            b':' => Value::Int(Self::number(line)?),
            b'$' => {
                let n = Self::number(line)?;
                if n == -1 {
                    Value::Bulk(None)
                } else {
                    let n = usize::try_from(n).map_err(|_| RespError::BadNumber)?;
                    if n > self.limits.max_bytes {
                        return Err(RespError::TooLarge);
                    }
                    let end = self.pos + n;
                    if self.buf.len() < end + 2 {
                        // Incomplete; a wrong terminator already present is an error.
                        if self.buf.len() > end && self.buf[end] != b'\r' {
                            return Err(RespError::BadLineEnd);
                        }
                        self.pos = at;
                        return Ok(None);
                    }
                    if &self.buf[end..end + 2] != b"\r\n" {
                        return Err(RespError::BadLineEnd);
                    }
                    let bytes = self.buf[self.pos..end].to_vec();
                    self.pos = end + 2;
                    Value::Bulk(Some(bytes))
                }
            }
            b'*' => {
                let n = Self::number(line)?;
                if n == -1 {
                    Value::Array(None)
                } else {
                    let n = usize::try_from(n).map_err(|_| RespError::BadNumber)?;
                    if depth + 1 > self.limits.max_depth {
                        return Err(RespError::TooDeep);
                    }
                    // Each item takes at least 3 bytes (`:0\r\n` is 4): a count that
                    // cannot fit under the cap is refused before anything is allocated.
                    if n > self.limits.max_bytes / 3 {
                        return Err(RespError::TooLarge);
                    }
                    let mut items = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        match self.value(depth + 1)? {
                            Some(v) => items.push(v),
                            None => {
                                self.pos = at;
                                return Ok(None);
                            }
                        }
                    }
                    Value::Array(Some(items))
                }
            }
            other => return Err(RespError::BadType(other)),
        };
        if self.pos > self.limits.max_bytes {
            return Err(RespError::TooLarge);
        }
        Ok(Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lim() -> ReplyLimits {
        ReplyLimits::default()
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&mut out, &["XADD", "k", "*", "data", ""]);
        assert_eq!(
            out,
            b"*5\r\n$4\r\nXADD\r\n$1\r\nk\r\n$1\r\n*\r\n$4\r\ndata\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn replies_of_every_type() {
        let cases: &[(&[u8], Value)] = &[
            (b"+OK\r\n", Value::Simple("OK".into())),
            (b"-ERR bad\r\n", Value::Error("ERR bad".into())),
            (b":-12\r\n", Value::Int(-12)),
            (b"$3\r\nfoo\r\n", Value::Bulk(Some(b"foo".to_vec()))),
            (b"$0\r\n\r\n", Value::Bulk(Some(Vec::new()))),
            (b"$-1\r\n", Value::Bulk(None)),
            (b"*-1\r\n", Value::Array(None)),
            (b"*0\r\n", Value::Array(Some(vec![]))),
            (
                b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
                Value::Array(Some(vec![
                    Value::Bulk(Some(b"a".to_vec())),
                    Value::Array(Some(vec![Value::Int(1)])),
                ])),
            ),
        ];
        for (bytes, want) in cases {
            let (got, used) = parse(bytes, lim()).unwrap().unwrap();
            assert_eq!(&got, want);
            assert_eq!(used, bytes.len());
            // Every proper prefix is incomplete, never an error.
            for cut in 0..bytes.len() {
                assert_eq!(parse(&bytes[..cut], lim()), Ok(None), "{bytes:?} cut {cut}");
            }
        }
    }

    #[test]
    fn malformed_replies_are_errors() {
        let cases: &[(&[u8], RespError)] = &[
            (b"?x\r\n", RespError::BadType(b'?')),
            (b":12a\r\n", RespError::BadNumber),
            (b":\r\n", RespError::BadNumber),
            (b":007\r\n", RespError::BadNumber),
            (b":-0\r\n", RespError::BadNumber),
            (b"$-2\r\n", RespError::BadNumber),
            (b"$3\r\nfooXY", RespError::BadLineEnd),
            (b"+OK\n", RespError::BadLineEnd),
            (b"+O\rK\r\n", RespError::BadLineEnd),
            (b"$99999999999\r\n", RespError::TooLarge),
            (b"*99999999999\r\n", RespError::TooLarge),
        ];
        for (bytes, want) in cases {
            assert_eq!(parse(bytes, lim()).as_ref().err(), Some(want), "{bytes:?}");
        }
        let deep = b"*1\r\n".repeat(9);
        assert_eq!(parse(&deep, lim()), Err(RespError::TooDeep));
        let small = ReplyLimits {
            max_bytes: 10,
            max_depth: 8,
        };
        assert_eq!(
            parse(b"$20\r\n", small),
            Err(RespError::TooLarge),
            "refused before the bytes arrive"
        );
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            "[ -~]{0,12}".prop_map(|s| Value::Simple(s.replace(['\r', '\n'], ""))),
            "[ -~]{0,12}".prop_map(|s| Value::Error(s.replace(['\r', '\n'], ""))),
            any::<i64>().prop_map(Value::Int),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..20)).prop_map(Value::Bulk),
            Just(Value::Array(None)),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop::collection::vec(inner, 0..6).prop_map(|v| Value::Array(Some(v)))
        })
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips_at_every_split(v in value(), extra in prop::collection::vec(any::<u8>(), 0..8)) {
            let mut bytes = Vec::new();
            encode_value(&mut bytes, &v);
            let whole = bytes.len();
            bytes.extend_from_slice(&extra);
            let (got, used) = parse(&bytes, lim()).unwrap().unwrap();
            prop_assert_eq!(&got, &v);
            prop_assert_eq!(used, whole);
            for cut in 0..whole {
                prop_assert_eq!(parse(&bytes[..cut], lim()), Ok(None));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes, lim());
        }
    }
}
