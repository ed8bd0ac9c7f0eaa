//! The error type shared by the request parser, the framing check, the
//! chunked decoder and the request-target parser.

use std::fmt;

/// Why a request head or body was refused.
///
/// The type is `Copy` and never allocates. Its [`Display`](fmt::Display)
/// form is a single lowercase line without a trailing period that names the
/// limit where there is one, suitable for a plain-text error response body.
/// [`ParseError::status`] is the one place an error becomes an HTTP status
/// code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The request line is longer than the configured limit (414).
    RequestLineTooLong {
        /// The limit in bytes that was exceeded.
        limit: usize,
    },
    /// The request head (leading empty lines, request line and header
    /// section, including the final CRLF CRLF) is longer than the limit (431).
    HeadTooLarge {
        /// The limit in bytes that was exceeded.
        limit: usize,
    },
    /// The head has more header fields than the caller provided room for (431).
    TooManyHeaders {
        /// The maximum number of header fields accepted.
        limit: usize,
    },
    /// The method is empty or not a token (400).
    InvalidMethod,
    /// The request-target is empty, contains bytes other than visible ASCII,
    /// or is of a form this server does not accept (400).
    InvalidTarget,
    /// The protocol version is not of the form `HTTP/` DIGIT `.` DIGIT (400).
    InvalidVersion,
    /// The protocol version is well-formed but neither 1.0 nor 1.1 (505).
    UnsupportedVersion,
    /// The request line does not consist of exactly three parts separated by
    /// single spaces (400).
    InvalidRequestLine,
    /// A field name is empty, not a token, or followed by whitespace before
    /// the colon (400).
    InvalidHeaderName,
    /// A field value contains a control character other than HTAB, a DEL,
    /// or a bare CR (400).
    InvalidHeaderValue,
    /// A header line starts with whitespace (obsolete line folding, 400).
    ObsFold,
    /// A line is terminated by a bare LF instead of CRLF (400).
    ///
    /// RFC 9112 §2.2 allows recipients to accept a bare LF; this parser
    /// refuses it so that it can never disagree with an intermediary about
    /// where a line (and hence a message) ends.
    InvalidLineEnding,
    /// An HTTP/1.1 request has no `Host` field (400).
    MissingHost,
    /// A request has more than one `Host` field (400).
    DuplicateHost,
    /// The `Host` field value is not a valid `uri-host [ ":" port ]` (400).
    InvalidHost,
    /// A `Content-Length` value is not a non-negative decimal integer that
    /// fits in 64 bits (400).
    InvalidContentLength,
    /// `Content-Length` values differ from each other (400).
    ConflictingContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` are present (400).
    ContentLengthWithTransferEncoding,
    /// A transfer coding other than a single `chunked` comes before the final `chunked`
    /// (501: the server does not implement it).
    UnsupportedTransferEncoding,
    /// `Transfer-Encoding` is present but its final coding is not `chunked` (or it lists
    /// none): the body cannot be delimited (400, RFC 9112 §6.3 item 4).
    TransferEncodingNotChunked,
    /// An HTTP/1.0 request carries `Transfer-Encoding`, which RFC 9112 §6.1
    /// says to treat as faulty framing (400).
    TransferEncodingInHttp10,
    /// The request body is larger than the configured limit (413).
    BodyTooLarge {
        /// The limit in bytes that was exceeded.
        limit: usize,
    },
    /// The chunked body is malformed or exceeds the decoder's fixed bounds
    /// on chunk-size lines and trailers (400).
    InvalidChunk,
    /// `Expect` carries anything other than `100-continue` (417).
    UnsupportedExpectation,
    /// The target is an absolute `https://` URI, but the connection is cleartext
    /// (421, RFC 9110 §7.4).
    HttpsOverCleartext,
}

impl ParseError {
    /// Returns the HTTP status code to answer this error with.
    ///
    /// This is the one place an error becomes a status code.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            Self::RequestLineTooLong { .. } => 414,
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::UnsupportedVersion => 505,
            Self::UnsupportedTransferEncoding => 501,
            Self::BodyTooLarge { .. } => 413,
            Self::UnsupportedExpectation => 417,
            Self::HttpsOverCleartext => 421,
            Self::InvalidMethod
            | Self::InvalidTarget
            | Self::InvalidVersion
            | Self::InvalidRequestLine
            | Self::InvalidHeaderName
            | Self::InvalidHeaderValue
            | Self::ObsFold
            | Self::InvalidLineEnding
            | Self::MissingHost
            | Self::DuplicateHost
            | Self::InvalidHost
            | Self::InvalidContentLength
            | Self::ConflictingContentLength
            | Self::ContentLengthWithTransferEncoding
            | Self::TransferEncodingNotChunked
            | Self::TransferEncodingInHttp10
            | Self::InvalidChunk => 400,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RequestLineTooLong { limit } => {
                write!(f, "request line exceeds {limit} bytes")
            }
            Self::HeadTooLarge { limit } => write!(f, "request head exceeds {limit} bytes"),
            Self::TooManyHeaders { limit } => write!(f, "more than {limit} header fields"),
            Self::InvalidMethod => f.write_str("invalid request method"),
            Self::InvalidTarget => f.write_str("invalid request target"),
            Self::InvalidVersion => f.write_str("invalid http version"),
            Self::UnsupportedVersion => {
                f.write_str("unsupported http version: this server speaks http/1.1 and http/1.0")
            }
            Self::InvalidRequestLine => f.write_str("malformed request line"),
            Self::InvalidHeaderName => f.write_str("invalid header field name"),
            Self::InvalidHeaderValue => f.write_str("invalid header field value"),
            Self::ObsFold => f.write_str("obsolete line folding is not accepted"),
            Self::InvalidLineEnding => f.write_str("line not terminated by crlf"),
            Self::MissingHost => f.write_str("missing host header"),
            Self::DuplicateHost => f.write_str("more than one host header"),
            Self::InvalidHost => f.write_str("invalid host header"),
            Self::InvalidContentLength => f.write_str("invalid content-length"),
            Self::ConflictingContentLength => f.write_str("conflicting content-length values"),
            Self::ContentLengthWithTransferEncoding => {
                f.write_str("content-length together with transfer-encoding")
            }
            Self::UnsupportedTransferEncoding => f.write_str("unsupported transfer-encoding"),
            Self::TransferEncodingNotChunked => {
                f.write_str("transfer-encoding does not end in chunked")
            }
            Self::TransferEncodingInHttp10 => f.write_str("transfer-encoding in http/1.0 request"),
            Self::BodyTooLarge { limit } => write!(f, "request body exceeds {limit} bytes"),
            Self::InvalidChunk => f.write_str("malformed chunked body"),
            Self::UnsupportedExpectation => f.write_str("unsupported expectation"),
            Self::HttpsOverCleartext => {
                f.write_str("https target on a cleartext connection: use an http:// target")
            }
        }
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::ParseError;
    use ParseError::*;

    const ALL: &[(ParseError, u16)] = &[
        (RequestLineTooLong { limit: 8192 }, 414),
        (HeadTooLarge { limit: 8192 }, 431),
        (TooManyHeaders { limit: 32 }, 431),
        (InvalidMethod, 400),
        (InvalidTarget, 400),
        (InvalidVersion, 400),
        (UnsupportedVersion, 505),
        (InvalidRequestLine, 400),
        (InvalidHeaderName, 400),
        (InvalidHeaderValue, 400),
        (ObsFold, 400),
        (InvalidLineEnding, 400),
        (MissingHost, 400),
        (DuplicateHost, 400),
        (InvalidHost, 400),
        (InvalidContentLength, 400),
        (ConflictingContentLength, 400),
        (ContentLengthWithTransferEncoding, 400),
        (UnsupportedTransferEncoding, 501),
        (TransferEncodingNotChunked, 400),
        (TransferEncodingInHttp10, 400),
        (BodyTooLarge { limit: 1024 }, 413),
        (InvalidChunk, 400),
        (UnsupportedExpectation, 417),
        (HttpsOverCleartext, 421),
    ];

    #[test]
    fn status_table() {
        for (err, status) in ALL {
            assert_eq!(err.status(), *status, "{err:?}");
        }
    }

    #[test]
    fn display_is_one_lowercase_line_without_period() {
        for (err, _) in ALL {
            let s = err.to_string();
            assert!(!s.is_empty(), "{err:?}");
            assert!(!s.contains('\n'), "{err:?}");
            assert!(!s.ends_with('.'), "{err:?}");
            assert_eq!(s, s.to_lowercase(), "{err:?}");
        }
    }

    #[test]
    fn display_includes_limits() {
        assert_eq!(
            RequestLineTooLong { limit: 8192 }.to_string(),
            "request line exceeds 8192 bytes"
        );
        assert_eq!(
            HeadTooLarge { limit: 100 }.to_string(),
            "request head exceeds 100 bytes"
        );
        assert_eq!(
            TooManyHeaders { limit: 32 }.to_string(),
            "more than 32 header fields"
        );
        assert_eq!(
            BodyTooLarge { limit: 5 }.to_string(),
            "request body exceeds 5 bytes"
        );
        assert_eq!(ObsFold.to_string(), "obsolete line folding is not accepted");
    }

    #[test]
    fn version_refusal_names_the_supported_versions() {
        let s = UnsupportedVersion.to_string();
        assert!(s.contains("http/1.0") && s.contains("http/1.1"), "{s}");
    }
}
