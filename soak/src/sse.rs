//! A streaming `text/event-stream` parser following the WHATWG HTML "event stream
//! interpretation" rules.
//!
//! - A leading UTF-8 byte order mark is skipped.
//! - Lines end at CRLF, LF or CR (a CRLF split across two chunks is one line end).
//! - A line starting with `:` is a comment; `name: value` sets a field (one leading space
//!   of the value is stripped); a line without a colon is a field with an empty value.
//! - `data` lines are joined with LF; `event` sets the type; `id` sets the last event id
//!   buffer (ignored when it contains NUL), which becomes the stream's last event id at
//!   the next blank line, with or without an event; `retry` sets the reconnection time when it is all
//!   ASCII digits; unknown fields are ignored.
//! - A blank line dispatches the event when any `data` line was seen, and resets the data
//!   and type buffers either way. An unterminated event at end of stream is discarded.
//!
//! The parser works on bytes and never needs a whole line in memory: field values are
//! streamed in pieces into buffers capped by [`Caps`], so a soak client with 10,000
//! connections keeps only a few hundred bytes of parser state each. Beyond the caps the
//! buffers keep a prefix and the full length is still counted. Input is not decoded as
//! UTF-8 (the spec decodes with replacement; bytes are passed through unchanged).

/// The UTF-8 byte order mark.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Upper bounds on what the parser keeps of each buffer. **Unit:** bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Kept prefix of the data buffer (the full length is counted anyway).
    pub data: usize,
    /// Kept prefix of the event type.
    pub event: usize,
    /// Kept prefix of an id value.
    pub id: usize,
    /// Kept prefix of a comment line.
    pub comment: usize,
}

impl Caps {
    /// No caps: keep everything (tests, small streams).
    pub const UNLIMITED: Caps = Caps {
        data: usize::MAX,
        event: usize::MAX,
        id: usize::MAX,
        comment: usize::MAX,
    };

    /// Small caps for a soak subscriber: enough for the soak tool's `{"seq":…,"sent_us":…`
    /// prefix, ssehub's ids and the comments it recognises.
    pub const SMALL: Caps = Caps {
        data: 96,
        event: 32,
        id: 64,
        comment: 64,
    };
}

/// One dispatched event, borrowed from the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The event type; empty means the default `message`.
    pub event: &'a [u8],
    /// The data (lines joined with LF, final LF removed), possibly only a prefix.
    pub data: &'a [u8],
    /// The full length of the data, even when `data` is only a prefix.
    pub data_len: usize,
    /// The last event id at dispatch time (it persists across events).
    pub id: &'a [u8],
}

/// What the parser reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A dispatched event.
    Event(EventRef<'a>),
    /// A comment line: the bytes after the `:` (possibly only a prefix).
    Comment(&'a [u8]),
}

/// Which field the current line sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Data,
    Event,
    Id,
    Retry,
    Other,
}

/// Where the parser is within a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of the stream, `n` bytes of a possible BOM matched.
    Bom(u8),
    /// At the start of a line.
    LineStart,
    /// Inside a field name.
    Name,
    /// Inside a field value; `skip_space` until the first value byte was seen.
    Value { skip_space: bool },
    /// Inside a comment line.
    Comment,
}

/// The streaming parser. Feed it bytes with [`Parser::feed`].
#[derive(Debug, Clone)]
pub struct Parser {
    caps: Caps,
    state: State,
    after_cr: bool,
    name: [u8; 5],
    name_len: usize,
    name_too_long: bool,
    field: Field,
    data: Vec<u8>,
    data_len: usize,
    data_seen: bool,
    event: Vec<u8>,
    /// The last event id buffer (set by `id:` lines).
    id_buf: Vec<u8>,
    /// The stream's last event id (the buffer as of the last blank line).
    last_id: Vec<u8>,
    pending_id: Vec<u8>,
    pending_id_nul: bool,
    retry_acc: u64,
    retry_ok: bool,
    retry_any: bool,
    retry: Option<u64>,
    comment: Vec<u8>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(Caps::UNLIMITED)
    }
}

/// Appends `piece` to `buf` without letting it grow beyond `cap`.
fn push_capped(buf: &mut Vec<u8>, piece: &[u8], cap: usize) {
    let room = cap.saturating_sub(buf.len());
    buf.extend_from_slice(&piece[..piece.len().min(room)]);
}

/// Whether `b` ends a line.
fn is_eol(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// The index of the first CR or LF in `s`.
///
/// Long values (8 KiB event data) are scanned 32 bytes at a time without an early exit
/// inside a block, which the compiler turns into vector compares; the block with a hit is
/// then searched byte by byte.
fn find_eol(s: &[u8]) -> Option<usize> {
    const BLOCK: usize = 32;
    let mut blocks = s.chunks_exact(BLOCK);
    let mut base = 0;
    for block in &mut blocks {
        if block.iter().fold(false, |hit, &b| hit | is_eol(b)) {
            return block.iter().position(|&b| is_eol(b)).map(|i| base + i);
        }
        base += BLOCK;
    }
    blocks
        .remainder()
        .iter()
        .position(|&b| is_eol(b))
        .map(|i| base + i)
}

impl Parser {
    /// A parser at the start of a stream, keeping at most `caps` of each buffer.
    pub fn new(caps: Caps) -> Parser {
        let pre = |c: usize| Vec::with_capacity(c.min(128));
        Parser {
            caps,
            state: State::Bom(0),
            after_cr: false,
            name: [0; 5],
            name_len: 0,
            name_too_long: false,
            field: Field::Other,
            data: pre(caps.data),
            data_len: 0,
            data_seen: false,
            event: pre(caps.event),
            id_buf: pre(caps.id),
            last_id: pre(caps.id),
            pending_id: pre(caps.id),
            pending_id_nul: false,
            retry_acc: 0,
            retry_ok: true,
            retry_any: false,
            retry: None,
            comment: pre(caps.comment),
        }
    }

    /// The stream's last event id: the id buffer as of the last blank line, so an event
    /// cut off by a hang-up does not count. It persists across events and, after
    /// [`Parser::reconnect`], across connections: this is what a client sends as
    /// `Last-Event-ID`.
    pub fn last_id(&self) -> &[u8] {
        &self.last_id
    }

    /// The reconnection time the stream asked for with `retry:`, in milliseconds.
    #[cfg(test)]
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Starts a new connection: drops any partial line and event but keeps the last event
    /// id and the reconnection time, as an `EventSource` does.
    pub fn reconnect(&mut self) {
        self.state = State::Bom(0);
        self.after_cr = false;
        self.data.clear();
        self.data_len = 0;
        self.data_seen = false;
        self.event.clear();
        self.comment.clear();
        self.id_buf.clone_from(&self.last_id);
    }

    /// Parses `input`, calling `out` for every event dispatched and every comment line.
    /// Chunk boundaries do not matter: any split of the same bytes gives the same items.
    pub fn feed(&mut self, mut input: &[u8], out: &mut impl FnMut(Item<'_>)) {
        while let Some(&first) = input.first() {
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    input = &input[1..];
                    continue;
                }
            }
            match self.state {
                State::Bom(n) => {
                    if first == BOM[usize::from(n)] {
                        input = &input[1..];
                        self.state = if n == 2 {
                            State::LineStart
                        } else {
                            State::Bom(n + 1)
                        };
                    } else {
                        // Not a BOM after all: the matched bytes are ordinary input.
                        self.state = State::LineStart;
                        let matched = usize::from(n);
                        self.feed(&BOM[..matched], out);
                    }
                }
                State::LineStart => match first {
                    b'\r' | b'\n' => {
                        input = self.line_end(input);
                        self.dispatch(out);
                    }
                    b':' => {
                        input = &input[1..];
                        self.comment.clear();
                        self.state = State::Comment;
                    }
                    _ => {
                        self.name_len = 0;
                        self.name_too_long = false;
                        self.state = State::Name;
                    }
                },
                State::Name => {
                    let stop = input
                        .iter()
                        .position(|&b| b == b':' || b == b'\n' || b == b'\r');
                    let piece = &input[..stop.unwrap_or(input.len())];
                    self.push_name(piece);
                    match stop {
                        None => input = &[],
                        Some(i) => {
                            self.begin_field();
                            if input[i] == b':' {
                                input = &input[i + 1..];
                                self.state = State::Value { skip_space: true };
                            } else {
                                input = self.line_end(&input[i..]);
                                self.end_field();
                            }
                        }
                    }
                }
                State::Value { skip_space } => {
                    if skip_space {
                        self.state = State::Value { skip_space: false };
                        if first == b' ' {
                            input = &input[1..];
                            continue;
                        }
                    }
                    let stop = find_eol(input);
                    self.value_piece(&input[..stop.unwrap_or(input.len())]);
                    match stop {
                        None => input = &[],
                        Some(i) => {
                            input = self.line_end(&input[i..]);
                            self.end_field();
                        }
                    }
                }
                State::Comment => {
                    let stop = find_eol(input);
                    push_capped(
                        &mut self.comment,
                        &input[..stop.unwrap_or(input.len())],
                        self.caps.comment,
                    );
                    match stop {
                        None => input = &[],
                        Some(i) => {
                            input = self.line_end(&input[i..]);
                            out(Item::Comment(&self.comment));
                        }
                    }
                }
            }
        }
    }

    /// Consumes the CR or LF at the start of `input`, returning the rest.
    fn line_end<'b>(&mut self, input: &'b [u8]) -> &'b [u8] {
        self.after_cr = input[0] == b'\r';
        self.state = State::LineStart;
        &input[1..]
    }

    fn push_name(&mut self, piece: &[u8]) {
        for &b in piece {
            if self.name_len < self.name.len() {
                self.name[self.name_len] = b;
                self.name_len += 1;
            } else {
                self.name_too_long = true;
            }
        }
    }

    fn begin_field(&mut self) {
        self.field = if self.name_too_long {
            Field::Other
        } else {
            match &self.name[..self.name_len] {
                b"data" => Field::Data,
                b"event" => Field::Event,
                b"id" => Field::Id,
                b"retry" => Field::Retry,
                _ => Field::Other,
            }
        };
        match self.field {
            Field::Event => self.event.clear(),
            Field::Id => {
                self.pending_id.clear();
                self.pending_id_nul = false;
            }
            Field::Retry => {
                self.retry_acc = 0;
                self.retry_ok = true;
                self.retry_any = false;
            }
            Field::Data | Field::Other => {}
        }
    }

    fn value_piece(&mut self, piece: &[u8]) {
        match self.field {
            Field::Data => {
                push_capped(&mut self.data, piece, self.caps.data);
                self.data_len += piece.len();
            }
            Field::Event => push_capped(&mut self.event, piece, self.caps.event),
            Field::Id => {
                self.pending_id_nul |= piece.contains(&0);
                push_capped(&mut self.pending_id, piece, self.caps.id);
            }
            Field::Retry => {
                for &b in piece {
                    if b.is_ascii_digit() {
                        self.retry_any = true;
                        self.retry_acc = self
                            .retry_acc
                            .saturating_mul(10)
                            .saturating_add(u64::from(b - b'0'));
                    } else {
                        self.retry_ok = false;
                    }
                }
            }
            Field::Other => {}
        }
    }

    fn end_field(&mut self) {
        match self.field {
            Field::Data => {
                push_capped(&mut self.data, b"\n", self.caps.data);
                self.data_len += 1;
                self.data_seen = true;
            }
            Field::Id if !self.pending_id_nul => {
                std::mem::swap(&mut self.id_buf, &mut self.pending_id);
            }
            Field::Retry if self.retry_ok && self.retry_any => self.retry = Some(self.retry_acc),
            _ => {}
        }
        self.field = Field::Other;
    }

    fn dispatch(&mut self, out: &mut impl FnMut(Item<'_>)) {
        self.last_id.clear();
        self.last_id.extend_from_slice(&self.id_buf);
        if self.data_seen {
            let full = self.data_len - 1;
            let kept = self.data.len().min(full);
            out(Item::Event(EventRef {
                event: &self.event,
                data: &self.data[..kept],
                data_len: full,
                id: &self.last_id,
            }));
        }
        self.data.clear();
        self.data_len = 0;
        self.data_seen = false;
        self.event.clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn find_eol_matches_a_plain_scan() {
        let plain = |s: &[u8]| s.iter().position(|&b| b == b'\n' || b == b'\r');
        let mut s = vec![b'x'; 200];
        assert_eq!(super::find_eol(&s), None);
        for len in 0..=s.len() {
            for at in 0..len {
                for eol in [b'\n', b'\r'] {
                    s[at] = eol;
                    assert_eq!(super::find_eol(&s[..len]), plain(&s[..len]), "{len} {at}");
                    s[at] = b'x';
                }
            }
        }
        s[40] = b'\r';
        s[7] = b'\n';
        assert_eq!(super::find_eol(&s), Some(7));
        assert_eq!(super::find_eol(&s[8..]), Some(32));
    }

    use super::*;

    /// An owned event or comment, for comparisons.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Event {
            event: String,
            data: String,
            id: String,
        },
        Comment(String),
    }

    fn own(item: Item<'_>) -> Owned {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match item {
            Item::Event(e) => Owned::Event {
                event: s(e.event),
                data: s(e.data),
                id: s(e.id),
            },
            Item::Comment(c) => Owned::Comment(s(c)),
        }
    }

    fn parse_chunks(chunks: &[&[u8]]) -> (Vec<Owned>, Option<u64>, String) {
        let mut p = Parser::default();
        let mut got = Vec::new();
        for c in chunks {
            p.feed(c, &mut |i| got.push(own(i)));
        }
        (
            got,
            p.retry(),
            String::from_utf8_lossy(p.last_id()).into_owned(),
        )
    }

    fn parse(s: &str) -> Vec<Owned> {
        parse_chunks(&[s.as_bytes()]).0
    }

    fn ev(event: &str, data: &str, id: &str) -> Owned {
        Owned::Event {
            event: event.into(),
            data: data.into(),
            id: id.into(),
        }
    }

    /// A straightforward implementation of the spec over a whole input, to compare with.
    fn reference(input: &str) -> (Vec<Owned>, Option<u64>, String) {
        let input = input.strip_prefix('\u{FEFF}').unwrap_or(input);
        let mut lines = Vec::new();
        let mut rest = input;
        while let Some(i) = rest.find(['\r', '\n']) {
            lines.push(&rest[..i]);
            rest = if rest[i..].starts_with("\r\n") {
                &rest[i + 2..]
            } else {
                &rest[i + 1..]
            };
        }
        let (mut out, mut data, mut event, mut id, mut retry) = (
            Vec::new(),
            String::new(),
            String::new(),
            String::new(),
            None,
        );
        let mut last_id = String::new();
        for line in lines {
            if line.is_empty() {
                last_id.clone_from(&id);
                if !data.is_empty() {
                    data.pop();
                    out.push(ev(&event, &data, &id));
                }
                data.clear();
                event.clear();
            } else if let Some(c) = line.strip_prefix(':') {
                out.push(Owned::Comment(c.into()));
            } else {
                let (name, value) = match line.find(':') {
                    Some(i) => {
                        let v = &line[i + 1..];
                        (&line[..i], v.strip_prefix(' ').unwrap_or(v))
                    }
                    None => (line, ""),
                };
                match name {
                    "data" => {
                        data.push_str(value);
                        data.push('\n');
                    }
                    "event" => event = value.into(),
                    "id" if !value.contains('\0') => id = value.into(),
                    "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                        retry = value.parse().ok();
                    }
                    _ => {}
                }
            }
        }
        (out, retry, last_id)
    }

    #[test]
    fn basic_event_and_comment() {
        let got =
            parse("retry: 3000\n: connected, client #1\n\nid: 7\nevent: tick\ndata: {\"a\":1}\n\n");
        assert_eq!(
            got,
            vec![
                Owned::Comment(" connected, client #1".into()),
                ev("tick", "{\"a\":1}", "7"),
            ]
        );
        assert_eq!(parse_chunks(&[b"retry: 3000\n"]).1, Some(3000));
    }

    #[test]
    fn multi_line_data_and_spaces() {
        assert_eq!(
            parse("data: a\ndata:b\ndata:  c\ndata\n\n"),
            vec![ev("", "a\nb\n c\n", "")]
        );
    }

    #[test]
    fn cr_and_crlf_line_ends() {
        let want = vec![ev("x", "1", "5"), ev("", "2", "5")];
        assert_eq!(parse("id: 5\revent: x\rdata: 1\r\rdata: 2\r\r"), want);
        assert_eq!(
            parse("id: 5\r\nevent: x\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n"),
            want
        );
        // A CRLF split across chunks is one line end, not a blank line.
        let (got, _, _) = parse_chunks(&[b"data: 1\r", b"\ndata: 2\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec![ev("", "1\n2", "")]);
    }

    #[test]
    fn id_rules_and_unterminated_event() {
        assert_eq!(
            parse("id: 1\ndata: a\n\nid: x\0y\ndata: b\n\nid\ndata: c\n\ndata: lost"),
            vec![ev("", "a", "1"), ev("", "b", "1"), ev("", "c", "")]
        );
        // Blank line without data: no event, but the type is reset.
        assert_eq!(parse("event: e\n\ndata: d\n\n"), vec![ev("", "d", "")]);
    }

    #[test]
    fn bom_is_skipped_once() {
        assert_eq!(parse("\u{FEFF}data: a\n\n"), vec![ev("", "a", "")]);
        let (got, _, _) = parse_chunks(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]);
        assert_eq!(got, vec![ev("", "a", "")]);
        // A partial BOM is ordinary input (here part of a field name that is ignored).
        let (got, _, _) = parse_chunks(&[b"\xEF\xBBx: 1\ndata: z\n\n"]);
        assert_eq!(got, vec![ev("", "z", "")]);
    }

    #[test]
    fn retry_needs_digits_only() {
        assert_eq!(parse_chunks(&[b"retry: 12x\n"]).1, None);
        assert_eq!(parse_chunks(&[b"retry:\n"]).1, None);
        assert_eq!(parse_chunks(&[b"retry: 5\nretry: 1 2\n"]).1, Some(5));
    }

    #[test]
    fn caps_keep_prefix_and_length() {
        let mut p = Parser::new(Caps {
            data: 4,
            event: 2,
            id: 3,
            comment: 1,
        });
        let mut got = Vec::new();
        p.feed(
            b": hello\nid: 12345\nevent: long\ndata: abcdefgh\n\n",
            &mut |i| {
                got.push(match i {
                    Item::Event(e) => format!(
                        "{}|{}|{}|{}",
                        String::from_utf8_lossy(e.event),
                        String::from_utf8_lossy(e.data),
                        e.data_len,
                        String::from_utf8_lossy(e.id)
                    ),
                    Item::Comment(c) => String::from_utf8_lossy(c).into_owned(),
                })
            },
        );
        assert_eq!(got, vec![" ".to_string(), "lo|abcd|8|123".to_string()]);
    }

    #[test]
    fn last_id_commits_at_blank_line() {
        // An event cut off after its id line does not move the last event id.
        assert_eq!(
            parse_chunks(&[b"id: 1\ndata: a\n\nid: 2\ndata: b\n"]).2,
            "1"
        );
        // A blank line commits the id even without data.
        assert_eq!(parse_chunks(&[b"id: 3\n\n"]).2, "3");
    }

    #[test]
    fn reconnect_keeps_last_id_only() {
        let mut p = Parser::default();
        let mut n = 0;
        p.feed(b"id: 9\ndata: a\n\ndata: partial", &mut |_| n += 1);
        p.reconnect();
        let mut got = Vec::new();
        p.feed(b"data: b\n\n", &mut |i| got.push(own(i)));
        assert_eq!(n, 1);
        assert_eq!(got, vec![ev("", "b", "9")]);
        assert_eq!(p.last_id(), b"9");
    }

    /// A random stream built from interesting lines and line ends.
    fn random_stream(rng: &mut fastrand::Rng) -> String {
        const LINES: &[&str] = &[
            "data: x",
            "data:y",
            "data",
            "data:  two",
            "data: {\"seq\":1}",
            "id: 5",
            "id:77",
            "id",
            "id: a\0b",
            "event: e1",
            "event:",
            "retry: 100",
            "retry: x1",
            ": comment",
            ":",
            "",
            "",
            "foo: bar",
            "dat: a",
            "datax: q",
            "retryy: 5",
            "é: ü",
        ];
        const ENDS: &[&str] = &["\n", "\r", "\r\n"];
        let mut s = String::new();
        if rng.u8(..8) == 0 {
            s.push('\u{FEFF}');
        }
        for _ in 0..rng.usize(0..60) {
            s.push_str(LINES[rng.usize(..LINES.len())]);
            s.push_str(ENDS[rng.usize(..ENDS.len())]);
        }
        if rng.bool() {
            s.push_str("data: tail");
        }
        s
    }

    #[test]
    fn matches_reference_and_is_chunking_invariant() {
        for seed in 0..2000u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let text = random_stream(&mut rng);
            let bytes = text.as_bytes();
            let whole = parse_chunks(&[bytes]);
            assert_eq!(whole, reference(&text), "seed {seed}: {text:?}");
            // Random pieces, including empty ones and single bytes.
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                let n = rng.usize(0..=(bytes.len() - at).min(9));
                chunks.push(&bytes[at..at + n]);
                at += n;
            }
            assert_eq!(parse_chunks(&chunks), whole, "seed {seed}: {text:?}");
            let singles: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(parse_chunks(&singles), whole, "seed {seed}");
        }
    }
}
