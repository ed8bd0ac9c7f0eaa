//! Configuration: command-line flags, their `SSEHUB_*` environment twins, a `--config`
//! file of those twins, and validation.
//!
//! Every flag is one row of [`FLAGS`] (`flags.rs`): the help text, the twins and README's
//! table come from it. Raw values (strings from flags, the environment and the file) are
//! kept apart from the validated [`Config`]: [`Config::from_args`] turns the first into
//! the second or names the flag that is wrong.
//!
//! **Precedence**, highest first: a flag, its environment twin, the `--config` file
//! (`file.rs`), the default. Each source replaces a value wholesale (a repeated flag's
//! list included); the file is named by `--config` or `SSEHUB_CONFIG`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::{DEFAULT_COOKIE, Key, SubscribeAuth};
use crate::http::head::HeadLimits;
use crate::hub::HubLimits;
use crate::port::Fsync;
use crate::redis::RedisUrl;

/// Default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Default heartbeat interval. **Unit:** seconds. Why: under the 30–60 s idle timeouts of
/// common proxies and load balancers, rare enough to cost nothing.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Default per-write deadline. **Unit:** seconds. Why: a client whose kernel buffer stays
/// full this long is not reading; its queue may not fill if events are rare.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default deadline to receive a whole request, head and body. **Unit:** seconds. Why:
/// bounds slowloris (a client trickling its request to hold a connection).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default shutdown grace period. **Unit:** seconds.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// Default cap on concurrent TCP connections (subscribers and requests alike). Why:
/// stays under the usual 20,000-descriptor limit with room for the listener and logs.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default time a refused connection is read and discarded before it closes (the
/// lingering close of RFC 9112 §9.6). **Unit:** seconds. **Why:** long enough for a client
/// still sending its request to see the answer instead of a reset, short enough that a
/// refused client cannot hold its connection slot for long.
pub const DEFAULT_LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// Default most bytes read and discarded in a lingering close. **Unit:** bytes. **Why:**
/// covers a body of several times `--max-body` in flight; past it the connection closes.
pub const DEFAULT_LINGER_BYTES: usize = 1 << 20;
/// Default kernel send buffer of each connection (`SO_SNDBUF`; the kernel doubles it).
/// **Unit:** bytes. **Why:** with the kernel's autotuning, a client that stops reading
/// soaks up to 4 MiB before its socket is full, and the server spends its CPU copying
/// that into a buffer nobody reads while the clients that do read wait (100 such
/// clients at 800 KiB/s each: 400 MB copied before the first eviction). 256 KiB keeps a
/// fast reader at full speed on loopback and LANs (256 KiB per round trip) and makes a
/// stuck one fill up, and be evicted through its queue, after a few hundred KiB. 0 leaves
/// the kernel's autotuning.
pub const DEFAULT_SEND_BUFFER: usize = 256 * 1024;
/// Default cap on a request body. **Unit:** bytes.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
/// Default `retry:` sent to each subscriber. **Unit:** milliseconds.
pub const DEFAULT_RETRY_MS: u32 = 3000;
/// Default time before a token's `exp` at which its stream gets a `token-expiring`
/// event. **Unit:** seconds. **Why:** long enough for a page to fetch a fresh token and
/// reconnect before the old stream ends.
pub const DEFAULT_TOKEN_EXPIRING_NOTICE: Duration = Duration::from_secs(30);
/// Default cap on concurrent streams per token (by `sub`, else per token). **Unit:**
/// streams. **Why:** a browser sharing one stream per token (`ssehub.js`) needs one;
/// a hundred leaves room for many browsers of one user, and stops a leaked token from
/// holding every connection.
pub const DEFAULT_MAX_STREAMS_PER_TOKEN: u32 = 100;
/// Default batching window of a busy writer (`--batch-window`): a writer whose last
/// write was this recent yields once before its next write, so that frames published
/// meanwhile join it. **Unit:** ms. **Why:** under fan-out load it carries more frames
/// per write; after a quiet spell a writer writes at once (latency). 0 turns it off.
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_millis(5);
/// Default bounds of the demo producer's random interval. **Unit:** milliseconds.
pub const DEFAULT_MIN_INTERVAL_MS: u64 = 500;
/// See [`DEFAULT_MIN_INTERVAL_MS`].
pub const DEFAULT_MAX_INTERVAL_MS: u64 = 2000;

/// Limits on what a client may send. Each is enforced before memory grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The request head: longest request line (over it `414`), longest head and most
    /// header fields (over either `431`). The parser's own limits, in their one home.
    pub head: HeadLimits,
    /// Largest request body. **Unit:** bytes. Over it: `413`.
    pub max_body: usize,
    /// Time to receive a whole request, head and body. Over it: `408`, close.
    pub request_timeout: Duration,
    /// Time one write to a subscriber may take. Over it: the subscriber is evicted.
    pub write_timeout: Duration,
    /// Most concurrent TCP connections. Over it: `503` with `Retry-After`, close.
    pub max_connections: usize,
    /// After a refusal: the longest the connection is read and discarded before it
    /// closes (a lingering close, so the client reads the answer, not a reset).
    pub linger_timeout: Duration,
    /// After a refusal: the most bytes read and discarded before the connection closes.
    pub linger_bytes: usize,
    /// Kernel send buffer per connection (`SO_SNDBUF`); 0: the kernel's autotuning.
    pub send_buffer: usize,
    /// A busy writer's batching window (see [`DEFAULT_BATCH_WINDOW`]); zero: off.
    pub batch_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head: HeadLimits::default(),
            max_body: DEFAULT_MAX_BODY,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            linger_timeout: DEFAULT_LINGER_TIMEOUT,
            linger_bytes: DEFAULT_LINGER_BYTES,
            send_buffer: DEFAULT_SEND_BUFFER,
            batch_window: DEFAULT_BATCH_WINDOW,
        }
    }
}

/// Validated configuration of a server.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Request and connection limits.
    pub limits: Limits,
    /// Queue and history sizes.
    pub hub: HubLimits,
    /// Heartbeat interval; `None` turns the heartbeat off.
    pub heartbeat: Option<Duration>,
    /// Run the demo event producer.
    pub demo: bool,
    /// Demo producer interval bounds, in milliseconds.
    pub demo_interval_ms: (u64, u64),
    /// Threads of the stream executor (the subscribers' writers); the request executor
    /// (accept, short routes, publishing, producers) runs on one more. 0: both
    /// executors on one thread.
    pub threads: usize,
    /// An idle stream rests without a task of its own (`--no-rest` turns it off).
    pub rest_idle: bool,
    /// How long shutdown waits for streams to flush.
    pub grace: Duration,
    /// How long a shutdown without a handover spreads the ends of the streams over
    /// (`--drain-spread`); `None`: four fifths of [`Config::grace`]. See
    /// [`Config::drain_spread`].
    pub drain_spread: Option<Duration>,
    /// Log nothing.
    pub quiet: bool,
    /// Bearer token for `POST /publish`; `None`: publishing is off.
    pub publish_token: Option<String>,
    /// The `retry:` value sent to subscribers (jittered ±20% per client).
    pub retry_ms: u32,
    /// Publish each line of standard input.
    pub stdin: bool,
    /// With `stdin`: each line is a JSON object in the `POST /publish` form.
    pub stdin_json: bool,
    /// Origins allowed by CORS (`*` for any); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// The durable history file; `None`: the history lives in memory only.
    pub history_file: Option<PathBuf>,
    /// When the history file is synced.
    pub fsync: Fsync,
    /// The key subscriber and publisher tokens are signed with (`--jwt-key`), unless the
    /// role has its own below; `None` and no key of the role: that role's tokens are not
    /// accepted (private events then reach nobody; only `--publish-token` publishes).
    pub jwt_key: Option<Key>,
    /// The key of publisher tokens (`--jwt-publisher-key`, Mercure's `publisher_jwt`);
    /// `None`: [`Config::jwt_key`]. See [`Config::publisher_key`].
    pub jwt_publisher_key: Option<Key>,
    /// The key of subscriber tokens (`--jwt-subscriber-key`, Mercure's `subscriber_jwt`);
    /// `None`: [`Config::jwt_key`]. See [`Config::subscriber_key`].
    pub jwt_subscriber_key: Option<Key>,
    /// The cookie a subscriber's token is read from.
    pub jwt_cookie: String,
    /// Whether every stream needs a valid token.
    pub subscribe_auth: SubscribeAuth,
    /// Several nodes on one Redis stream (`--redis`); `None`: this node alone.
    pub redis: Option<RedisConfig>,
    /// The path where ssehub speaks Mercure (`--mercure-path`); `None`: nowhere.
    pub mercure_path: Option<String>,
    /// Mercure's active subscriptions (`--mercure-subscriptions`): the list under
    /// `{mercure_path}/subscriptions` and the subscription events.
    pub mercure_subscriptions: bool,
    /// How long before its token's `exp` a stream gets a `token-expiring` event;
    /// `None`: never.
    pub token_expiring_notice: Option<Duration>,
    /// Most concurrent streams per token (by `sub`, else per token); 0: no cap.
    pub max_streams_per_token: u32,
}

/// The default Redis stream key.
pub const DEFAULT_REDIS_STREAM: &str = "ssehub:events";

pub use crate::port::RedisConfig;

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("limits", &self.limits)
            .field("hub", &self.hub)
            .field("heartbeat", &self.heartbeat)
            .field("demo", &self.demo)
            .field("threads", &self.threads)
            .field("grace", &self.grace)
            .field("drain_spread", &self.drain_spread)
            // Never print the token or the key.
            .field("publish_token", &self.publish_token.as_ref().map(|_| ".."))
            .field("history_file", &self.history_file)
            .field("fsync", &self.fsync)
            .field("jwt_key", &self.jwt_key)
            .field("jwt_publisher_key", &self.jwt_publisher_key)
            .field("jwt_subscriber_key", &self.jwt_subscriber_key)
            .field("jwt_cookie", &self.jwt_cookie)
            .field("subscribe_auth", &self.subscribe_auth)
            .field("redis", &self.redis)
            .field("mercure_path", &self.mercure_path)
            .field("mercure_subscriptions", &self.mercure_subscriptions)
            .field("token_expiring_notice", &self.token_expiring_notice)
            .field("max_streams_per_token", &self.max_streams_per_token)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: DEFAULT_BIND.parse().expect("valid constant"),
            limits: Limits::default(),
            hub: HubLimits::default(),
            heartbeat: Some(DEFAULT_HEARTBEAT),
            demo: true,
            demo_interval_ms: (DEFAULT_MIN_INTERVAL_MS, DEFAULT_MAX_INTERVAL_MS),
            threads: default_threads(),
            grace: DEFAULT_GRACE,
            drain_spread: None,
            quiet: false,
            rest_idle: true,
            publish_token: None,
            retry_ms: DEFAULT_RETRY_MS,
            stdin: false,
            stdin_json: false,
            cors_origins: Vec::new(),
            history_file: None,
            fsync: Fsync::default(),
            jwt_key: None,
            jwt_publisher_key: None,
            jwt_subscriber_key: None,
            jwt_cookie: DEFAULT_COOKIE.to_owned(),
            subscribe_auth: SubscribeAuth::Optional,
            redis: None,
            mercure_path: Some(crate::mercure::DEFAULT_PATH.to_owned()),
            mercure_subscriptions: false,
            token_expiring_notice: Some(DEFAULT_TOKEN_EXPIRING_NOTICE),
            max_streams_per_token: DEFAULT_MAX_STREAMS_PER_TOKEN,
        }
    }
}

/// One writer thread per core but the one the request executor takes (at least one):
/// with the request thread, one busy thread per core. A thread more than cores costs
/// context switches and splits the writers' batches: with two writer threads on two
/// cores, back-to-back publishing to 1,000 subscribers cost 0.83–1.33 CPU-µs per
/// delivered event (6–7 frames per write) against 0.59–0.97 (12–13 frames) with one.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// A configuration error: names the flag and what was expected. Exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the server.
    Run(Box<Config>),
    /// Print the help text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

pub use flags::{FLAGS, Flag, env_name, help};

/// Raw values: flag name → values as given (flags override the environment).
#[derive(Debug, Default)]
struct Raw(Vec<(&'static str, Vec<String>)>);

impl Raw {
    /// The last value given for the flag `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.all(name).last().map(String::as_str)
    }
    /// Every value given for the flag `name` (several for a repeated flag).
    fn all(&self, name: &str) -> &[String] {
        debug_assert!(
            FLAGS.iter().any(|f| f.name == name),
            "--{name} is not in the flag table"
        );
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[], |(_, v)| v.as_slice())
    }
    fn set(&mut self, name: &'static str, values: Vec<String>) {
        self.0.retain(|(n, _)| *n != name);
        self.0.push((name, values));
    }
}

impl Config {
    /// How long a shutdown without a handover spreads the ends of the streams over:
    /// `--drain-spread`, else four fifths of `--grace` (the last fifth leaves the last
    /// streams time to flush); never more than the grace period.
    pub fn drain_spread(&self) -> Duration {
        self.drain_spread
            .unwrap_or(self.grace * 4 / 5)
            .min(self.grace)
    }

    /// The key publisher tokens are verified with: the role's own
    /// (`--jwt-publisher-key`), else the shared one (`--jwt-key`). A token signed with
    /// the subscriber key does not publish when the keys differ.
    pub fn publisher_key(&self) -> Option<&Key> {
        self.jwt_publisher_key.as_ref().or(self.jwt_key.as_ref())
    }

    /// The key subscriber tokens are verified with: the role's own
    /// (`--jwt-subscriber-key`), else the shared one (`--jwt-key`).
    pub fn subscriber_key(&self) -> Option<&Key> {
        self.jwt_subscriber_key.as_ref().or(self.jwt_key.as_ref())
    }

    /// Parses flags (without the program name) and environment variables.
    ///
    /// `env` looks a variable up; pass `|k| std::env::var(k).ok()` for the real one.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] with a one-line message naming the flag.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub::config::{Command, Config};
    /// let cmd = Config::from_args(["--queue", "5", "--no-demo"], |_| None).unwrap();
    /// let Command::Run(cfg) = cmd else { panic!() };
    /// assert_eq!(cfg.hub.queue_len, 5);
    /// assert!(!cfg.demo);
    /// assert!(Config::from_args(["--queue", "0"], |_| None).is_err());
    /// ```
    pub fn from_args<I, S>(
        args: I,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Command, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut from_flags: Vec<(&'static str, Vec<String>)> = Vec::new();
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "-V" | "--version" => return Ok(Command::Version),
                _ => {}
            }
            let Some(body) = arg.strip_prefix("--") else {
                return Err(ConfigError(format!(
                    "unexpected argument '{arg}' (see --help)"
                )));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let Some(flag) = flags::find(name) else {
                return Err(ConfigError(format!("unknown flag '--{name}' (see --help)")));
            };
            let value = match (flag.value, inline) {
                (None, None) => "true".to_owned(),
                (_, Some(v)) => v,
                (Some(kind), None) => args
                    .next()
                    .ok_or_else(|| ConfigError(format!("--{name} needs a value ({kind})")))?,
            };
            match from_flags.iter_mut().find(|(n, _)| *n == flag.name) {
                Some((_, v)) => v.push(value),
                None => from_flags.push((flag.name, vec![value])),
            }
        }
        // Lowest first: the file, then the environment, then the flags.
        let mut raw = Raw::default();
        let file = match from_flags.iter().find(|(n, _)| *n == "config") {
            Some((_, v)) => v.last().cloned(),
            None => env(&env_name("config")),
        };
        if let Some(path) = file {
            for (flag, value) in read_file(&path)? {
                raw.set(flag.name, twin_values(flag, value));
            }
        }
        for f in FLAGS {
            let value = env(&f.env()).or_else(|| f.alias.and_then(|a| env(&env_name(a))));
            if let Some(v) = value {
                raw.set(f.name, twin_values(f, v));
            }
        }
        for (name, values) in from_flags {
            raw.set(name, values);
        }
        Config::from_raw(&raw).map(|c| Command::Run(Box::new(c)))
    }

    fn from_raw(raw: &Raw) -> Result<Config, ConfigError> {
        let d = Config::default();
        let bind = match raw.get("bind") {
            None => d.bind,
            Some(v) => parse_addr(v)?,
        };
        let head = HeadLimits {
            max_request_line: int(
                raw,
                "max-request-line",
                d.limits.head.max_request_line,
                64,
                1 << 20,
            )?,
            max_head_bytes: int(
                raw,
                "max-head-bytes",
                d.limits.head.max_head_bytes,
                256,
                1 << 20,
            )?,
            max_headers: int(raw, "max-headers", d.limits.head.max_headers, 1, 1000)?,
        };
        let limits = Limits {
            head,
            max_body: int(raw, "max-body", d.limits.max_body, 0, 64 << 20)?,
            request_timeout: secs(raw, "request-timeout", d.limits.request_timeout, false)?
                .unwrap_or(d.limits.request_timeout),
            write_timeout: secs(raw, "write-timeout", d.limits.write_timeout, false)?
                .unwrap_or(d.limits.write_timeout),
            batch_window: Duration::from_millis(int(
                raw,
                "batch-window",
                d.limits.batch_window.as_millis() as u64,
                0,
                1000,
            )?),
            max_connections: int(
                raw,
                "max-connections",
                d.limits.max_connections,
                1,
                1_000_000,
            )?,
            linger_timeout: d.limits.linger_timeout,
            linger_bytes: d.limits.linger_bytes,
            send_buffer: int(raw, "send-buffer", d.limits.send_buffer, 0, 64 << 20)?,
        };
        let hub = HubLimits {
            queue_len: int(raw, "queue", d.hub.queue_len, 1, 1_000_000)?,
            history_events: int(raw, "history", d.hub.history_events, 0, 10_000_000)?,
            history_bytes: int(raw, "history-bytes", d.hub.history_bytes, 0, 1 << 34)?,
        };
        let min = int(raw, "min-interval-ms", d.demo_interval_ms.0, 1, 86_400_000)?;
        let max = int(raw, "max-interval-ms", d.demo_interval_ms.1, 1, 86_400_000)?;
        if min > max {
            return Err(ConfigError(format!(
                "--min-interval-ms ({min}) must not exceed --max-interval-ms ({max})"
            )));
        }
        let publish_token = raw.get("publish-token").map(str::to_owned);
        if publish_token
            .as_deref()
            .is_some_and(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConfigError(
                "--publish-token: must be non-empty visible ASCII without spaces".into(),
            ));
        }
        let cors_origins: Vec<String> = raw.all("cors-origin").to_vec();
        for o in &cors_origins {
            if o != "*" && !(o.starts_with("http://") || o.starts_with("https://"))
                || o.bytes().any(|b| !b.is_ascii_graphic())
            {
                return Err(ConfigError(format!(
                    "--cors-origin: expected * or an origin like https://example.com, got '{o}'"
                )));
            }
        }
        let tokens = jwt::settings(raw)?;
        let grace = secs(raw, "grace", d.grace, true)?.unwrap_or_default();
        let drain_spread = match raw.get("drain-spread") {
            None => None,
            Some(_) => {
                let spread = secs(raw, "drain-spread", Duration::ZERO, true)?.unwrap_or_default();
                if spread > grace {
                    return Err(ConfigError(format!(
                        "--drain-spread: at most --grace ({} s), got {} s",
                        grace.as_secs_f64(),
                        spread.as_secs_f64()
                    )));
                }
                Some(spread)
            }
        };
        let redis = match raw.get("redis") {
            None => None,
            Some(u) => {
                let mut url =
                    RedisUrl::parse(u).map_err(|e| ConfigError(format!("--redis: {e}")))?;
                let path = |name: &str| raw.get(name).filter(|v| !v.is_empty()).map(PathBuf::from);
                let files = crate::redis::TlsFiles {
                    ca: path("redis-ca"),
                    cert: path("redis-cert"),
                    key: path("redis-key"),
                };
                if files != crate::redis::TlsFiles::default() {
                    match &mut url.tls {
                        Some(t) => **t = files,
                        None => {
                            return Err(ConfigError(
                                "--redis-ca, --redis-cert, --redis-key: only with rediss:// or \
                                 rediss-sentinel://"
                                    .into(),
                            ));
                        }
                    }
                }
                let stream = raw
                    .get("redis-stream")
                    .unwrap_or(DEFAULT_REDIS_STREAM)
                    .to_owned();
                if stream.is_empty()
                    || stream.len() > 256
                    || !stream.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(ConfigError(
                        "--redis-stream: 1 to 256 visible ASCII characters".into(),
                    ));
                }
                let maxlen = int(
                    raw,
                    "redis-maxlen",
                    hub.history_events.max(1),
                    1,
                    10_000_000,
                )?;
                let wait_replicas = int(raw, "redis-wait-replicas", 0, 0, 64)?;
                Some(RedisConfig {
                    url,
                    stream,
                    maxlen,
                    wait_replicas,
                })
            }
        };
        let mercure_path = mercure_path(raw.get("mercure-path"))?;
        let mercure_subscriptions = flag(raw, "mercure-subscriptions")?;
        if mercure_subscriptions && mercure_path.is_none() {
            return Err(ConfigError(
                "--mercure-subscriptions: needs the Mercure path (--mercure-path is off)".into(),
            ));
        }
        let stdin = flag(raw, "stdin")?;
        let stdin_json = flag(raw, "stdin-json")?;
        let history_file = match raw.get("history-file") {
            Some("") => return Err(ConfigError("--history-file: expected a path".into())),
            v => v.map(PathBuf::from),
        };
        let fsync = match raw.get("fsync") {
            None => d.fsync,
            Some(_) if history_file.is_none() => {
                return Err(ConfigError("--fsync: only with --history-file".into()));
            }
            Some(v) => v
                .parse()
                .map_err(|e| ConfigError(format!("--fsync: {e}")))?,
        };
        if history_file.is_some() && redis.is_some() {
            return Err(ConfigError(
                "--history-file: not with --redis (the shared stream keeps the history)".into(),
            ));
        }
        Ok(Config {
            bind,
            limits,
            hub,
            heartbeat: secs(raw, "heartbeat", d.heartbeat.unwrap_or_default(), true)?,
            demo: !flag(raw, "no-demo")?,
            demo_interval_ms: (min, max),
            threads: int(raw, "threads", d.threads, 0, 1024)?,
            grace,
            drain_spread,
            quiet: flag(raw, "quiet")?,
            rest_idle: !flag(raw, "no-rest")?,
            publish_token,
            retry_ms: int(raw, "retry-ms", d.retry_ms, 0, 86_400_000)?,
            stdin: stdin || stdin_json,
            stdin_json,
            cors_origins,
            history_file,
            fsync,
            jwt_key: tokens.shared,
            jwt_publisher_key: tokens.publisher,
            jwt_subscriber_key: tokens.subscriber,
            jwt_cookie: tokens.cookie,
            subscribe_auth: tokens.subscribe_auth,
            redis,
            mercure_path,
            mercure_subscriptions,
            token_expiring_notice: secs(raw, "token-notice", DEFAULT_TOKEN_EXPIRING_NOTICE, true)?,
            max_streams_per_token: int(
                raw,
                "max-streams-per-token",
                DEFAULT_MAX_STREAMS_PER_TOKEN,
                0,
                1_000_000,
            )?,
        })
    }
}

/// Paths the native routes take: the Mercure path may not be one of them.
const NATIVE_PATHS: [&str; 7] = [
    "/",
    "/stream",
    "/publish",
    "/health",
    "/stats",
    "/metrics",
    "/ssehub.js",
];

/// `--mercure-path`: `off`, or an absolute path of visible ASCII that no native route
/// takes.
fn mercure_path(given: Option<&str>) -> Result<Option<String>, ConfigError> {
    let path = match given {
        None => crate::mercure::DEFAULT_PATH,
        Some("off") => return Ok(None),
        Some(p) => p,
    };
    let ok = path.starts_with('/')
        && path.len() > 1
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
        && !NATIVE_PATHS.contains(&path);
    if ok {
        Ok(Some(path.to_owned()))
    } else {
        Err(ConfigError(format!(
            "--mercure-path: expected off or a path like /.well-known/mercure (not a native route), got '{path}'"
        )))
    }
}

/// The values of an environment twin (or a file line): a comma-separated list for a
/// flag that repeats, else the one value.
fn twin_values(flag: &Flag, v: String) -> Vec<String> {
    if flag.repeats {
        v.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        vec![v]
    }
}

/// The settings of a `--config` file, each with its flag. `SSEHUB_*` names must be
/// flags' twins (`SSEHUB_CONFIG` excepted: a file does not name another); other names
/// are skipped, for a file shared with other programs. Every error is one line naming
/// the file (and the line).
fn read_file(path: &str) -> Result<Vec<(&'static Flag, String)>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("--config: cannot read '{path}': {e}")))?;
    let at = |line: usize, what: &str| ConfigError(format!("--config: {path} line {line}: {what}"));
    let mut out = Vec::new();
    for a in file::parse(&text).map_err(|e| at(e.line, &e.what))? {
        if !a.name.starts_with("SSEHUB_") {
            continue;
        }
        match flags::find_env(&a.name) {
            Some(f) if f.name == "config" => {
                return Err(at(
                    a.line,
                    "SSEHUB_CONFIG: a config file cannot name another",
                ));
            }
            Some(f) => out.push((f, a.value)),
            None => {
                return Err(at(
                    a.line,
                    &format!("unknown setting {} (see --help)", a.name),
                ));
            }
        }
    }
    Ok(out)
}

fn parse_addr(v: &str) -> Result<SocketAddr, ConfigError> {
    let err = || {
        ConfigError(format!(
            "--bind: expected HOST:PORT like 127.0.0.1:8080, got '{v}'"
        ))
    };
    if let Ok(a) = v.parse() {
        return Ok(a);
    }
    v.to_socket_addrs()
        .map_err(|_| err())?
        .next()
        .ok_or_else(err)
}

fn int<T>(raw: &Raw, name: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(v) = raw.get(name) else {
        return Ok(default);
    };
    match v.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(ConfigError(format!(
            "--{name}: expected a whole number from {min} to {max}, got '{v}'"
        ))),
    }
}

/// Seconds, decimals allowed. With `zero_is_off`, `0` means `None`.
fn secs(
    raw: &Raw,
    name: &str,
    default: Duration,
    zero_is_off: bool,
) -> Result<Option<Duration>, ConfigError> {
    let Some(v) = raw.get(name) else {
        return Ok(Some(default));
    };
    let n: f64 = v.trim().parse().unwrap_or(f64::NAN);
    let lowest = if zero_is_off { 0.0 } else { 0.001 };
    if !(n >= lowest && n <= 86_400.0) {
        return Err(ConfigError(format!(
            "--{name}: expected seconds from {lowest} to 86400, got '{v}'"
        )));
    }
    if n == 0.0 {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs_f64(n)))
}

fn flag(raw: &Raw, name: &str) -> Result<bool, ConfigError> {
    match raw.get(name).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(false),
        Some("" | "1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(v) => Err(ConfigError(format!(
            "--{name}: expected true or false, got '{v}'"
        ))),
    }
}

pub mod file;
pub mod flags;
mod jwt;
#[cfg(test)]
mod tests;
