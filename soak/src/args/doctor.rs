//! `ssehub-soak doctor URL [FLAGS]`: the proxy doctor's settings, validated into a
//! [`Doctor`]. It takes a few flags of the one table ([`super::flags`]) and refuses the
//! others.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::{Rate, Raw, UsageError};
use crate::http::parse_url;

/// The flags `doctor` reads; any other is refused.
const DOCTOR_FLAGS: &[&str] = &[
    "publish-url",
    "token",
    "publish-topic",
    "publish-rate",
    "body-size",
    "duration",
];

/// `--duration` without the flag. **Unit:** seconds.
pub const DEFAULT_DURATION_SECS: u64 = 20;
/// Shortest `--duration`. **Unit:** seconds.
pub const MIN_DURATION_SECS: f64 = 2.0;
/// `--publish-rate` without the flag: one event every 100 ms. **Unit:** events/s.
pub const DEFAULT_RATE: f64 = 10.0;
/// `--body-size` without the flag: a few events fill a proxy's 4 KiB buffer.
/// **Unit:** bytes.
pub const DEFAULT_BODY_SIZE: usize = 200;
/// The longest the doctor publishes; the rest of the run is quiet (the idle cut-off).
pub const MAX_PUBLISH: Duration = Duration::from_secs(5);

/// A validated doctor run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Doctor {
    /// The stream URL, as given (through the proxy).
    pub url: String,
    /// Where the stream URL connects.
    #[serde(skip)]
    pub addr: SocketAddr,
    /// Its `Host` header.
    #[serde(skip)]
    pub host: String,
    /// Its request target (path and query).
    #[serde(skip)]
    pub target: String,
    /// Where events are published (`POST`, ssehub's JSON body), as given.
    pub publish_url: String,
    /// Where the publish URL connects.
    #[serde(skip)]
    pub publish_addr: SocketAddr,
    /// Its `Host` header.
    #[serde(skip)]
    pub publish_host: String,
    /// Its request target.
    #[serde(skip)]
    pub publish_target: String,
    /// Bearer token for publishing (not serialized).
    #[serde(skip)]
    pub token: Option<String>,
    /// The topic the events go to.
    pub topic: String,
    /// Time between two events.
    #[serde(rename = "interval_ms", serialize_with = "ms")]
    pub interval: Duration,
    /// Each event's data is padded to this size. **Unit:** bytes.
    pub body_size: usize,
    /// The whole run: events for its first half (at most [`MAX_PUBLISH`]), then quiet.
    #[serde(rename = "duration_s", serialize_with = "secs")]
    pub duration: Duration,
    /// How long events are published.
    #[serde(rename = "publish_for_s", serialize_with = "secs")]
    pub publish_for: Duration,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Splits `http://HOST:PORT/path?query` into the connection address, `Host` and the
/// request target (loopback only, as every URL of the tool).
fn split_url(url: &str, flag: &str) -> Result<(SocketAddr, String, String), UsageError> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    if url.contains('#') {
        return Err(UsageError(format!("{flag} {url}: no fragment allowed")));
    }
    let parsed = parse_url(base).map_err(|e| UsageError(e.0.replacen("--url", flag, 1)))?;
    let mut target = if parsed.prefix.is_empty() {
        "/".to_string()
    } else {
        parsed.prefix
    };
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    Ok((parsed.addr, parsed.host, target))
}

/// The first `topic=` value of a query (percent-decoding left out: a plain name only).
fn topic_of(target: &str) -> Option<String> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("topic="))
        .find(|t| !t.is_empty() && !t.contains('%') && !t.contains('+'))
        .map(str::to_string)
}

/// Validates `doctor URL` with the flags in `raw` (`set`: the flags given).
pub(super) fn validate(url: String, raw: Raw) -> Result<Doctor, UsageError> {
    if let Some(other) = raw.set.iter().find(|f| !DOCTOR_FLAGS.contains(f)) {
        return Err(UsageError(format!(
            "--{other} does not apply to doctor (it takes --{})",
            DOCTOR_FLAGS.join(", --")
        )));
    }
    let (addr, host, target) = split_url(&url, "URL")?;
    let publish_url = raw
        .publish_url
        .ok_or_else(|| UsageError("doctor needs --publish-url (and --token)".into()))?;
    let (publish_addr, publish_host, publish_target) = split_url(&publish_url, "--publish-url")?;
    let interval = match raw.publish_rate {
        None => Duration::from_secs_f64(1.0 / DEFAULT_RATE),
        Some(Rate::PerSec(r)) if (0.5..=1000.0).contains(&r) => Duration::from_secs_f64(1.0 / r),
        Some(_) => {
            return Err(UsageError(
                "--publish-rate: doctor takes 0.5 to 1000 events per second".into(),
            ));
        }
    };
    let duration = raw
        .duration
        .unwrap_or(Duration::from_secs(DEFAULT_DURATION_SECS));
    if duration.as_secs_f64() < MIN_DURATION_SECS {
        return Err(UsageError(format!(
            "--duration: at least {MIN_DURATION_SECS} seconds"
        )));
    }
    let topic = raw
        .publish_topic
        .or_else(|| topic_of(&target))
        .unwrap_or_else(|| "doctor".to_string());
    let body_size = if raw.set.contains(&"body-size") {
        raw.body_size
    } else {
        DEFAULT_BODY_SIZE
    };
    Ok(Doctor {
        url,
        addr,
        host,
        target,
        publish_url,
        publish_addr,
        publish_host,
        publish_target,
        token: raw.token,
        topic,
        interval,
        body_size,
        duration,
        publish_for: (duration / 2).min(MAX_PUBLISH),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Command, parse};
    use super::*;

    fn doctor(args: &[&str]) -> Result<Doctor, UsageError> {
        match parse(args.iter().copied())? {
            Command::Doctor(d) => Ok(*d),
            other => panic!("not a doctor run: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_flags() {
        let d = doctor(&[
            "doctor",
            "http://127.0.0.1:8081/stream?topic=news",
            "--publish-url",
            "http://127.0.0.1:8080/publish",
            "--token",
            "t",
        ])
        .unwrap();
        assert_eq!(d.target, "/stream?topic=news");
        assert_eq!(d.host, "127.0.0.1:8081");
        assert_eq!(d.publish_target, "/publish");
        assert_eq!(d.topic, "news");
        assert_eq!(d.interval, Duration::from_millis(100));
        assert_eq!((d.body_size, d.token.as_deref()), (200, Some("t")));
        assert_eq!(d.duration, Duration::from_secs(20));
        assert_eq!(d.publish_for, Duration::from_secs(5));
        let d = doctor(&[
            "doctor",
            "http://localhost:81",
            "--publish-url=http://127.0.0.1:80/p",
            "--duration",
            "4",
            "--publish-rate",
            "20",
            "--body-size",
            "0",
        ])
        .unwrap();
        assert_eq!((d.target.as_str(), d.topic.as_str()), ("/", "doctor"));
        assert_eq!(d.interval, Duration::from_millis(50));
        assert_eq!((d.body_size, d.publish_for), (0, Duration::from_secs(2)));
    }

    #[test]
    fn refusals() {
        let p = "--publish-url=http://127.0.0.1:80/publish";
        for (args, want) in [
            (vec!["doctor"], "doctor needs a URL"),
            (vec!["doctor", "--duration", "3"], "doctor needs a URL"),
            (
                vec!["doctor", "http://127.0.0.1:1/s"],
                "needs --publish-url",
            ),
            (vec!["doctor", "http://10.0.0.1:1/s", p], "non-loopback"),
            (vec!["doctor", "https://127.0.0.1:1/s", p], "only http://"),
            (
                vec!["doctor", "http://127.0.0.1:1/s", p, "--clients", "5"],
                "--clients does not apply",
            ),
            (
                vec!["doctor", "http://127.0.0.1:1/s", p, "--duration", "1"],
                "at least 2",
            ),
            (
                vec!["doctor", "http://127.0.0.1:1/s", p, "--publish-rate", "max"],
                "0.5 to 1000",
            ),
            (
                vec!["doctor", "http://127.0.0.1:1/s", p, "extra"],
                "unexpected argument",
            ),
        ] {
            let e = doctor(&args).unwrap_err();
            assert!(e.0.contains(want), "{args:?}: {e}");
        }
    }
}
