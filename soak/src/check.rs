//! Per-stream ordering checks (gaps, duplicates, out-of-order) in constant memory, the
//! extraction of the soak payload's `seq` and `sent_us` from an event's data, and the
//! reason of a server's `reset` event.
//!
//! Event ids are opaque text (ssehub writes `<epoch>-<offset>`): nothing here parses
//! them. Order is checked on the `seq` inside the data.

/// How many of the most recent sequence numbers a [`SeqChecker`] remembers exactly.
const WINDOW: u64 = 128;

/// What one observed sequence number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next expected number (or an acceptable first one).
    InOrder,
    /// `n` numbers were skipped before this one, silently.
    Gap(u64),
    /// `n` numbers were skipped before this one, and a reset event announced it.
    AnnouncedGap(u64),
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
    /// A reset event came since the last observation: the next gap is announced.
    announced: bool,
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

    /// A reset event arrived: a gap before the next number is announced, not silent.
    pub fn announce(&mut self) {
        self.announced = true;
    }

    /// The number expected next: one past the newest seen, or before the first, the one
    /// from which every number must be seen (if known).
    pub fn expected(&self) -> Option<u64> {
        if self.started {
            Some(self.next)
        } else {
            self.must_from
        }
    }

    /// Whether a number was seen.
    pub fn started(&self) -> bool {
        self.started
    }

    /// The newest number seen.
    pub fn last(&self) -> Option<u64> {
        self.started.then(|| self.next - 1)
    }

    /// Records `n` and says what it means.
    pub fn observe(&mut self, n: u64) -> Verdict {
        let announced = std::mem::take(&mut self.announced);
        match self.observe_silent(n) {
            Verdict::Gap(k) if announced => Verdict::AnnouncedGap(k),
            v => v,
        }
    }

    fn observe_silent(&mut self, n: u64) -> Verdict {
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

/// The `seq` of an event's data, when it has one (the server's demo `tick` events do;
/// used with `--no-publish`).
pub fn seq_of(data: &[u8]) -> Option<u64> {
    number_after(data, b"\"seq\":")
}

/// The event type of ssehub's reset event.
pub const RESET_EVENT: &[u8] = b"reset";

/// Why the server reset a resumed stream (the `reason` of its reset event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// The id was older than the server's history.
    Evicted,
    /// The id was of another history (before a restart).
    OtherEpoch,
    /// The server could not read the id.
    Unknown,
    /// The id was ahead of the server's history.
    Future,
    /// The server's broker lost entries before the server read them (e.g. Redis
    /// restarted without persistence); may come on any stream, resumed or not.
    Lost,
    /// No reason the tool knows (or none could be read).
    Other,
}

impl ResetReason {
    /// Every reason, in counter order.
    pub const ALL: [ResetReason; 6] = [
        ResetReason::Evicted,
        ResetReason::OtherEpoch,
        ResetReason::Unknown,
        ResetReason::Future,
        ResetReason::Lost,
        ResetReason::Other,
    ];

    /// The position of this reason's counter.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The reason of a reset event from its data, `{"reason":"…",…}` (possibly only a
/// prefix of it: the server writes `reason` first).
pub fn reset_reason(data: &[u8]) -> ResetReason {
    const KEY: &[u8] = b"\"reason\":\"";
    let Some(at) = data.windows(KEY.len()).position(|w| w == KEY) else {
        return ResetReason::Other;
    };
    let rest = &data[at + KEY.len()..];
    let value = rest.split(|&b| b == b'"').next().unwrap_or_default();
    match value {
        b"evicted" => ResetReason::Evicted,
        b"other-epoch" => ResetReason::OtherEpoch,
        b"unknown" => ResetReason::Unknown,
        b"future" => ResetReason::Future,
        b"lost" => ResetReason::Lost,
        _ => ResetReason::Other,
    }
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
        assert_eq!(seq_of(br#"{"seq":7,"ts":1,"value":0.5}"#), Some(7));
        assert_eq!(seq_of(br#"{"value":1}"#), None);
    }

    #[test]
    fn reset_reasons() {
        let data = br#"{"reason":"other-epoch","last_event_id":"1-3","replay_from":null"#;
        assert_eq!(reset_reason(data), ResetReason::OtherEpoch);
        assert_eq!(
            reset_reason(br#"{"reason":"evicted"}"#),
            ResetReason::Evicted
        );
        assert_eq!(
            reset_reason(br#"{"reason":"unknown"}"#),
            ResetReason::Unknown
        );
        assert_eq!(reset_reason(br#"{"reason":"future"}"#), ResetReason::Future);
        assert_eq!(reset_reason(br#"{"reason":"lost"}"#), ResetReason::Lost);
        assert_eq!(reset_reason(br#"{"reason":"later"}"#), ResetReason::Other);
        assert_eq!(reset_reason(b"not json"), ResetReason::Other);
        for (i, r) in ResetReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn a_reset_announces_the_next_gap_only() {
        let mut c = SeqChecker::new(true);
        use Verdict::*;
        assert_eq!(run(&mut c, &[1, 2]), vec![InOrder, InOrder]);
        c.announce();
        // Announced: the gap before the first number after the reset.
        assert_eq!(c.observe(6), AnnouncedGap(3));
        // Not announced: a later gap is silent.
        assert_eq!(c.observe(9), Gap(2));
        // An announcement with nothing missing changes nothing.
        c.announce();
        assert_eq!(c.observe(10), InOrder);
        assert_eq!(c.observe(12), Gap(1));
    }
}
