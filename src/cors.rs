//! Cross-origin access (`--cors-origin`): which response headers a request gets.
//!
//! Without any configured origin no CORS header is ever sent, so a browser page from
//! another origin cannot read the stream. With `*`, any origin may; with a list, the
//! request's `Origin` is echoed back when it is on the list (with `Vary: Origin`).

use crate::server::Ctx;

/// Header fields to add for a request whose `Origin` header is `origin`.
pub fn headers(ctx: &Ctx, origin: Option<&str>) -> Vec<(&'static str, String)> {
    let allowed = &ctx.config.cors_origins;
    if allowed.is_empty() {
        return Vec::new();
    }
    if allowed.iter().any(|o| o == "*") {
        return vec![("Access-Control-Allow-Origin", "*".to_owned())];
    }
    match origin {
        Some(o) if allowed.iter().any(|a| a.eq_ignore_ascii_case(o)) => vec![
            ("Access-Control-Allow-Origin", o.to_owned()),
            ("Vary", "Origin".to_owned()),
        ],
        _ => vec![("Vary", "Origin".to_owned())],
    }
}
