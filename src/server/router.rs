//! The router: method × path → what the request leads to. Pure: no I/O, no state.

use crate::http::response::Response;

/// What a request leads to, by its method and path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// `GET` or `HEAD /stream`.
    Stream,
    /// `POST /publish`.
    Publish,
    /// `GET` or `HEAD` on the Mercure path: subscribe.
    MercureSubscribe,
    /// `POST` on the Mercure path: publish.
    MercurePublish,
    /// `GET` or `HEAD` under `{mercure path}/subscriptions`: Mercure's list of active
    /// subscriptions (with `--mercure-subscriptions`).
    MercureSubscriptions,
    /// `GET` or `HEAD /health`.
    Health,
    /// `GET` or `HEAD /stats`.
    Stats,
    /// `GET` or `HEAD /metrics`.
    Metrics,
    /// `GET` or `HEAD /`: the live page.
    Page,
    /// `GET` or `HEAD /ssehub.js`: the browser client.
    Script,
    /// `OPTIONS` on a known path (or `*`): `204` with these methods in `Allow`.
    Options(&'static str),
    /// Refused before anything else: `501`, `404` or `405`.
    Refuse(Response),
}

/// Methods this server knows; any other gets `501` (RFC 9110 §9.1). `CONNECT` is not
/// among them: ssehub makes no tunnels, so it is not implemented (501) on any target.
pub(super) const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH",
];

/// Most characters of a method or path echoed in an error message. Why: the answer
/// stays one readable line whatever the client sent (the request line may be 8 KiB).
pub(super) const MAX_ECHOED_CHARS: usize = 64;

/// The methods allowed on `path`, or `None` for an unknown path.
fn allowed(path: &str, mercure: Option<&str>) -> Option<&'static str> {
    if mercure == Some(path) {
        return Some(MERCURE_METHODS);
    }
    Some(match path {
        "/stream" | "/health" | "/stats" | "/metrics" | "/" | "/ssehub.js" => "GET, HEAD, OPTIONS",
        "/publish" => "POST, OPTIONS",
        "*" => "GET, HEAD, POST, OPTIONS",
        _ => return None,
    })
}

/// The methods of the Mercure path.
const MERCURE_METHODS: &str = "GET, HEAD, POST, OPTIONS";

/// Routes a request by `method` and `path` (`*` for the asterisk form); `mercure` is the
/// Mercure path, if on.
pub(super) fn route(method: &str, path: &str, mercure: Option<&str>) -> Route {
    if !KNOWN_METHODS.contains(&method) {
        return Route::Refuse(Response::text(
            501,
            &format!("method {} is not implemented", truncate(method)),
        ));
    }
    if path == "*" && method != "OPTIONS" {
        // The parser refuses this form already (RFC 9112 §3.2.4); the router agrees.
        return Route::Refuse(Response::text(400, "the * target is only for OPTIONS"));
    }
    let Some(allow) = allowed(path, mercure) else {
        return Route::Refuse(Response::text(
            404,
            &format!("no route for {}", truncate(path)),
        ));
    };
    if !allow.split(", ").any(|m| m == method) {
        // The text does not name the method, so a HEAD gets the Content-Length a GET
        // would (RFC 9110 §8.6).
        return Route::Refuse(
            Response::text(
                405,
                &format!("method not allowed on {path}; allowed: {allow}"),
            )
            .header("Allow", allow),
        );
    }
    match (method, path) {
        ("OPTIONS", _) => Route::Options(allow),
        ("POST", _) if mercure == Some(path) => Route::MercurePublish,
        _ if mercure == Some(path) => Route::MercureSubscribe,
        (_, "/stream") => Route::Stream,
        (_, "/publish") => Route::Publish,
        (_, "/health") => Route::Health,
        (_, "/stats") => Route::Stats,
        (_, "/metrics") => Route::Metrics,
        (_, "/ssehub.js") => Route::Script,
        _ => Route::Page,
    }
}

/// Routes `method` on a path of Mercure's list of active subscriptions (the caller
/// knows the path is one): `GET` and `HEAD` read it, `OPTIONS` lists them, any other
/// known method is `405`.
pub(super) fn route_subscriptions(method: &str) -> Route {
    const ALLOW: &str = "GET, HEAD, OPTIONS";
    match method {
        "GET" | "HEAD" => Route::MercureSubscriptions,
        "OPTIONS" => Route::Options(ALLOW),
        _ if !KNOWN_METHODS.contains(&method) => Route::Refuse(Response::text(
            501,
            &format!("method {} is not implemented", truncate(method)),
        )),
        _ => Route::Refuse(
            Response::text(
                405,
                &format!("method not allowed on the subscriptions API; allowed: {ALLOW}"),
            )
            .header("Allow", ALLOW),
        ),
    }
}

/// Which routes a listener serves, by the name its socket was given
/// (`FileDescriptorName=` under socket activation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every route: the `--bind` listener, and an inherited socket of any other name
    /// (`admin`, `unknown`, …).
    All,
    /// An inherited socket named `public`: only what browsers need, `GET`/`HEAD` (and
    /// `OPTIONS`) on `/stream`, `/health`, `/` and `/ssehub.js`. `/publish`, `/stats` and `/metrics`
    /// answer `404` there, as if they did not exist.
    Public,
}

impl Scope {
    /// The scope of an inherited socket named `name`.
    pub(crate) fn of_name(name: &str) -> Scope {
        if name == "public" {
            Scope::Public
        } else {
            Scope::All
        }
    }

    /// Whether `method` on `path` is served on a listener of this scope (the Mercure
    /// hub path, at `mercure`, only for subscribing there).
    fn serves(self, method: &str, path: &str, mercure: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Public => {
                matches!(path, "/stream" | "/health" | "/" | "/ssehub.js" | "*")
                    || (Some(path) == mercure && matches!(method, "GET" | "HEAD" | "OPTIONS"))
            }
        }
    }
}

/// Routes a request by `method` and `path`, as [`route`], on a listener of `scope`: a
/// path the scope does not serve is unknown there (`404`; a `501` method stays `501`).
pub(super) fn route_in(scope: Scope, method: &str, path: &str, mercure: Option<&str>) -> Route {
    if scope.serves(method, path, mercure) || !KNOWN_METHODS.contains(&method) {
        return route(method, path, mercure);
    }
    Route::Refuse(Response::text(
        404,
        &format!("no route for {} on this listener", truncate(path)),
    ))
}

/// At most [`MAX_ECHOED_CHARS`] characters of `s`.
pub(super) fn truncate(s: &str) -> &str {
    match s.char_indices().nth(MAX_ECHOED_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole routing table: method, path, and the route or refused status.
    #[test]
    fn routing_table() {
        use Route::*;
        let table: &[(&str, &str, Result<Route, u16>)] = &[
            ("GET", "/stream", Ok(Stream)),
            ("HEAD", "/stream", Ok(Stream)),
            ("POST", "/publish", Ok(Publish)),
            ("GET", "/health", Ok(Health)),
            ("HEAD", "/health", Ok(Health)),
            ("GET", "/stats", Ok(Stats)),
            ("GET", "/metrics", Ok(Metrics)),
            ("GET", "/", Ok(Page)),
            ("HEAD", "/", Ok(Page)),
            ("GET", "/ssehub.js", Ok(Script)),
            ("HEAD", "/ssehub.js", Ok(Script)),
            ("POST", "/ssehub.js", Err(405)),
            ("OPTIONS", "/stream", Ok(Options("GET, HEAD, OPTIONS"))),
            ("OPTIONS", "/publish", Ok(Options("POST, OPTIONS"))),
            ("OPTIONS", "*", Ok(Options("GET, HEAD, POST, OPTIONS"))),
            ("POST", "/stream", Err(405)),
            ("GET", "/publish", Err(405)),
            ("DELETE", "/health", Err(405)),
            ("PUT", "/", Err(405)),
            ("GET", "*", Err(400)),
            ("GET", "/nope", Err(404)),
            ("POST", "/stream/", Err(404)),
            ("BREW", "/stream", Err(501)),
            ("get", "/stream", Err(501)),
            ("BREW", "/nope", Err(501)),
            ("CONNECT", "example.com:443", Err(501)),
            ("CONNECT", "/stream", Err(501)),
            ("GET", "/.well-known/mercure", Ok(MercureSubscribe)),
            ("HEAD", "/.well-known/mercure", Ok(MercureSubscribe)),
            ("POST", "/.well-known/mercure", Ok(MercurePublish)),
            (
                "OPTIONS",
                "/.well-known/mercure",
                Ok(Options(MERCURE_METHODS)),
            ),
            ("PUT", "/.well-known/mercure", Err(405)),
            ("GET", "/.well-known/mercure/", Err(404)),
            ("GET", "/.well-known/mercure/subscriptions", Err(404)),
        ];
        for (method, path, want) in table {
            let got = route(method, path, Some("/.well-known/mercure"));
            match (want, &got) {
                (Ok(r), g) => assert_eq!(g, r, "{method} {path}"),
                (Err(status), Refuse(resp)) => {
                    assert_eq!(resp.status, *status, "{method} {path}")
                }
                (Err(status), g) => panic!("{method} {path}: want {status}, got {g:?}"),
            }
        }
    }

    #[test]
    fn a_public_listener_serves_only_streams_health_and_the_page() {
        let table: &[(&str, &str, Option<u16>)] = &[
            ("GET", "/stream", None),
            ("HEAD", "/health", None),
            ("GET", "/", None),
            ("GET", "/ssehub.js", None),
            ("OPTIONS", "/stream", None),
            ("OPTIONS", "*", None),
            ("POST", "/publish", Some(404)),
            ("OPTIONS", "/publish", Some(404)),
            ("GET", "/stats", Some(404)),
            ("GET", "/metrics", Some(404)),
            ("BREW", "/metrics", Some(501)),
            ("POST", "/stream", Some(405)),
        ];
        for (method, path, refused) in table {
            let got = route_in(Scope::Public, method, path, None);
            match (refused, &got) {
                (None, Route::Refuse(r)) => panic!("{method} {path}: refused {}", r.status),
                (None, _) => assert_eq!(got, route(method, path, None)),
                (Some(s), Route::Refuse(r)) => assert_eq!(r.status, *s, "{method} {path}"),
                (Some(s), g) => panic!("{method} {path}: want {s}, got {g:?}"),
            }
            assert_eq!(
                route_in(Scope::All, method, path, None),
                route(method, path, None)
            );
        }
        assert_eq!(Scope::of_name("public"), Scope::Public);
        for name in ["admin", "unknown", "ssehub", "Public"] {
            assert_eq!(Scope::of_name(name), Scope::All, "{name}");
        }
    }

    #[test]
    fn refusals_say_what_is_allowed_in_one_short_line() {
        assert!(matches!(
            route("GET", "/.well-known/mercure", None),
            Route::Refuse(_)
        ));
        let Route::Refuse(r) = route("POST", "/stream", None) else {
            panic!()
        };
        assert!(
            r.headers
                .contains(&("Allow", "GET, HEAD, OPTIONS".to_owned()))
        );
        assert_eq!(
            r.body,
            b"method not allowed on /stream; allowed: GET, HEAD, OPTIONS\n"
        );
        let long = format!("/{}", "x".repeat(500));
        let Route::Refuse(r) = route("GET", &long, None) else {
            panic!()
        };
        assert_eq!(r.body.len(), "no route for ".len() + MAX_ECHOED_CHARS + 1);
    }
}
