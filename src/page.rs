//! The live page served at `GET /`: one self-contained HTML document embedded in the
//! binary (no CDN, no build step). It connects with `/ssehub.js` (one stream shared by
//! the tabs of a browser) and draws charts of `/stats`.

/// The page.
pub const HTML: &str = include_str!("page.html");
