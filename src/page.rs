//! The live page served at `GET /`: one self-contained HTML document embedded in the
//! binary (no CDN, no build step). It connects with the browser's own `EventSource`.

/// The page.
pub const HTML: &str = include_str!("page.html");
