//! The HTTP/1.1 subset ssehub speaks, parsed by our own code.
//!
//! # What is accepted
//!
//! - HTTP/1.0 and HTTP/1.1 requests; any other version gets `505`.
//! - Origin-form (`/stream?topic=a`) and absolute-form (`http://host/stream`) targets;
//!   `*` only for `OPTIONS`. Authority-form is refused with `400`.
//! - Header names are case-insensitive tokens; values are trimmed of optional white space.
//!   Lines end in CRLF: a bare LF, obs-fold, NUL or another control byte is refused with
//!   `400`, because servers that read such bytes differently are how requests get smuggled.
//! - Leading empty lines before the request line are skipped (RFC 9112 §2.2) but count
//!   toward the head limit.
//! - Bodies framed by `Content-Length` or by `Transfer-Encoding: chunked` (RFC 9112 §6,
//!   §7.1). Both at once, differing `Content-Length`s, or transfer codings that do not end
//!   in `chunked` are refused with `400` (RFC 9112 §6.3); a coding before the final
//!   `chunked` gets `501`.
//! - HTTP/1.1 requests need exactly one `Host` (RFC 9112 §3.2).
//! - Keep-alive and pipelining for the short routes; `Connection: close` honoured.
//! - `Expect: 100-continue` answered with an interim `100 Continue` once the request has
//!   passed its checks; any other expectation gets `417`.
//!
//! # Layers
//!
//! [`head`], [`framing`], [`chunked`] and [`target`] are pure: bytes in, a result or a
//! precise [`error::ParseError`] out.
//!
//! - [`head`] parses the request head: the request line and the header lines, with the
//!   byte and field limits ([`head::HeadLimits`] and the `DEFAULT_MAX_*` constants).
//!   [`head::HeadParser`] resumes the scan across reads, so each byte is examined once,
//!   and lends the complete head without parsing it again.
//! - [`framing`] applies the message-framing rules to a parsed head: `Host`,
//!   `Content-Length`, `Transfer-Encoding`, `Connection` and `Expect`.
//! - [`chunked`] decodes a chunked body incrementally.
//! - [`target`] splits the request-target into path and query and decodes the query.
//!
//! [`read`] is the only I/O: it reads a head within the byte limit and the deadline, and a
//! body framed as [`framing`] decided. [`response`] builds the bytes of responses, dated
//! by [`date`], and [`error::ParseError::status`] is the one place an error becomes a
//! status code. [`conditional`] evaluates `If-Match` and `If-None-Match`.

pub mod chunked;
pub mod conditional;
pub mod date;
pub mod error;
pub mod framing;
pub mod head;
pub mod read;
pub mod response;
pub mod target;

pub use error::ParseError;
