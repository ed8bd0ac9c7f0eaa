//! One connection: read a request head, route it, answer it (keep-alive, pipelining),
//! refuse it, or turn the connection into a stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures_lite::FutureExt;

use super::request::{Request, take_request};
use super::rest::Home;
use super::router::{Route, Scope, route_in, route_subscriptions};
use super::socket::{Conn, linger, write_timed};
use super::stream::Opened;
use super::{Ctx, mercure, publish, script, status, stream, subscriptions};
use crate::http::conditional::{self, Failed};
use crate::http::framing::BodyKind;
use crate::http::head::HeadParser;
use crate::http::read::{ConnError, is_disconnect, is_head_request, read_head};
use crate::http::response::{Response, STREAM_CACHE_CONTROL};

/// Serves one connection: requests until close, or a stream.
pub(crate) async fn serve_connection<S: Conn>(mut stream: S, peer: SocketAddr, ctx: &Arc<Ctx>) {
    // The request phase is boxed: its buffer and futures are freed before a stream
    // starts, so a long-lived subscriber's task holds only the writer's state.
    if let Some(opened) = Box::pin(serve_requests(&mut stream, peer, Scope::All, ctx)).await {
        stream::write_stream(stream, opened, Home::new(ctx.clone(), ())).await;
    }
}

/// Answers requests until the connection closes (`None`) or becomes a stream; only the
/// routes `scope` serves.
pub(super) async fn serve_requests<S: Conn>(
    stream: &mut S,
    peer: SocketAddr,
    scope: Scope,
    ctx: &Arc<Ctx>,
) -> Option<Opened> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    // One parser per connection: it resumes where the last read stopped, and its
    // header index is allocated once and reused for every keep-alive request.
    let mut parser = HeadParser::new(ctx.config.limits.head);
    let mut served = 0u32;
    loop {
        let deadline = Instant::now() + ctx.config.limits.request_timeout;
        let read = read_head(stream, &mut buf, &mut parser, deadline);
        // At shutdown, a connection waiting for a head closes; `or` polls the read first,
        // so a request already in the buffer is still answered.
        let got = async { Some(read.await) }
            .or(async {
                ctx.shutdown.wait().await;
                None
            })
            .await;
        let result = got?;
        let req = match result.and_then(|_| {
            take_request(&mut buf, &mut parser, &ctx.config.limits).map_err(ConnError::from)
        }) {
            Ok(req) => req,
            Err(e) => {
                let head_only = is_head_request(&buf);
                Box::pin(refuse(stream, ctx, e, served == 0, head_only)).await;
                return None;
            }
        };
        served += 1;
        // A request whose body is left unread cannot be followed on this connection.
        let mut body_read = req.framing.body == BodyKind::None;
        let mercure = ctx.config.mercure_path.as_deref();
        let routed = if subscriptions::serves(ctx, &req.path) {
            route_subscriptions(&req.method)
        } else {
            route_in(scope, &req.method, &req.path, mercure)
        };
        let resp = match routed {
            Route::Refuse(resp) => resp,
            Route::Options(allow) => ctx.cors.preflight(req.origin.as_deref(), allow),
            // Rendering these has no effect, so the preconditions are evaluated on what
            // they render: only a 2xx is subject to them (`/health` at shutdown is not).
            Route::Health => with_preconditions(&req, status::health(ctx)),
            Route::Stats => with_preconditions(&req, status::stats(ctx)),
            Route::Metrics => with_preconditions(&req, status::metrics(ctx)),
            Route::Page => with_preconditions(
                &req,
                Response::with_body(
                    200,
                    "text/html; charset=utf-8",
                    crate::page::HTML.as_bytes().to_vec(),
                ),
            ),
            Route::Script => script::response(&req),
            Route::MercureSubscriptions => with_preconditions(&req, subscriptions::list(ctx, &req)),
            route @ (Route::Publish | Route::MercurePublish) => match if route == Route::Publish {
                publish::authorize(ctx, &req)
            } else {
                mercure::authorize(ctx, &req)
            }
            .and_then(|p| preconditions(&req, false).map_or(Ok(p), Err))
            {
                Err(refused) => refused,
                Ok(rights) => {
                    // Boxed, as are the refusals: this future is part of every
                    // subscriber's request phase, and these are most of its size.
                    let handled = if route == Route::Publish {
                        Box::pin(publish::handle(stream, &mut buf, ctx, &req, &rights)).await
                    } else {
                        Box::pin(mercure::publish(stream, &mut buf, ctx, &req, &rights)).await
                    };
                    match handled {
                        Ok(resp) => {
                            body_read = true;
                            resp
                        }
                        Err(e) => {
                            // The head has arrived: a stalled body is a request timeout.
                            Box::pin(refuse(stream, ctx, e, true, req.is_head())).await;
                            return None;
                        }
                    }
                }
            },
            route @ (Route::Stream | Route::MercureSubscribe) => match if route == Route::Stream {
                stream::check(ctx, &req)
            } else {
                mercure::check(ctx, &req)
            } {
                Err(refused) => refused,
                Ok(open) => match preconditions(&req, true) {
                    // A 304 carries the Cache-Control the stream head would have.
                    Some(r) if r.status == 304 => r.header("Cache-Control", STREAM_CACHE_CONTROL),
                    Some(failed) => failed,
                    None => {
                        drop((buf, parser));
                        return stream::open(stream, peer, ctx, &req, open).await;
                    }
                },
            },
        };
        let resp = if body_read { resp } else { resp.close() };
        if !send(stream, ctx, &req, resp).await {
            return None;
        }
        if !buf.is_empty() {
            // Pipelined requests are answered one per poll: a client that sends many
            // cannot keep the request thread from the other connections.
            futures_lite::future::yield_now().await;
        }
    }
}

/// Writes a short response; false when the connection must close.
async fn send<S: Conn>(stream: &mut S, ctx: &Ctx, req: &Request, resp: Response) -> bool {
    if resp.status >= 400 {
        ctx.stats.rejected(resp.status);
    }
    // Every refused request ends its connection, as a malformed one must.
    let close =
        resp.close || resp.status >= 400 || !req.framing.keep_alive || ctx.shutdown.is_triggered();
    let mut resp = if close { resp.close() } else { resp };
    resp.headers.extend(ctx.cors.headers(req.origin.as_deref()));
    let bytes = resp.to_bytes(req.is_head());
    let written = write_timed(stream, &bytes, ctx.config.limits.write_timeout)
        .await
        .is_ok();
    if written && close && resp.status >= 400 {
        // The client may still be sending (a body, pipelined requests): let it read the
        // answer before the close.
        linger(stream, &ctx.config.limits).await;
    }
    written && !close
}

/// The answer when a precondition of `req` is false (RFC 9110 §13.1.1, §13.1.2), on a
/// target that has a current representation or not (`/publish` has none). Called only
/// where the answer would otherwise be 2xx, never for `OPTIONS` (§13.2.1).
fn preconditions(req: &Request, has_representation: bool) -> Option<Response> {
    let get_or_head = req.method == "GET" || req.method == "HEAD";
    let failed = conditional::evaluate(
        req.if_match.as_deref(),
        req.if_none_match.as_deref(),
        has_representation,
        get_or_head,
    )?;
    Some(match failed {
        // No content (§15.4.5); `send` adds Date and the Vary of the 200.
        Failed { status: 304, .. } => Response::with_body(304, "text/plain", Vec::new()),
        Failed { status, field } => {
            Response::text(status, &format!("{field} is false for {}", req.path))
        }
    })
}

/// `resp`, or the answer of a false precondition when `resp` is a 2xx.
fn with_preconditions(req: &Request, resp: Response) -> Response {
    if !(200..300).contains(&resp.status) {
        return resp;
    }
    preconditions(req, true).unwrap_or(resp)
}

/// Answers a request that failed before routing, then the connection closes.
/// A timeout gets `408` when `in_request` (part of a request had arrived, or this was the
/// connection's first request); an idle keep-alive connection just closes. `head_only`:
/// the request is a `HEAD`, so the answer has no body (RFC 9110 §9.3.2).
pub(super) async fn refuse<S: Conn>(
    stream: &mut S,
    ctx: &Ctx,
    e: ConnError,
    in_request: bool,
    head_only: bool,
) {
    let resp = match e {
        ConnError::Parse(p) => Response::text(p.status(), &p.to_string()),
        ConnError::Timeout { partial } if partial || in_request => {
            Response::text(408, "request head not received in time")
        }
        ConnError::Io(ref io) if !is_disconnect(io) => {
            ctx.log.line(format_args!("connection error: {io}"));
            return;
        }
        _ => return,
    };
    ctx.stats.rejected(resp.status);
    let bytes = resp.close().to_bytes(head_only);
    if write_timed(stream, &bytes, ctx.config.limits.write_timeout)
        .await
        .is_ok()
    {
        // Let the peer read the answer before the close: stop writing, drain, close.
        linger(stream, &ctx.config.limits).await;
    }
}
