//! `POST /publish`: authorization, the body (after `100 Continue` when asked), the
//! publish itself, and pacing a publisher that outruns the server's own writers.
//!
//! A publisher's bearer token is the static `--publish-token` (every topic) or, with
//! `--jwt-key`, a JWT whose `publish` selectors name the topics it may publish to. The
//! credential is checked before the body is read; the topic, known only once the body
//! is parsed, is checked before anything is published.

use std::time::{Duration, Instant};

use serde_json::json;

use super::Ctx;
use super::access;
use super::connection::Request;
use super::socket::{Conn, write_timed};
use crate::auth::{self, Selectors};
use crate::http::framing::BodyKind;
use crate::http::read::{ConnError, read_body};
use crate::http::response::{CONTINUE, Response};
use crate::hub::Visibility;
use crate::publish;
use crate::topic::Topic;

/// Longest a publish answer waits for subscribers to catch up. **Unit:** ms.
pub const MAX_PUBLISH_PACE: Duration = Duration::from_millis(50);

/// Who may publish, as their credential says.
#[derive(Debug)]
pub(super) enum Publisher {
    /// The static `--publish-token`: every topic.
    Any,
    /// A JWT: the topics its `publish` selectors cover.
    Only(Selectors),
}

impl Publisher {
    /// `Ok` when this publisher may publish to `topic`, or the `403`.
    fn check(&self, topic: &Topic) -> Result<(), Response> {
        match self {
            Publisher::Only(selectors) if !selectors.matches(topic) => Err(Response::text(
                403,
                &format!("token may not publish to topic {topic}"),
            )),
            _ => Ok(()),
        }
    }
}

/// Checks the bearer token: who may go on and send the body, or the refusal.
pub(super) fn authorize(ctx: &Ctx, req: &Request) -> Result<Publisher, Response> {
    let config = &ctx.config;
    if config.publish_token.is_none() && config.jwt_key.is_none() {
        return Err(Response::text(
            403,
            "publishing is off: start ssehub with --publish-token TOKEN or --jwt-key KEY",
        )
        .close());
    }
    let given = req
        .authorization
        .as_deref()
        .and_then(auth::bearer)
        .filter(|t| !t.is_empty());
    let Some(given) = given else {
        return Err(access::unauthorized(
            None,
            "missing Authorization: Bearer <token>",
        ));
    };
    if let Some(token) = &config.publish_token
        && publish::constant_time_eq(given.as_bytes(), token.as_bytes())
    {
        return Ok(Publisher::Any);
    }
    let Some(key) = &config.jwt_key else {
        // RFC 6750 §3.1: a token that is present but wrong is `invalid_token`.
        return Err(Response::text(401, "wrong bearer token")
            .header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
            .close());
    };
    let claims = access::verified(ctx, given, key)?;
    if claims.publish.is_empty() {
        return Err(Response::text(403, "token may not publish to any topic").close());
    }
    Ok(Publisher::Only(claims.publish))
}

/// Reads the body of an authorized publish, publishes it and paces the publisher:
/// the answer, or why the body could not be read.
pub(super) async fn handle<S: Conn>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    ctx: &Ctx,
    req: &Request,
    publisher: &Publisher,
) -> Result<Response, ConnError> {
    let body = receive_body(stream, buf, ctx, req).await?;
    if let Some(broker) = &ctx.broker {
        // Through the shared stream: answered once Redis has the entry, with its id.
        return Ok(match parse_body(req, &body) {
            Err(resp) => resp,
            Ok(p) => match publisher.check(&p.topic) {
                Err(refused) => refused,
                Ok(()) if p.private => Response::text(501, crate::broker::NO_PRIVATE_EVENTS),
                Ok(()) => match broker.publish(&p.topic, &p.event).await {
                    Ok(id) => Response::json(200, &json!({"id": id.to_string()})),
                    Err(e) => Response::text(503, &e.to_string())
                        .header("Retry-After", BROKER_RETRY_AFTER.as_secs().to_string()),
                },
            },
        });
    }
    let (resp, congested) = publish_body(ctx, req, &body, publisher).await;
    if congested {
        pace_publisher(ctx).await;
    }
    Ok(resp)
}

/// Reads the body of an accepted request, after `100 Continue` when the client waits.
async fn receive_body<S: Conn>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    ctx: &Ctx,
    req: &Request,
) -> Result<Vec<u8>, ConnError> {
    if req.framing.expect_continue && req.framing.body != BodyKind::None && buf.is_empty() {
        write_timed(stream, CONTINUE, ctx.config.limits.write_timeout)
            .await
            .map_err(ConnError::Io)?;
    }
    let deadline = Instant::now() + ctx.config.limits.request_timeout;
    read_body(
        stream,
        buf,
        req.framing.body,
        ctx.config.limits.max_body,
        deadline,
    )
    .await
}

/// Holds a publisher's answer while the server's writers are behind, for at most
/// [`MAX_PUBLISH_PACE`] ([`Hub::pace`](crate::hub::Hub::pace)). A publisher that sends
/// its next event after the answer (as HTTP clients do) then slows to what the server
/// can write, instead of filling queues and getting readers evicted for the server's
/// own lateness.
async fn pace_publisher(ctx: &Ctx) {
    ctx.stats.publish_paced();
    ctx.hub.pace(MAX_PUBLISH_PACE, &ctx.shutdown).await;
}

/// What `Retry-After` says while the shared stream is unreachable. **Unit:** seconds.
pub const BROKER_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The request's event, or the `400` naming what is wrong.
fn parse_body(req: &Request, body: &[u8]) -> Result<publish::Publish, Response> {
    let is_json = req.content_type.as_deref().is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    let parsed = if is_json {
        publish::from_json(body)
    } else {
        publish::from_text(
            body,
            req.param("event").as_deref(),
            req.param("topic").as_deref(),
            req.param("retry").as_deref(),
            req.param("private").as_deref(),
        )
    };
    parsed.map_err(|e| Response::text(400, &e.to_string()))
}

/// What `Retry-After` says when the history file could not take an event. **Unit:**
/// seconds.
pub const HISTORY_FILE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Publishes a request's event if `publisher` may publish to its topic; the answer, and
/// whether the subscribers are congested.
async fn publish_body(
    ctx: &Ctx,
    req: &Request,
    body: &[u8],
    publisher: &Publisher,
) -> (Response, bool) {
    match parse_body(req, body) {
        Ok(p) => {
            if let Err(refused) = publisher.check(&p.topic) {
                return (refused, false);
            }
            let visibility = if p.private {
                Visibility::Private
            } else {
                Visibility::Public
            };
            // Without a history file this publishes at once; with one, the disk work
            // runs off this thread, which accepts and answers everyone else.
            match ctx
                .hub
                .try_publish_async(p.topic, p.event, visibility)
                .await
            {
                Ok(published) => {
                    let resp = Response::json(
                        200,
                        &json!({"id": published.id.to_string(), "delivered_to": published.delivery.sent}),
                    );
                    (resp, published.delivery.congested())
                }
                // The hub logged and counted it; the event got no id. The publisher may
                // try again; the reason leaves the server's paths out.
                Err(e) => (
                    Response::text(
                        503,
                        &format!("event not published: history file: {}", e.reason()),
                    )
                    .header(
                        "Retry-After",
                        HISTORY_FILE_RETRY_AFTER.as_secs().to_string(),
                    ),
                    false,
                ),
            }
        }
        Err(resp) => (resp, false),
    }
}
