//! Hand-parsed command-line flags, validated into a [`Config`]. The flags themselves,
//! with their help text, are one table in [`flags`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::http::{BaseUrl, parse_url};

mod cluster;
mod doctor;
mod flags;

pub use cluster::{Cluster, PublishTo};
pub use doctor::Doctor;
pub use flags::help;

/// The event type the tool publishes and recognises as its own.
pub const EVENT_NAME: &str = "soak";
/// Largest `--body-size`. **Unit:** bytes.
pub const MAX_BODY_SIZE: usize = 1 << 20;
/// Shortest `--duration`: the run needs room for its drain phase. **Unit:** seconds.
pub const MIN_DURATION_SECS: f64 = 3.0;

/// How fast to publish.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    /// Events per second.
    PerSec(f64),
    /// The next request as soon as the previous answer arrived.
    Max,
}

/// How events are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// ssehub's `POST /publish` with a JSON object and a bearer token; answers `200`.
    Ssehub,
    /// nchan's publisher location: the data as the raw body; any `2xx` is accepted.
    Nchan,
}

/// How the tool stops the server it runs for a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopSignal {
    /// `SIGTERM`: a graceful shutdown, which must exit 0.
    Term,
    /// `SIGKILL`: a crash.
    Kill,
    /// `SIGUSR2`: ssehub hands its streams to a successor it starts; the tool follows
    /// the new pid, and no subscriber may reconnect, miss or repeat an event.
    Usr2,
    /// `SIGUSR2` with a successor that fails at start (the tool sets ssehub's test hook
    /// `SSEHUB_HANDOVER_EXE=/bin/false`): the old process must serve on.
    Usr2Fail,
}

impl StopSignal {
    /// Whether it asks for a handover rather than a stop.
    pub fn is_upgrade(self) -> bool {
        matches!(self, StopSignal::Usr2 | StopSignal::Usr2Fail)
    }
}

/// Restart mode: the server the tool runs itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerCmd {
    /// The command, run as `sh -c 'exec CMD'`; it must listen on `--url`'s address.
    pub cmd: String,
    /// When to restart it, counted from the start of the run; `None`: it is only
    /// started and stopped.
    #[serde(serialize_with = "opt_secs")]
    pub restart_after: Option<Duration>,
    /// How it is stopped for the restart.
    pub restart_signal: StopSignal,
    /// Restarts in the run: at `restart_after`, twice that, … (at least 1).
    pub restarts: u32,
    /// Where its standard output and error go (appended); `None`: discarded.
    pub log: Option<String>,
}

/// The drain phase at the end of a run of `duration` (see `run.rs`).
pub fn tail_of(duration: Duration) -> Duration {
    (duration / 10).clamp(Duration::from_millis(1500), Duration::from_secs(5))
}

/// Publisher settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Publish {
    /// Publish rate.
    pub rate: Rate,
    /// Bearer token (not serialized).
    #[serde(skip)]
    pub token: Option<String>,
    /// Pad each event's data to this many bytes.
    pub body_size: usize,
    /// Every Nth event is published private (0: none are).
    pub private_every: u64,
    /// Topic to publish to.
    pub topic: String,
    /// Where to publish (the URL as given or derived from `--url`).
    pub url: String,
    /// Connection address of `--publish-url`; `None`: the next `--url`/`--sources`
    /// destination, as for subscribers.
    #[serde(skip)]
    pub addr: Option<SocketAddr>,
    /// `Host` header of `url`.
    #[serde(skip)]
    pub host: String,
    /// Request target of `url`.
    #[serde(skip)]
    pub target: String,
    /// Request format.
    pub style: Style,
    /// Publishing starts once every initial client connected.
    pub wait_connected: bool,
}

/// A validated run configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The URL as given.
    pub url: String,
    /// The parsed base URL.
    #[serde(skip)]
    pub base: BaseUrl,
    /// Destination addresses, used round-robin.
    #[serde(skip)]
    pub dests: Vec<SocketAddr>,
    /// Steady subscribers.
    pub clients: usize,
    /// Subscribed topics (empty: all).
    pub topics: Vec<String>,
    /// New connections per second (0: unlimited).
    pub connect_rate: f64,
    /// Destination addresses to spread over.
    pub sources: u8,
    /// Source addresses the subscribers bind, round-robin (`--bind-sources`; empty: the
    /// kernel picks).
    pub bind_sources: Vec<std::net::Ipv4Addr>,
    /// Processes the subscribers are spread over (`--processes`; this one included).
    pub processes: usize,
    /// Run time and hard cap.
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// Progress interval; zero: off.
    #[serde(serialize_with = "secs")]
    pub progress: Duration,
    /// Publisher settings; `None` with `--no-publish`.
    pub publish: Option<Publish>,
    /// Clients that never read.
    pub slow: usize,
    /// Churn clients per second.
    pub churn: f64,
    /// Reconnecting clients per second.
    pub reconnect: f64,
    /// Server process to sample.
    pub server_pid: Option<u32>,
    /// RSS growth threshold. **Unit:** KiB.
    pub max_rss_growth_kib: Option<u64>,
    /// Open fd growth threshold.
    pub max_fd_growth: Option<u64>,
    /// Path subscribers request (under the URL's prefix).
    pub subscribe_path: String,
    /// Subscriber token, sent as `?authorization=` (not serialized).
    #[serde(skip)]
    pub subscribe_token: Option<String>,
    /// Idle mode: no publishing, no event expected.
    pub idle: bool,
    /// Executor threads; `None`: one per CPU. (The report's `tool.threads` says how many
    /// ran.)
    #[serde(skip)]
    pub threads: Option<usize>,
    /// Several nodes, expected outages, extra processes (`args/cluster.rs`).
    #[serde(flatten)]
    pub cluster: Cluster,
    /// Restart mode (`--server-cmd`).
    pub server: Option<ServerCmd>,
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run a soak test.
    Run(Box<Config>),
    /// `doctor URL`: what the path to the hub does to a stream.
    Doctor(Box<Doctor>),
    /// Print the help text.
    Help,
}

/// A usage error, shown as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Flag values as given, before the checks that involve more than one flag.
#[derive(Debug)]
struct Raw {
    url: String,
    clients: usize,
    topics: Vec<String>,
    connect_rate: f64,
    sources: u8,
    bind_sources: u16,
    processes: usize,
    duration: Option<Duration>,
    progress: Duration,
    publish_rate: Option<Rate>,
    token: Option<String>,
    body_size: usize,
    private_every: u64,
    publish_topic: Option<String>,
    no_publish: bool,
    slow: usize,
    churn: f64,
    reconnect: f64,
    server_pid: Option<u32>,
    max_rss_growth_kib: Option<u64>,
    max_fd_growth: Option<u64>,
    subscribe_path: String,
    subscribe_token: Option<String>,
    publish_url: Option<String>,
    style: Option<Style>,
    wait_connected: bool,
    idle: bool,
    threads: Option<usize>,
    cluster: cluster::ClusterRaw,
    server_cmd: Option<String>,
    restart_after: Option<Duration>,
    restart_signal: Option<StopSignal>,
    restarts: Option<u32>,
    server_log: Option<String>,
    /// The names of the flags given, in order (`doctor` refuses the ones it ignores).
    set: Vec<&'static str>,
}

impl Default for Raw {
    /// The defaults `--help` states.
    fn default() -> Self {
        Raw {
            url: "http://127.0.0.1:8080".to_string(),
            clients: 100,
            topics: Vec::new(),
            connect_rate: 0.0,
            sources: 1,
            bind_sources: 0,
            processes: 1,
            duration: None,
            progress: Duration::from_secs(5),
            publish_rate: None,
            token: None,
            body_size: 0,
            private_every: 0,
            publish_topic: None,
            no_publish: false,
            slow: 0,
            churn: 0.0,
            reconnect: 0.0,
            server_pid: None,
            max_rss_growth_kib: None,
            max_fd_growth: None,
            subscribe_path: "/stream".to_string(),
            subscribe_token: None,
            publish_url: None,
            style: None,
            wait_connected: false,
            idle: false,
            threads: None,
            cluster: cluster::ClusterRaw::default(),
            server_cmd: None,
            restart_after: None,
            restart_signal: None,
            restarts: None,
            server_log: None,
            set: Vec::new(),
        }
    }
}

/// Parses the arguments (without the program name).
pub fn parse<I, S>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into).peekable();
    if args.peek().is_some_and(|a| a == "doctor") {
        args.next();
        let url = match args.peek() {
            Some(u) if !u.starts_with('-') => args.next().unwrap_or_default(),
            Some(h) if h == "-h" || h == "--help" => return Ok(Command::Help),
            _ => return Err(UsageError("doctor needs a URL (see --help)".into())),
        };
        return match flags::read(args)? {
            Some(raw) => doctor::validate(url, raw).map(|d| Command::Doctor(Box::new(d))),
            None => Ok(Command::Help),
        };
    }
    match flags::read(args)? {
        Some(raw) => raw.into_config().map(|c| Command::Run(Box::new(c))),
        None => Ok(Command::Help),
    }
}

impl Raw {
    /// The checks that involve more than one flag, and the values derived from them.
    fn into_config(self) -> Result<Config, UsageError> {
        let Raw {
            url,
            clients,
            topics,
            connect_rate,
            sources,
            bind_sources,
            processes,
            duration,
            progress,
            publish_rate,
            token,
            body_size,
            private_every,
            publish_topic,
            no_publish,
            slow,
            churn,
            reconnect,
            server_pid,
            max_rss_growth_kib,
            max_fd_growth,
            subscribe_path,
            subscribe_token,
            publish_url,
            style,
            wait_connected,
            idle,
            threads,
            cluster,
            server_cmd,
            restart_after,
            restart_signal,
            restarts,
            server_log,
            set: _,
        } = self;
        let duration = duration.ok_or_else(|| UsageError("--duration is required".into()))?;
        if duration.as_secs_f64() < MIN_DURATION_SECS {
            return Err(UsageError(format!(
                "--duration: at least {MIN_DURATION_SECS} seconds"
            )));
        }
        if clients > 1_000_000 || slow > 1_000_000 {
            return Err(UsageError("--clients/--slow: at most 1000000".into()));
        }
        let base = parse_url(&url).map_err(|e| UsageError(e.to_string()))?;
        let dests = destinations(&base, sources)?;
        let explicit_publish_url = publish_url.is_some();
        let server = server_cmd_of(
            server_cmd,
            (restart_after, restarts),
            restart_signal,
            server_log,
            duration,
            (server_pid.is_some(), slow > 0),
        )?;
        let publish = if no_publish || idle {
            let flag = if idle { "--idle" } else { "--no-publish" };
            if publish_rate.is_some()
                || publish_topic.is_some()
                || token.is_some()
                || body_size > 0
                || private_every > 0
                || publish_url.is_some()
                || style.is_some()
                || wait_connected
            {
                return Err(UsageError(format!(
                    "{flag} conflicts with --publish-rate/--publish-topic/--token/--body-size/--private-every/--publish-url/--publish-style/--wait-connected"
                )));
            }
            None
        } else {
            let topic = publish_topic
                .or_else(|| topics.first().cloned())
                .unwrap_or_else(|| "soak".to_string());
            if !topics.is_empty() && !topics.contains(&topic) {
                return Err(UsageError(format!(
                    "--publish-topic {topic} is not among the subscribed --topic values: subscribers would see nothing"
                )));
            }
            let explicit = publish_url.is_some();
            let url =
                publish_url.unwrap_or_else(|| format!("{}/publish", url.trim_end_matches('/')));
            let target = parse_url(&url)
                .map_err(|e| UsageError(e.0.replacen("--url", "--publish-url", 1)))?;
            Some(Publish {
                rate: publish_rate.unwrap_or(Rate::PerSec(100.0)),
                token,
                body_size,
                private_every,
                topic,
                addr: explicit.then_some(target.addr),
                host: target.host,
                target: if target.prefix.is_empty() {
                    "/".to_string()
                } else {
                    target.prefix
                },
                url,
                style: style.unwrap_or(Style::Ssehub),
                wait_connected,
            })
        };
        let cluster = cluster::validate(
            cluster,
            &base,
            &url,
            sources,
            publish.is_some(),
            explicit_publish_url,
        )?;
        if server.is_some() && cluster.several() {
            return Err(UsageError(
                "--server-cmd runs one server: it conflicts with several --url".into(),
            ));
        }
        if processes > 1 && publish.is_some() {
            return Err(UsageError(
                "--processes needs --idle or --no-publish (one publisher, outside them)".into(),
            ));
        }
        if processes > clients.max(1) {
            return Err(UsageError(format!(
                "--processes {processes} is more than --clients {clients}"
            )));
        }
        Ok(Config {
            url,
            base,
            dests,
            clients,
            topics,
            connect_rate,
            sources,
            bind_sources: source_addresses(bind_sources),
            processes,
            duration,
            progress,
            publish,
            slow,
            churn,
            reconnect,
            server_pid,
            max_rss_growth_kib,
            max_fd_growth,
            subscribe_path,
            subscribe_token,
            idle,
            threads,
            cluster,
            server,
        })
    }
}

/// Restart mode's flags, checked against the run's `duration` and the flags it
/// conflicts with (`pid_or_slow`: whether `--server-pid`, `--slow` were given).
fn server_cmd_of(
    cmd: Option<String>,
    (restart_after, restarts): (Option<Duration>, Option<u32>),
    signal: Option<StopSignal>,
    log: Option<String>,
    duration: Duration,
    (pid, slow): (bool, bool),
) -> Result<Option<ServerCmd>, UsageError> {
    let Some(cmd) = cmd else {
        if restart_after.is_some() || signal.is_some() || log.is_some() || restarts.is_some() {
            return Err(UsageError(
                "--restart-after/--restart-signal/--restarts/--server-log need --server-cmd".into(),
            ));
        }
        return Ok(None);
    };
    if pid {
        return Err(UsageError(
            "--server-pid conflicts with --server-cmd (the tool runs that server itself)".into(),
        ));
    }
    let count = restarts.unwrap_or(1);
    if count == 0 || (restarts.is_some() && restart_after.is_none()) {
        return Err(UsageError(
            "--restarts: at least 1, with --restart-after (the first one's time)".into(),
        ));
    }
    if let Some(after) = restart_after {
        // The server must be back well before the drain phase (after the last restart).
        let latest = duration.saturating_sub(tail_of(duration) + Duration::from_secs(2));
        if after.is_zero() || after * count > latest {
            return Err(UsageError(format!(
                "--restart-after: above 0 and, times --restarts, at most {:.1} s for this --duration (the restarted server needs time before the drain phase)",
                latest.as_secs_f64()
            )));
        }
        if slow {
            return Err(UsageError(
                "--slow conflicts with --restart-after (a restart closes them anyway)".into(),
            ));
        }
    }
    Ok(Some(ServerCmd {
        cmd,
        restart_after,
        restart_signal: signal.unwrap_or(StopSignal::Term),
        restarts: count,
        log,
    }))
}

/// The source addresses of `--bind-sources K`: 127.1.0.1, 127.1.0.2, … (K of them, the
/// last octet 1..=254, then the third octet up), all in 127.0.0.0/8, none of them the
/// usual 127.0.0.1, so that each adds its own ~28,000 ephemeral ports per destination.
pub(crate) fn source_addresses(k: u16) -> Vec<std::net::Ipv4Addr> {
    (0..k)
        .map(|i| std::net::Ipv4Addr::new(127, 1, (i / 254) as u8, (i % 254 + 1) as u8))
        .collect()
}

/// The destination addresses for `--sources K`: the URL's address and the next K-1
/// addresses of 127.0.0.0/8 (IPv4 loopback only).
fn destinations(base: &BaseUrl, sources: u8) -> Result<Vec<SocketAddr>, UsageError> {
    if sources == 1 {
        return Ok(vec![base.addr]);
    }
    let IpAddr::V4(v4) = base.addr.ip() else {
        return Err(UsageError(
            "--sources above 1 needs an IPv4 loopback --url".into(),
        ));
    };
    let [a, b, c, d] = v4.octets();
    if u16::from(d) + u16::from(sources) - 1 > 254 {
        return Err(UsageError(format!(
            "--sources {sources}: {v4} + {} leaves 127.0.0.0/8's .254",
            sources - 1
        )));
    }
    Ok((0..sources)
        .map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d + i)), base.addr.port()))
        .collect())
}

#[cfg(test)]
mod tests;
