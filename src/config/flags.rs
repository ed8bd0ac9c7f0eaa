//! The server's flags in one table, [`FLAGS`]: name, older alias, value, unit, default and
//! help. Reading the command line, the `SSEHUB_*` environment twins, a `--config` file,
//! the `--help` text and README's configuration table all go by it (a test reads README's
//! table back and compares), so a flag's facts are typed once.
//!
//! A default names the constant that holds it (`hub::DEFAULT_CLIENT_QUEUE_LEN`), never
//! the number again. Adding a flag is one row here and its reading in `Config::from_raw`.

use std::time::Duration;

use crate::auth::{DEFAULT_COOKIE, SubscribeAuth};
use crate::http::head::{DEFAULT_MAX_HEAD_BYTES, DEFAULT_MAX_HEADERS, DEFAULT_MAX_REQUEST_LINE};
use crate::hub::{DEFAULT_CLIENT_QUEUE_LEN, DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS};
use crate::port::Fsync;

use super::{
    DEFAULT_BATCH_WINDOW, DEFAULT_BIND, DEFAULT_GRACE, DEFAULT_HEARTBEAT, DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_INTERVAL_MS, DEFAULT_MAX_STREAMS_PER_TOKEN,
    DEFAULT_MIN_INTERVAL_MS, DEFAULT_REDIS_STREAM, DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRY_MS,
    DEFAULT_SEND_BUFFER, DEFAULT_TOKEN_EXPIRING_NOTICE, DEFAULT_WRITE_TIMEOUT,
};

/// One flag of the server.
#[derive(Debug)]
pub struct Flag {
    /// The name after `--`; its environment twin is [`Flag::env`].
    pub name: &'static str,
    /// An older name, still accepted as a flag and as an environment twin.
    pub alias: Option<&'static str>,
    /// The value's placeholder in the help text (`N`, `SECS`); `None`: a switch, which
    /// takes none (`--quiet`; its twin takes `1`/`true`/`yes`/`on` or the opposite).
    pub value: Option<&'static str>,
    /// The value's unit (`seconds`, `bytes`, `frames`); empty when it has none.
    pub unit: &'static str,
    /// What it is when not given.
    pub default: Default,
    /// Whether it may be given more than once (its twin then takes a comma-separated
    /// list).
    pub repeats: bool,
    /// What it does: the first line beside the flag in `--help`, further lines below it;
    /// README joins them.
    pub help: &'static str,
}

/// A flag's value when it is not given.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// A switch, off.
    Off,
    /// Not set: the feature it configures is off (the help says what that means).
    Unset,
    /// Text, as one would type it (an address, a name).
    Text(&'static str),
    /// A whole number, in the flag's unit.
    Number(u64),
    /// A duration, written in seconds.
    Seconds(Duration),
    /// A value a function gives (an enum's label).
    Label(fn() -> &'static str),
    /// Not one value: words saying what it depends on (`cores - 1, at least 1`).
    Said(&'static str),
}

impl Default {
    /// The value as one would type it after the flag; `None` for [`Default::Off`],
    /// [`Default::Unset`] and [`Default::Said`].
    pub fn value(self) -> Option<String> {
        match self {
            Default::Off | Default::Unset | Default::Said(_) => None,
            Default::Text(t) => Some(t.to_owned()),
            Default::Number(n) => Some(n.to_string()),
            Default::Seconds(d) => Some(d.as_secs_f64().to_string()),
            Default::Label(f) => Some(f().to_owned()),
        }
    }

    /// The default as `--help` shows it, in brackets; `None` when there is nothing to show.
    fn help(self) -> Option<String> {
        match self {
            Default::Said(words) => Some(words.to_owned()),
            other => other.value(),
        }
    }

    /// The default as README's table shows it.
    pub fn markdown(self) -> String {
        match self {
            Default::Off => String::new(),
            Default::Unset => "unset".to_owned(),
            Default::Text(_) | Default::Label(_) => {
                format!("`{}`", self.value().unwrap_or_default())
            }
            Default::Number(_) | Default::Seconds(_) => self.value().unwrap_or_default(),
            Default::Said(words) => words.to_owned(),
        }
    }
}

impl Flag {
    /// The environment variable twin: `max-connections` → `SSEHUB_MAX_CONNECTIONS`.
    pub fn env(&self) -> String {
        env_name(self.name)
    }

    /// The flag as the help text shows it: `--name VALUE`.
    pub fn usage(&self) -> String {
        match self.value {
            Some(v) => format!("--{} {v}", self.name),
            None => format!("--{}", self.name),
        }
    }
}

/// Environment variable twin of a flag name: `max-clients` → `SSEHUB_MAX_CLIENTS`.
pub fn env_name(flag: &str) -> String {
    format!("SSEHUB_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

/// The flag `name` names, by its name or its older alias.
pub fn find(name: &str) -> Option<&'static Flag> {
    FLAGS
        .iter()
        .find(|f| f.name == name || f.alias == Some(name))
}

/// The flag whose environment twin (or its alias's) is `env`.
pub fn find_env(env: &str) -> Option<&'static Flag> {
    FLAGS
        .iter()
        .find(|f| f.env() == env || f.alias.is_some_and(|a| env_name(a) == env))
}

/// A row of [`FLAGS`] with the fields most rows leave at their usual value.
const fn flag(
    name: &'static str,
    value: Option<&'static str>,
    unit: &'static str,
    default: Default,
    help: &'static str,
) -> Flag {
    Flag {
        name,
        alias: None,
        value,
        unit,
        default,
        repeats: false,
        help,
    }
}

/// A switch: no value, off unless given.
const fn switch(name: &'static str, help: &'static str) -> Flag {
    flag(name, None, "", Default::Off, help)
}

/// Every flag, in the order of `--help` and README.
pub const FLAGS: &[Flag] = &[
    flag(
        "bind",
        Some("ADDR"),
        "",
        Default::Text(DEFAULT_BIND),
        "listen address",
    ),
    flag(
        "queue",
        Some("N"),
        "frames",
        Default::Number(DEFAULT_CLIENT_QUEUE_LEN as u64),
        "frames queued per subscriber; when full, it is\n\
         evicted",
    ),
    flag(
        "heartbeat",
        Some("SECS"),
        "seconds",
        Default::Seconds(DEFAULT_HEARTBEAT),
        "heartbeat comment interval, 0 = off",
    ),
    switch("no-demo", "do not run the demo event producer"),
    flag(
        "min-interval-ms",
        Some("MS"),
        "ms",
        Default::Number(DEFAULT_MIN_INTERVAL_MS),
        "demo producer: shortest random pause",
    ),
    flag(
        "max-interval-ms",
        Some("MS"),
        "ms",
        Default::Number(DEFAULT_MAX_INTERVAL_MS),
        "demo producer: longest random pause",
    ),
    Flag {
        alias: Some("max-clients"),
        ..flag(
            "max-connections",
            Some("N"),
            "connections",
            Default::Number(DEFAULT_MAX_CONNECTIONS as u64),
            "concurrent TCP connections (streams and\n\
             requests); over it 503 + Retry-After",
        )
    },
    flag(
        "threads",
        Some("N"),
        "threads",
        Default::Said("cores - 1, at least 1"),
        "threads writing to subscribers; requests,\n\
         publishing and producers run on one more, so\n\
         by default one per core; 0: all on one thread",
    ),
    flag(
        "batch-window",
        Some("MS"),
        "ms",
        Default::Number(DEFAULT_BATCH_WINDOW.as_millis() as u64),
        "a writer that wrote this recently yields once\n\
         before its next write, to batch; 0: off",
    ),
    switch(
        "no-rest",
        "keep a task and a reactor registration per idle\n\
         subscriber (by default an idle stream rests\n\
         without them: about 1.3 KiB less each)",
    ),
    flag(
        "grace",
        Some("SECS"),
        "seconds",
        Default::Seconds(DEFAULT_GRACE),
        "shutdown: time for streams to flush",
    ),
    flag(
        "drain-spread",
        Some("SECS"),
        "seconds",
        Default::Said("4/5 of --grace"),
        "shutdown without a handover: streams end at\n\
         random times over this long (at most 10 ms\n\
         per stream, at most --grace); 0: all at once",
    ),
    flag(
        "write-timeout",
        Some("SECS"),
        "seconds",
        Default::Seconds(DEFAULT_WRITE_TIMEOUT),
        "deadline of one write to a subscriber; over it\n\
         the subscriber is evicted",
    ),
    Flag {
        alias: Some("header-timeout"),
        ..flag(
            "request-timeout",
            Some("SECS"),
            "seconds",
            Default::Seconds(DEFAULT_REQUEST_TIMEOUT),
            "deadline to receive a request, head and body;\n\
             over it 408",
        )
    },
    flag(
        "send-buffer",
        Some("BYTES"),
        "bytes",
        Default::Number(DEFAULT_SEND_BUFFER as u64),
        "kernel send buffer per connection (SO_SNDBUF),\n\
         0 = autotuning; a client that stops reading\n\
         fills up after a few hundred KiB, not 4 MiB, so\n\
         the server stops copying into it early",
    ),
    flag(
        "max-request-line",
        Some("BYTES"),
        "bytes",
        Default::Number(DEFAULT_MAX_REQUEST_LINE as u64),
        "longest request line; over it 414",
    ),
    flag(
        "max-head-bytes",
        Some("BYTES"),
        "bytes",
        Default::Number(DEFAULT_MAX_HEAD_BYTES as u64),
        "longest request head; over it 431",
    ),
    flag(
        "max-headers",
        Some("N"),
        "fields",
        Default::Number(DEFAULT_MAX_HEADERS as u64),
        "most header fields; over it 431",
    ),
    flag(
        "max-body",
        Some("BYTES"),
        "bytes",
        Default::Number(DEFAULT_MAX_BODY as u64),
        "largest request body; over it 413",
    ),
    flag(
        "publish-token",
        Some("TOKEN"),
        "",
        Default::Unset,
        "bearer token for POST /publish; unset (and no\n\
         --jwt-key): publishing is off",
    ),
    flag(
        "jwt-key",
        Some("KEY"),
        "",
        Default::Unset,
        "HS256 key of subscriber and publisher tokens\n\
         (JWT, Mercure claims), at least 32 bytes;\n\
         unset (and no --jwt-public-key-file): no\n\
         token is read",
    ),
    flag(
        "jwt-key-file",
        Some("PATH"),
        "",
        Default::Unset,
        "read the JWT key from this file (one trailing\n\
         newline dropped)",
    ),
    flag(
        "jwt-alg",
        Some("ALG"),
        "",
        Default::Text("HS256"),
        "the one algorithm tokens may be signed with:\n\
         HS256 (--jwt-key), RS256 or ES256\n\
         (--jwt-public-key-file); another alg: 401",
    ),
    flag(
        "jwt-public-key-file",
        Some("PEM"),
        "",
        Default::Unset,
        "path of the PEM public key (BEGIN PUBLIC\n\
         KEY) of RS256 or ES256 tokens",
    ),
    flag(
        "jwt-publisher-key",
        Some("KEY"),
        "",
        Default::Unset,
        "HS256 key of publisher tokens only (Mercure's\n\
         publisher_jwt); unset: --jwt-key",
    ),
    flag(
        "jwt-publisher-key-file",
        Some("PATH"),
        "",
        Default::Unset,
        "read the publisher key from this file",
    ),
    flag(
        "jwt-publisher-alg",
        Some("ALG"),
        "",
        Default::Text("HS256"),
        "the algorithm of publisher tokens: HS256\n\
         (--jwt-publisher-key), RS256 or ES256\n\
         (--jwt-publisher-public-key-file)",
    ),
    flag(
        "jwt-publisher-public-key-file",
        Some("PEM"),
        "",
        Default::Unset,
        "path of the PEM public key of RS256 or ES256\n\
         publisher tokens",
    ),
    flag(
        "jwt-subscriber-key",
        Some("KEY"),
        "",
        Default::Unset,
        "HS256 key of subscriber tokens only (Mercure's\n\
         subscriber_jwt); unset: --jwt-key",
    ),
    flag(
        "jwt-subscriber-key-file",
        Some("PATH"),
        "",
        Default::Unset,
        "read the subscriber key from this file",
    ),
    flag(
        "jwt-subscriber-alg",
        Some("ALG"),
        "",
        Default::Text("HS256"),
        "the algorithm of subscriber tokens: HS256\n\
         (--jwt-subscriber-key), RS256 or ES256\n\
         (--jwt-subscriber-public-key-file)",
    ),
    flag(
        "jwt-subscriber-public-key-file",
        Some("PEM"),
        "",
        Default::Unset,
        "path of the PEM public key of RS256 or ES256\n\
         subscriber tokens",
    ),
    flag(
        "jwt-issuer",
        Some("ISS"),
        "",
        Default::Unset,
        "the iss a Mercure 1.0 access token (typ\n\
         at+jwt) must carry; with --jwt-audience,\n\
         unset: access tokens are refused",
    ),
    flag(
        "jwt-audience",
        Some("AUD"),
        "",
        Default::Unset,
        "what a Mercure 1.0 access token's aud must\n\
         hold (a string or an array holding it)",
    ),
    flag(
        "jwt-cookie",
        Some("NAME"),
        "",
        Default::Text(DEFAULT_COOKIE),
        "cookie a subscriber's token is read from",
    ),
    flag(
        "subscribe-auth",
        Some("MODE"),
        "",
        Default::Label(|| SubscribeAuth::Optional.label()),
        "optional: streams without a token get public\n\
         events; required: 401 without a valid token",
    ),
    flag(
        "token-notice",
        Some("SECS"),
        "seconds",
        Default::Seconds(DEFAULT_TOKEN_EXPIRING_NOTICE),
        "a stream opened with a token gets a\n\
         token-expiring event this long before exp,\n\
         0 = off",
    ),
    flag(
        "max-streams-per-token",
        Some("N"),
        "streams",
        Default::Number(DEFAULT_MAX_STREAMS_PER_TOKEN as u64),
        "concurrent streams per token (by sub, else per\n\
         token); over it 429 + Retry-After, 0 = off",
    ),
    flag(
        "mercure-path",
        Some("PATH"),
        "",
        Default::Text(crate::mercure::DEFAULT_PATH),
        "where ssehub speaks Mercure (0.x and 1.0: subscribe\n\
         with topic/match*, form publish); off: nowhere",
    ),
    switch(
        "mercure-subscriptions",
        "Mercure's active subscriptions: the list under\n\
         PATH/subscriptions and a private event when a\n\
         subscriber comes and goes (off, as in Mercure)",
    ),
    flag(
        "history",
        Some("N"),
        "events",
        Default::Number(DEFAULT_HISTORY_EVENTS as u64),
        "events kept for Last-Event-ID replay, 0 = off",
    ),
    flag(
        "history-bytes",
        Some("BYTES"),
        "bytes",
        Default::Number(DEFAULT_HISTORY_BYTES as u64),
        "byte cap of the replay history",
    ),
    flag(
        "history-file",
        Some("PATH"),
        "",
        Default::Unset,
        "keep the history in this append-only file\n\
         across restarts; unset: in memory only",
    ),
    flag(
        "fsync",
        Some("WHEN"),
        "",
        Default::Label(|| Fsync::default().label()),
        "with --history-file: never, interval (once a\n\
         second) or always (before each publish is\n\
         answered)",
    ),
    flag(
        "retry-ms",
        Some("MS"),
        "ms",
        Default::Number(DEFAULT_RETRY_MS as u64),
        "reconnect delay sent to clients, jittered ±20%",
    ),
    switch("stdin", "publish each line of standard input as an event"),
    switch(
        "stdin-json",
        "with --stdin (implied): each line is a JSON\n\
         object like POST /publish",
    ),
    Flag {
        repeats: true,
        ..flag(
            "cors-origin",
            Some("ORIGIN"),
            "",
            Default::Unset,
            "allow this browser origin (repeatable, or *);\n\
             the environment twin takes a comma-separated list",
        )
    },
    flag(
        "redis",
        Some("URL"),
        "",
        Default::Unset,
        "share one Redis stream with other nodes:\n\
         redis[s]://[user:pass@]host:port[/db],\n\
         unix:///path or, through Sentinel,\n\
         redis[s]-sentinel://[user:pass@]host:port[,…]\n\
         /MASTER[/db][?redis_password=P]",
    ),
    flag(
        "redis-stream",
        Some("KEY"),
        "",
        Default::Text(DEFAULT_REDIS_STREAM),
        "the Redis stream key",
    ),
    flag(
        "redis-maxlen",
        Some("N"),
        "entries",
        Default::Said("--history"),
        "entries the shared stream keeps, approximately\n\
         (MAXLEN ~)",
    ),
    flag(
        "redis-ca",
        Some("FILE"),
        "",
        Default::Unset,
        "with rediss[-sentinel]://: trust the CA\n\
         certificates in FILE (PEM), not the system's roots",
    ),
    flag(
        "redis-cert",
        Some("FILE"),
        "",
        Default::Unset,
        "with rediss[-sentinel]://: send this client\n\
         certificate chain (PEM; with --redis-key)",
    ),
    flag(
        "redis-key",
        Some("FILE"),
        "",
        Default::Unset,
        "with rediss[-sentinel]://: the client\n\
         certificate's key (PEM)",
    ),
    flag(
        "redis-wait-replicas",
        Some("N"),
        "replicas",
        Default::Number(0),
        "answer a publish only once N replicas have it\n\
         (WAIT N, 1 s at most; fewer: 503): an answered\n\
         event then survives the master's loss",
    ),
    flag(
        "config",
        Some("FILE"),
        "",
        Default::Unset,
        "read SSEHUB_NAME=value lines from FILE\n\
         (systemd's EnvironmentFile= format); flags and\n\
         the environment win over it",
    ),
    switch("quiet", "log nothing"),
];

/// Column of the help text where a flag's description starts.
const HELP_COLUMN: usize = 29;
/// Widest line of the help text, in characters.
const HELP_WIDTH: usize = 80;

/// The help text, made from [`FLAGS`].
pub fn help() -> String {
    let mut out = format!(
        "ssehub {} — a small Server-Sent Events broadcast hub\n\n\
         Usage: ssehub [OPTIONS]\n\
         \x20      ssehub probe URL   (a health check: exit 0 on a 2xx answer)\n\n\
         Options (each also read from SSEHUB_<NAME>, e.g. SSEHUB_BIND, and from a\n\
         --config file; a flag wins over the environment, the environment over the\n\
         file):\n",
        env!("CARGO_PKG_VERSION")
    );
    for f in FLAGS {
        let usage = f.usage();
        let mut lines: Vec<String> = f.help.lines().map(str::to_owned).collect();
        if let (Some(d), Some(last)) = (f.default.help(), lines.last_mut()) {
            // On the last line if it fits, else on a line of its own.
            if HELP_COLUMN + last.chars().count() + d.chars().count() + 3 <= HELP_WIDTH {
                last.push_str(&format!(" [{d}]"));
            } else {
                lines.push(format!("[{d}]"));
            }
        }
        if let Some(old) = f.alias {
            lines.push(format!("(older name --{old}, still accepted)"));
        }
        // A usage too wide for the column gets a line of its own, the help below it.
        let wide = usage.len() >= HELP_COLUMN - 3;
        if wide {
            out.push_str(&format!("  {usage}\n"));
        }
        for (i, line) in lines.iter().enumerate() {
            let left = if i == 0 && !wide { usage.as_str() } else { "" };
            out.push_str(&format!("  {left:<w$} {line}\n", w = HELP_COLUMN - 3));
        }
    }
    out.push_str(&format!(
        "  {:<w$} print this help\n  {:<w$} print the version\n",
        "--help",
        "--version",
        w = HELP_COLUMN - 3
    ));
    out
}

/// README's configuration table, made from [`FLAGS`]: flag, environment twin, default,
/// unit, meaning.
pub fn markdown_table() -> String {
    let mut out = String::from("| flag | environment | default | unit | meaning |\n");
    out.push_str("|---|---|---|---|---|\n");
    for f in FLAGS {
        let mut meaning = f.help.lines().collect::<Vec<_>>().join(" ");
        if let Some(old) = f.alias {
            meaning.push_str(&format!(". Older name `--{old}` still accepted"));
        }
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            f.usage(),
            f.env(),
            f.default.markdown(),
            f.unit,
            meaning.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests;
