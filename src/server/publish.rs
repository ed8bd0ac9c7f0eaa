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
use super::request::Request;
use super::socket::{Conn, write_timed};
use crate::auth::{self, Selectors};
use crate::envelope::{Envelope, PublisherId};
use crate::http::framing::BodyKind;
use crate::http::read::{ConnError, read_body};
use crate::http::response::{CONTINUE, Response};
use crate::input;
use crate::port::{Receipt, Refused};
use crate::topic::Topic;

/// Longest a publish answer waits for subscribers to catch up. **Unit:** ms.
pub const MAX_PUBLISH_PACE: Duration = Duration::from_millis(50);

/// What a publisher's credential lets it publish to.
#[derive(Debug)]
pub(super) enum PublishRights {
    /// The static `--publish-token`: every topic.
    Any,
    /// A JWT: the topics its `publish` selectors cover.
    Only(Selectors),
}

impl PublishRights {
    /// `Ok` when these rights cover every one of `topics` (an event's own and its
    /// alternates), or the `403` naming the first that is not covered.
    pub(super) fn check<'a>(
        &self,
        mut topics: impl Iterator<Item = &'a Topic>,
    ) -> Result<(), Response> {
        match self {
            PublishRights::Only(selectors) => match topics.find(|t| !selectors.matches(t)) {
                Some(topic) => Err(Response::text(
                    403,
                    &format!("token may not publish to topic {topic}"),
                )),
                None => Ok(()),
            },
            PublishRights::Any => Ok(()),
        }
    }
}

/// `Ok` when this server takes publishes at all (a static token or a JWT key is set), or
/// the `403` saying how to turn publishing on. Both publish routes ask it first.
pub(super) fn publishing_on(ctx: &Ctx) -> Result<(), Response> {
    let config = &ctx.config;
    if config.publish_token.is_none() && config.publisher_key().is_none() {
        return Err(Response::text(
            403,
            "publishing is off: start ssehub with --publish-token TOKEN or --jwt-key KEY",
        )
        .close());
    }
    Ok(())
}

/// Checks the bearer token: who may go on and send the body, or the refusal.
pub(super) fn authorize(ctx: &Ctx, req: &Request) -> Result<PublishRights, Response> {
    let config = &ctx.config;
    publishing_on(ctx)?;
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
        && input::constant_time_eq(given.as_bytes(), token.as_bytes())
    {
        return Ok(PublishRights::Any);
    }
    let Some(key) = config.publisher_key() else {
        // RFC 6750 §3.1: a token that is present but wrong is `invalid_token`.
        return Err(Response::text(401, "wrong bearer token")
            .header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
            .close());
    };
    let claims = access::verified(ctx, given, key)?;
    if claims.publish.is_empty() {
        return Err(Response::text(403, "token may not publish to any topic").close());
    }
    Ok(PublishRights::Only(claims.publish))
}

/// Reads the body of an authorized publish, publishes it through the port and paces
/// the publisher: the answer, or why the body could not be read.
pub(super) async fn handle<S: Conn>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    ctx: &Ctx,
    req: &Request,
    rights: &PublishRights,
) -> Result<Response, ConnError> {
    let body = receive_body(stream, buf, ctx, req).await?;
    let (resp, congested) = publish_body(ctx, req, &body, rights).await;
    if congested {
        pace_publisher(ctx).await;
    }
    Ok(resp)
}

/// Reads the body of an accepted request, after `100 Continue` when the client waits.
pub(super) async fn receive_body<S: Conn>(
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
pub(super) async fn pace_publisher(ctx: &Ctx) {
    ctx.stats.publish_paced();
    ctx.hub.pace(MAX_PUBLISH_PACE, &ctx.shutdown).await;
}

/// The query parameters a plain-text publish reads (with a JSON body, none may be
/// given: the body says it all).
const TEXT_PARAMS: [&str; 5] = ["event", "topic", "retry", "private", "id"];

/// The header that marks the answer to a retried publish (as Stripe's API does).
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The request's event, or the `400` naming what is wrong.
fn parse_body(req: &Request, body: &[u8]) -> Result<(input::Publish, Envelope), Response> {
    let bad = |e: &dyn std::fmt::Display| Response::text(400, &e.to_string());
    let is_json = req.content_type.as_deref().is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    let params: Vec<(String, String)> = req
        .params()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let parsed = if is_json {
        // A query flag that a JSON body would ignore is refused, never dropped: a
        // `?private=1` must not publish publicly (#20).
        if let Some((name, _)) = params
            .iter()
            .find(|(k, _)| TEXT_PARAMS.contains(&k.as_str()))
        {
            return Err(bad(&format_args!(
                "query parameter {name:?} is not read with a JSON body: put \"{name}\" in the body"
            )));
        }
        input::from_json(body)
    } else {
        let one = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let text = input::Params {
            event: one("event"),
            topics: params
                .iter()
                .filter(|(k, _)| k == "topic")
                .map(|(_, v)| v.as_str())
                .collect(),
            retry: one("retry"),
            private: one("private"),
            id: one("id"),
        };
        input::from_text(body, &text)
    };
    let p = parsed.map_err(|e| bad(&e))?;
    let mut envelope = p.envelope().map_err(|e| bad(&e))?;
    if let Some(key) = &req.idempotency_key {
        let key = PublisherId::named(key, "Idempotency-Key").map_err(|e| bad(&e))?;
        envelope = envelope.with_key(key);
    }
    Ok((p, envelope))
}

/// Publishes a request's event through the port if `rights` cover its topics; the
/// answer, and whether the subscribers are congested.
async fn publish_body(
    ctx: &Ctx,
    req: &Request,
    body: &[u8],
    rights: &PublishRights,
) -> (Response, bool) {
    let (p, envelope) = match parse_body(req, body) {
        Ok(parsed) => parsed,
        Err(resp) => return (resp, false),
    };
    if let Err(refused) = rights
        .check(p.topics())
        .and_then(|()| super::subscriptions::refuse_reserved(ctx, envelope.topics()))
    {
        return (refused, false);
    }
    let result = ctx.port.publish(envelope, p.event).await;
    answer(ctx, result, |receipt| {
        let mut body = json!({"id": receipt.id});
        if let Some(n) = receipt.delivered_to {
            body["delivered_to"] = json!(n);
        }
        Response::json(200, &body)
    })
}

/// The answer to a publish the port took (`ok` renders it: each route has its own
/// body) or refused, and whether the subscribers are congested. A retry is marked
/// ([`REPLAYED_HEADER`]) and counted; a refusal was logged and counted where it failed,
/// the event got no id, and the publisher may try again after `Retry-After` (the reason
/// leaves the server's paths out).
pub(super) fn answer(
    ctx: &Ctx,
    result: Result<Receipt, Refused>,
    ok: impl FnOnce(&Receipt) -> Response,
) -> (Response, bool) {
    match result {
        Ok(receipt) => {
            let mut resp = ok(&receipt);
            if receipt.replayed {
                ctx.stats.publish_replayed();
                resp = resp.header(REPLAYED_HEADER, "true");
            }
            (resp, receipt.congested)
        }
        Err(refused) => (
            Response::text(503, &refused.to_string()).header(
                "Retry-After",
                refused.retry_after.as_secs().max(1).to_string(),
            ),
            false,
        ),
    }
}
