//! An incremental chunked body decoder (RFC 9112 §7.1).
//!
//! Everything here is pure: it looks only at the bytes it is given, never
//! performs I/O, never panics on input and runs in time linear in its input.

use super::error::ParseError;
use super::head::{is_field_vchar, is_tchar};

/// Longest chunk-size line (size digits plus extensions, excluding CRLF)
/// the [`ChunkedDecoder`] accepts, in bytes.
pub const MAX_CHUNK_LINE: usize = 1024;

/// Largest trailer section (all trailer lines with their CRLFs, excluding the
/// final empty line) the [`ChunkedDecoder`] accepts, in bytes.
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading chunk-size hex digits.
    Size,
    /// Whitespace after the size; only `;` may follow.
    SizeWs,
    /// Inside chunk extensions, until CR.
    Ext,
    /// CR of the size line seen; LF expected.
    SizeLf,
    /// Copying chunk data.
    Data,
    /// Chunk data done; CR expected.
    DataCr,
    /// CR after chunk data seen; LF expected.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer line, until CR.
    Trailer,
    /// CR of a trailer line seen; LF expected.
    TrailerLf,
    /// CR of the final empty line seen; LF expected.
    EndLf,
    /// The body is complete.
    Done,
}

/// Decodes a chunked request body incrementally (RFC 9112 §7.1).
///
/// Chunk extensions are validated loosely and ignored; a chunk-size line
/// may be at most [`MAX_CHUNK_LINE`] bytes. Trailer fields are discarded;
/// the trailer section may be at most [`MAX_TRAILER_BYTES`] bytes. Lines
/// must end in CRLF. Decoding stops right after the final CRLF, so bytes of
/// a pipelined next request are never consumed. After an error the decoder
/// is in an unspecified state and must be discarded.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: ChunkState,
    max_body: u64,
    /// Decoded bytes so far (including announced bytes of the current chunk).
    total: u64,
    /// Size being parsed on the current size line.
    size: u64,
    /// Bytes on the current size line.
    line_len: usize,
    /// Data bytes left in the current chunk.
    remaining: u64,
    /// Trailer bytes so far.
    trailer_len: usize,
}

impl ChunkedDecoder {
    /// Creates a decoder that refuses bodies decoding to more than
    /// `max_body` bytes.
    #[must_use]
    pub fn new(max_body: usize) -> Self {
        Self {
            state: ChunkState::Size,
            max_body: u64::try_from(max_body).unwrap_or(u64::MAX),
            total: 0,
            size: 0,
            line_len: 0,
            remaining: 0,
            trailer_len: 0,
        }
    }

    /// Whether the whole body, including trailers, has been decoded.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Consumes bytes from `input`, appending decoded data to `out`.
    ///
    /// Returns how many input bytes were consumed and whether the body is
    /// complete (after the final CRLF following the trailers). Partial input
    /// is fine: all bytes are consumed and the call can be repeated with the
    /// following bytes. Once complete, the remaining input (e.g. a pipelined
    /// request) is left unconsumed and further calls consume nothing.
    ///
    /// # Errors
    ///
    /// - [`ParseError::InvalidChunk`] for a malformed size line (no hex
    ///   digits, a non-hex character, a size overflowing 64 bits, a line
    ///   longer than [`MAX_CHUNK_LINE`]), missing CRLF after chunk data,
    ///   a bare LF, invalid bytes in extensions or trailers, or trailers
    ///   longer than [`MAX_TRAILER_BYTES`];
    /// - [`ParseError::BodyTooLarge`] as soon as a chunk size would take the
    ///   decoded body beyond `max_body`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), ParseError> {
        let mut i = 0;
        while self.state != ChunkState::Done {
            if self.state == ChunkState::Data {
                let rest = input.get(i..).unwrap_or_default();
                if rest.is_empty() {
                    break;
                }
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                out.extend_from_slice(rest.get(..take).unwrap_or_default());
                i += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = ChunkState::DataCr;
                }
                continue;
            }
            let Some(&b) = input.get(i) else { break };
            i += 1;
            self.step(b)?;
        }
        Ok((i, self.state == ChunkState::Done))
    }

    /// Advances the state machine by one byte outside chunk data.
    fn step(&mut self, b: u8) -> Result<(), ParseError> {
        use ChunkState::*;
        let has_digits = self.line_len > 0;
        if matches!(self.state, Size | SizeWs | Ext) && b != b'\r' {
            self.line_len += 1;
            if self.line_len > MAX_CHUNK_LINE {
                return Err(ParseError::InvalidChunk);
            }
        }
        if matches!(self.state, Trailer | TrailerLf) || (self.state == TrailerStart && b != b'\r') {
            self.trailer_len += 1;
            if self.trailer_len > MAX_TRAILER_BYTES {
                return Err(ParseError::InvalidChunk);
            }
        }
        self.state = match (self.state, b) {
            (Size, _) if b.is_ascii_hexdigit() => {
                let digit = match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'f' => b - b'a' + 10,
                    _ => b.wrapping_sub(b'A').wrapping_add(10),
                };
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(u64::from(digit)))
                    .ok_or(ParseError::InvalidChunk)?;
                Size
            }
            (Size, b';') if has_digits => Ext,
            (Size, b' ' | b'\t') if has_digits => SizeWs,
            (Size, b'\r') if has_digits => SizeLf,
            (SizeWs, b' ' | b'\t') => SizeWs,
            (SizeWs, b';') => Ext,
            (Ext, b'\r') => SizeLf,
            (Ext, b'\t' | b' ') => Ext,
            (Ext, _) if is_field_vchar(b) => Ext,
            (SizeLf, b'\n') => self.end_size_line()?,
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart, _) if is_tchar(b) => Trailer,
            (Trailer, b'\r') => TrailerLf,
            (Trailer, b'\t' | b' ') => Trailer,
            (Trailer, _) if is_field_vchar(b) => Trailer,
            (TrailerLf, b'\n') => TrailerStart,
            (EndLf, b'\n') => Done,
            _ => return Err(ParseError::InvalidChunk),
        };
        Ok(())
    }

    /// The size line is complete: start the chunk data or the trailers.
    fn end_size_line(&mut self) -> Result<ChunkState, ParseError> {
        let size = std::mem::take(&mut self.size);
        self.line_len = 0;
        if size == 0 {
            return Ok(ChunkState::TrailerStart);
        }
        match self.total.checked_add(size) {
            Some(total) if total <= self.max_body => {
                self.total = total;
                self.remaining = size;
                Ok(ChunkState::Data)
            }
            _ => Err(ParseError::BodyTooLarge {
                limit: usize::try_from(self.max_body).unwrap_or(usize::MAX),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `input` in one call.
    fn dechunk(input: &[u8], max_body: usize) -> Result<(Vec<u8>, usize, bool), ParseError> {
        let mut decoder = ChunkedDecoder::new(max_body);
        let mut out = Vec::new();
        let (used, done) = decoder.decode(input, &mut out)?;
        Ok((out, used, done))
    }

    macro_rules! chunked {
        ($name:ident, $input:expr, $expected:expr) => {
            #[test]
            fn $name() {
                let input: &[u8] = $input;
                let expected: Result<&[u8], ParseError> = $expected;
                let got = dechunk(input, 64);
                match expected {
                    Ok(body) => {
                        assert_eq!(got, Ok((body.to_vec(), input.len(), true)));
                        // Also byte by byte and at every split point.
                        for split in 0..=input.len() {
                            let mut decoder = ChunkedDecoder::new(64);
                            let mut out = Vec::new();
                            let (a, done_a) = decoder.decode(&input[..split], &mut out).unwrap();
                            assert_eq!(a, split);
                            assert_eq!(done_a, split == input.len() && !input.is_empty());
                            let (b, done_b) = decoder.decode(&input[split..], &mut out).unwrap();
                            assert_eq!((a + b, done_b, out.as_slice()), (input.len(), true, body));
                        }
                        let mut decoder = ChunkedDecoder::new(64);
                        let mut out = Vec::new();
                        for byte in input.chunks(1) {
                            assert_eq!(decoder.decode(byte, &mut out).map(|r| r.0), Ok(1));
                        }
                        assert!(decoder.is_done());
                        assert_eq!(out, body);
                    }
                    Err(e) => assert_eq!(got.map(|_| ()), Err(e)),
                }
            }
        };
    }

    chunked!(
        chunked_simple,
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        Ok(b"hello world")
    );
    chunked!(chunked_empty, b"0\r\n\r\n", Ok(b""));
    chunked!(
        chunked_upper_hex_leading_zero,
        b"000A\r\n0123456789\r\n00\r\n\r\n",
        Ok(b"0123456789")
    );
    chunked!(
        chunked_extensions,
        b"5;name=val;x=\"q s\"\r\nhello\r\n0 ; last\r\n\r\n",
        Ok(b"hello")
    );
    chunked!(
        chunked_trailers,
        b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n",
        Ok(b"abc")
    );
    chunked!(
        chunked_bad_hex,
        b"5g\r\nhello\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_no_digits,
        b"\r\nhello\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_ext_without_digits,
        b";x\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_sign,
        b"+5\r\nhello\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_overflow,
        b"ffffffffffffffffffff\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_oversize,
        b"41\r\n",
        Err(ParseError::BodyTooLarge { limit: 64 })
    );
    chunked!(
        chunked_oversize_total,
        b"20\r\n01234567890123456789012345678901\r\n21\r\n",
        Err(ParseError::BodyTooLarge { limit: 64 })
    );
    chunked!(
        chunked_missing_crlf_after_data,
        b"3\r\nabcd\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_bare_lf_size,
        b"3\nabc\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_bare_lf_data,
        b"3\r\nabc\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_space_without_ext,
        b"3 x\r\nabc\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_nul_in_ext,
        b"3;a\0\r\nabc\r\n0\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );
    chunked!(
        chunked_bad_trailer,
        b"0\r\n: x\r\n\r\n",
        Err(ParseError::InvalidChunk)
    );

    #[test]
    fn chunked_stops_at_end() {
        let input = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let mut decoder = ChunkedDecoder::new(64);
        let mut out = Vec::new();
        assert_eq!(decoder.decode(input, &mut out), Ok((13, true)));
        assert_eq!(out, b"abc");
        assert_eq!(decoder.decode(b"more", &mut out), Ok((0, true)));
    }

    #[test]
    fn chunked_exact_limit() {
        assert_eq!(
            dechunk(b"40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n0\r\n\r\n", 64)
                .map(|r| r.2),
            Ok(true)
        );
    }

    #[test]
    fn chunked_line_limits() {
        let long_ext = [b"1;".as_slice(), &[b'a'; MAX_CHUNK_LINE]].concat();
        assert_eq!(
            dechunk(&long_ext, 64).map(|_| ()),
            Err(ParseError::InvalidChunk)
        );
        let ok_ext = [
            b"1;".as_slice(),
            &[b'a'; MAX_CHUNK_LINE - 2],
            b"\r\nx\r\n0\r\n\r\n",
        ]
        .concat();
        assert_eq!(dechunk(&ok_ext, 64).map(|r| r.0), Ok(b"x".to_vec()));
        let zeros = [&[b'0'; MAX_CHUNK_LINE + 1][..], b"\r\n"].concat();
        assert_eq!(
            dechunk(&zeros, 64).map(|_| ()),
            Err(ParseError::InvalidChunk)
        );
        let trailers = [
            b"0\r\n".to_vec(),
            b"X: yyyyyyyyyyyyyyyyyyyyyy\r\n".repeat(400),
        ]
        .concat();
        assert_eq!(
            dechunk(&trailers, 64).map(|_| ()),
            Err(ParseError::InvalidChunk)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn chunked_arbitrary_bytes_never_panic(input in prop::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'5'), Just(b';'), any::<u8>()], 0..300)) {
            let mut decoder = ChunkedDecoder::new(100);
            let mut out = Vec::new();
            if let Ok((used, _)) = decoder.decode(&input, &mut out) {
                prop_assert!(used <= input.len());
                prop_assert!(out.len() <= 100);
            }
        }

        #[test]
        fn chunked_split_invariance(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..20), 0..6),
            split in any::<prop::sample::Index>(),
        ) {
            let mut encoded = Vec::new();
            for chunk in &chunks {
                encoded.extend_from_slice(format!("{:x};e=1\r\n", chunk.len()).as_bytes());
                encoded.extend_from_slice(chunk);
                encoded.extend_from_slice(b"\r\n");
            }
            encoded.extend_from_slice(b"0\r\nT: v\r\n\r\n");
            let at = split.index(encoded.len());
            let mut decoder = ChunkedDecoder::new(1000);
            let mut out = Vec::new();
            let (a, _) = decoder.decode(&encoded[..at], &mut out).expect("first half");
            let (b, done) = decoder.decode(&encoded[at..], &mut out).expect("second half");
            prop_assert_eq!(a + b, encoded.len());
            prop_assert!(done);
            prop_assert_eq!(out, chunks.concat());
        }
    }
}
