//! The Mercure path (`--mercure-path`, default `/.well-known/mercure`): Mercure 0.x and
//! 1.0 requests, told apart per parameter, onto the same hub, history and port as
//! `/stream` and `/publish`.
//!
//! - `GET`: the selectors (`topic`, `match`, `match_exact`, `match_urlpattern`; see
//!   `mercure/query.rs`) become the subscriber's filter; the token's rights are read by
//!   Mercure's rules ([`Selectors::mercure`]); the resume id comes from `Last-Event-ID`,
//!   `lastEventID`, `last_event_id` or `Last-Event-ID` in the query, `earliest` meaning
//!   every retained event. The stream is then opened as `/stream` opens one, `reset`
//!   event included, with two more head fields (`resume_fields.rs`). With
//!   `--mercure-subscriptions` its first selectors are listed and announced while it
//!   lives (`subscriptions.rs`).
//! - `POST`: a form (`topic`, `data`, `private`, `id`, `type`, `retry`) published through
//!   the port; the answer is `200 text/plain` with the event's id. A publish authorized
//!   by a cookie must come from an allowed `Origin` (`--cors-origin`), as Mercure's CSRF
//!   rule says.

use std::borrow::Cow;
use std::sync::Arc;

use super::Ctx;
use super::access;
use super::publish::{self, PublishRights};
use super::request::Request;
use super::resume_fields::Resuming;
use super::socket::Conn;
use super::stream::OpenStream;
use super::subscriptions::Pending;
use crate::auth::{self, Credentials, Source};
use crate::envelope::{Envelope, PublisherId};
use crate::event_id::EventId;
use crate::http::framing::BodyKind;
use crate::http::read::ConnError;
use crate::http::response::Response;
use crate::http::target::query_pairs;
use crate::input;
use crate::mercure::query::{self, EARLIEST, Selector};
use crate::mercure::subscriptions::Version;
use crate::sse::Event;
use crate::topic::{Matching, Topic, Topics};

fn bad(e: &dyn std::fmt::Display) -> Response {
    Response::text(400, &e.to_string())
}

/// Checks a subscribe request on the Mercure path: its token, selectors and resume id.
pub(super) fn check(ctx: &Ctx, req: &Request) -> Result<OpenStream, Response> {
    if req.framing.body != BodyKind::None && req.framing.body != BodyKind::Length(0) {
        return Err(Response::text(400, "a subscribe request takes no body").close());
    }
    let mut grant = access::subscriber(ctx, req)?;
    grant.rights = grant.rights.map(|r| Arc::new(r.mercure()));
    let params: Vec<(Cow<'_, str>, Cow<'_, str>)> = req.params().collect();
    let asked = query::subscribe(
        params.iter().map(|(k, v)| (&**k, &**v)),
        req.last_event_id.as_deref(),
    )
    .map_err(|e| bad(&e))?;
    let version = match params
        .iter()
        .find(|(k, _)| k == "topic" || k.starts_with("match"))
    {
        Some((k, _)) if k == "topic" => Version::V0,
        _ => Version::V1,
    };
    let tracked = Pending::of(ctx, version, &asked.selectors, &grant.payloads);
    let topics = filter(asked.selectors).map_err(|e| bad(&e))?;
    let earliest = asked.last_event_id.as_deref() == Some(EARLIEST);
    let last_id = if earliest {
        earliest_id(ctx)
    } else {
        asked.last_event_id.clone()
    };
    let resuming = Resuming::new(asked.last_event_id, earliest);
    Ok(OpenStream::mercure(
        topics, last_id, grant, resuming, tracked,
    ))
}

/// The hub's filter for `selectors`: every topic when one is `*`, exact names alone as
/// `/stream` has them (the fan-out's cheapest filter), else names and patterns.
fn filter(selectors: Vec<Selector>) -> Result<Topics, crate::topic::TopicError> {
    let mut names = Vec::new();
    let mut patterns = Vec::new();
    for s in selectors {
        match s {
            Selector::All => return Ok(Topics::All),
            Selector::Exact(name) => names.push(Topic::new(&name)?),
            Selector::Pattern(p) => patterns.push(p),
        }
    }
    Ok(if patterns.is_empty() {
        Topics::requested(names)
    } else {
        Topics::Matching(Arc::new(Matching::new(names, patterns)?))
    })
}

/// The id `earliest` stands for: the one just before the oldest retained event (`None`:
/// nothing was ever published). With a broker's ids, an id older than any, which the
/// history answers with a `reset` and every retained event.
fn earliest_id(ctx: &Ctx) -> Option<String> {
    let last = ctx.hub.last_id()?;
    if ctx.hub.has_external_ids() {
        return Some(EventId::new(0, 0).to_string());
    }
    let before_first = last.offset.saturating_sub(ctx.hub.history_len() as u64);
    Some(EventId::new(last.epoch, before_first).to_string())
}

/// Checks a publisher's credential on the Mercure path: the static `--publish-token` as a
/// bearer, or a JWT from the bearer header, the cookie (from an allowed `Origin` only) or
/// `?authorization=`, its `publish` selectors read by Mercure's rules.
pub(super) fn authorize(ctx: &Ctx, req: &Request) -> Result<PublishRights, Response> {
    let config = &ctx.config;
    publish::publishing_on(ctx)?;
    let query = req.param(auth::QUERY_PARAM);
    let credentials = Credentials {
        authorization: req.authorization.as_deref(),
        cookie: req.cookie.as_deref(),
        cookie_name: &config.jwt_cookie,
        query: query.as_deref(),
    };
    let Some((source, token)) = credentials.token() else {
        return Err(access::unauthorized(
            None,
            "missing Authorization: Bearer <token>",
        ));
    };
    access::refuse_query_access_token(source, token)?;
    if source == Source::Header
        && let Some(static_token) = &config.publish_token
        && input::constant_time_eq(token.as_bytes(), static_token.as_bytes())
    {
        return Ok(PublishRights::Any);
    }
    if source == Source::Cookie && !ctx.cors.allows(req.origin.as_deref()) {
        return Err(Response::text(
            403,
            "a publish authorized by a cookie must come from an allowed Origin (--cors-origin)",
        )
        .close());
    }
    let Some(key) = config.publisher_key() else {
        return Err(Response::text(401, "wrong bearer token")
            .header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
            .close());
    };
    let claims = access::verified(ctx, token, key)?;
    if claims.publish.is_empty() {
        return Err(access::insufficient_scope(
            "token may not publish to any topic",
        ));
    }
    Ok(PublishRights::Only(claims.publish.mercure()))
}

/// Reads an authorized form publish, publishes it through the port and paces the
/// publisher, as `POST /publish` does.
pub(super) async fn publish<S: Conn>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    ctx: &Ctx,
    req: &Request,
    rights: &PublishRights,
) -> Result<Response, ConnError> {
    let body = publish::receive_body(stream, buf, ctx, req).await?;
    let parsed = parse(req, &body, rights).and_then(|(envelope, event)| {
        super::subscriptions::refuse_reserved(ctx, envelope.topics())?;
        Ok((envelope, event))
    });
    let (resp, congested) = match parsed {
        Ok((envelope, event)) => publish_update(ctx, envelope, event).await,
        Err(refused) => (refused, false),
    };
    if congested {
        publish::pace_publisher(ctx).await;
    }
    Ok(resp)
}

/// The form's event, or the refusal (`415`, `400`, `403`).
fn parse(
    req: &Request,
    body: &[u8],
    rights: &PublishRights,
) -> Result<(Envelope, Event), Response> {
    let is_form = req.content_type.as_deref().is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !is_form {
        return Err(Response::text(
            415,
            "publish on the Mercure path with Content-Type: application/x-www-form-urlencoded",
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad(&"the form is not UTF-8"))?;
    let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = query_pairs(text).collect();
    let u = query::update(pairs.iter().map(|(k, v)| (&**k, &**v))).map_err(|e| bad(&e))?;
    let topics = u
        .topics
        .iter()
        .map(|t| Topic::new(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    let mut envelope = Envelope::new(topics)
        .map_err(|e| bad(&e))?
        .with_private(u.private);
    if let Some(id) = &u.id {
        envelope = envelope.with_id(PublisherId::new(id).map_err(|e| bad(&e))?);
    }
    if let Some(key) = &req.idempotency_key {
        let key = PublisherId::named(key, "Idempotency-Key").map_err(|e| bad(&e))?;
        envelope = envelope.with_key(key);
    }
    rights
        .check(envelope.topics().iter())
        .map_err(|r| r.header("WWW-Authenticate", "Bearer error=\"insufficient_scope\""))?;
    let mut event = Event::new(u.data).map_err(|e| bad(&e))?;
    if let Some(name) = &u.event_type {
        event = event.with_name(name).map_err(|e| bad(&e))?;
    }
    if let Some(ms) = u.retry {
        event = event.with_retry(ms);
    }
    Ok((envelope, event))
}

/// Publishes through the port: `200 text/plain` with the id, and whether the
/// subscribers are congested; or the `503`.
async fn publish_update(ctx: &Ctx, envelope: Envelope, event: Event) -> (Response, bool) {
    let result = ctx.port.publish(envelope, event).await;
    publish::answer(ctx, result, |receipt| {
        Response::with_body(
            200,
            "text/plain; charset=utf-8",
            receipt.id.clone().into_bytes(),
        )
    })
}
