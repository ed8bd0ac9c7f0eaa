//! Per-stream ordering checks (gaps, duplicates, out-of-order) in constant memory, and
//! the extraction of the soak payload's `seq` and `sent_us` from an event's data.

/// How many of the most recent sequence numbers a [`SeqChecker`] remembers exactly.
const WINDOW: u64 = 128;

/// What one observed sequence number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next expected number (or an acceptable first one).
    InOrder,
    /// `n` numbers were skipped before this one.
    Gap(u64),
    /// Seen before.
    Duplicate,
    /// Older than the newest seen, not seen before. If it was counted in a gap, the gap
    /// shrinks by one (`filled` is true then).
    OutOfOrder {
        /// Whether this number had been counted as missing.
        filled: bool,
    },
}

/// Checks that a stream of sequence numbers is contiguous and increasing.
///
/// Memory: a `u128` bitmap of the last [`WINDOW`] numbers, so a duplicate can be told
/// from a late arrival within that window; anything older is reported as out of order.
#[derive(Debug, Clone, Default)]
pub struct SeqChecker {
    /// Whether gaps are meaningful (false: only order and duplicates are checked).
    count_gaps: bool,
    /// The first number that must be seen (earlier ones are optional), if known.
    must_from: Option<u64>,
    /// One past the newest number seen; 0 before the first.
    next: u64,
    /// The lowest number counted in gaps: below it, numbers are optional.
    floor: u64,
    /// Bit `i` set: number `next - 1 - i` was seen.
    seen: u128,
    started: bool,
}

impl SeqChecker {
    /// A checker; `count_gaps` false only checks order and duplicates.
    pub fn new(count_gaps: bool) -> SeqChecker {
        SeqChecker {
            count_gaps,
            ..SeqChecker::default()
        }
    }

    /// Declares that every number from `n` on must be seen (e.g. everything published
    /// after the subscription started). Only effective before the first observation.
    pub fn must_see_from(&mut self, n: u64) {
        if !self.started {
            self.must_from = Some(n);
        }
    }

    /// The newest number seen.
    pub fn last(&self) -> Option<u64> {
        self.started.then(|| self.next - 1)
    }

    /// Records `n` and says what it means.
    pub fn observe(&mut self, n: u64) -> Verdict {
        if !self.started {
            self.started = true;
            self.next = n + 1;
            self.seen = 1;
            return match self.must_from {
                Some(m) if n > m && self.count_gaps => {
                    self.floor = m;
                    Verdict::Gap(n - m)
                }
                _ => {
                    self.floor = n;
                    Verdict::InOrder
                }
            };
        }
        if n == self.next {
            self.seen = (self.seen << 1) | 1;
            self.next += 1;
            return Verdict::InOrder;
        }
        if n > self.next {
            let skipped = n - self.next;
            let shift = n + 1 - self.next;
            self.seen = if shift >= 128 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.next = n + 1;
            return if self.count_gaps {
                Verdict::Gap(skipped)
            } else {
                Verdict::InOrder
            };
        }
        let age = self.next - 1 - n;
        if age < WINDOW {
            let bit = 1u128 << age;
            if self.seen & bit != 0 {
                return Verdict::Duplicate;
            }
            self.seen |= bit;
            return Verdict::OutOfOrder {
                filled: self.count_gaps && n >= self.floor,
            };
        }
        Verdict::OutOfOrder { filled: false }
    }
}

/// The soak payload fields of an event's data: `{"seq":N,"sent_us":M,...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    /// The publisher's sequence number (from 1).
    pub seq: u64,
    /// When the publisher sent it. **Unit:** microseconds since the Unix epoch.
    pub sent_us: u64,
}

/// Reads the unsigned integer after `key` in `data` (no allocation; `data` may be a
/// prefix of the whole JSON text).
fn number_after(data: &[u8], key: &[u8]) -> Option<u64> {
    let at = data.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = &data[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 || end > 19 || end == digits.len() {
        // Empty, too long, or possibly cut off by the data cap.
        return None;
    }
    digits[..end].iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Extracts `seq` and `sent_us` from the start of a soak event's data.
pub fn payload(data: &[u8]) -> Option<Payload> {
    Some(Payload {
        seq: number_after(data, b"\"seq\":")?,
        sent_us: number_after(data, b"\"sent_us\":")?,
    })
}

/// Parses an SSE id as a decimal integer.
pub fn numeric_id(id: &[u8]) -> Option<u64> {
    if id.is_empty() || id.len() > 19 || !id.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(id).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: &mut SeqChecker, seqs: &[u64]) -> Vec<Verdict> {
        seqs.iter().map(|&s| c.observe(s)).collect()
    }

    #[test]
    fn contiguous_stream_is_clean() {
        let mut c = SeqChecker::new(true);
        c.must_see_from(5);
        assert!(
            run(&mut c, &[4, 5, 6, 7])
                .iter()
                .all(|v| *v == Verdict::InOrder)
        );
        assert_eq!(c.last(), Some(7));
    }

    #[test]
    fn gaps_duplicates_out_of_order() {
        let mut c = SeqChecker::new(true);
        use Verdict::*;
        assert_eq!(
            run(&mut c, &[1, 2, 5, 5, 3, 3, 6, 4, 9]),
            vec![
                InOrder,
                InOrder,
                Gap(2),
                Duplicate,
                OutOfOrder { filled: true },
                Duplicate,
                InOrder,
                OutOfOrder { filled: true },
                Gap(2),
            ]
        );
    }

    #[test]
    fn head_gap_against_must_from() {
        let mut c = SeqChecker::new(true);
        c.must_see_from(10);
        assert_eq!(c.observe(13), Verdict::Gap(3));
        assert_eq!(c.observe(11), Verdict::OutOfOrder { filled: true });
        // Below must_from: optional, so it does not fill a gap.
        assert_eq!(c.observe(9), Verdict::OutOfOrder { filled: false });
    }

    #[test]
    fn no_gap_mode_and_old_numbers() {
        let mut c = SeqChecker::new(false);
        c.must_see_from(1);
        assert_eq!(c.observe(10), Verdict::InOrder);
        assert_eq!(c.observe(20), Verdict::InOrder);
        assert_eq!(c.observe(20), Verdict::Duplicate);
        let mut c = SeqChecker::new(true);
        c.observe(1);
        c.observe(1000);
        assert_eq!(c.observe(2), Verdict::OutOfOrder { filled: false });
    }

    #[test]
    fn payload_extraction() {
        let p = payload(br#"{"seq":42,"sent_us":1732650000123456,"pad":"xxxx"#).unwrap();
        assert_eq!(
            p,
            Payload {
                seq: 42,
                sent_us: 1_732_650_000_123_456
            }
        );
        assert_eq!(payload(br#"{"seq":42,"sent_us":17"#), None);
        assert_eq!(payload(br#"{"value":1}"#), None);
        assert_eq!(numeric_id(b"123"), Some(123));
        assert_eq!(numeric_id(b"a1"), None);
        assert_eq!(numeric_id(b""), None);
    }
}
