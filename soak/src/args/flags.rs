//! The flags: one table, [`SECTIONS`], lists every flag with its value, its help text
//! and what it sets. Reading the arguments and the help text both go by it, so the two
//! cannot drift apart.

use std::str::FromStr;
use std::time::Duration;

use super::{MAX_BODY_SIZE, Rate, Raw, StopSignal, Style, UsageError};

/// Applies a flag's value (`""` for a switch); the error is the message after `--NAME: `.
type Setter = fn(&mut Raw, &str) -> Result<(), String>;

/// What a flag does.
enum Action {
    /// Sets its value.
    Set(Setter),
    /// Asks for the help text (as `-h` does).
    Help,
}

/// One flag of the table.
struct Flag {
    /// The name after `--`.
    name: &'static str,
    /// The name of its value in the help text; `None`: a switch, which takes none.
    value: Option<&'static str>,
    /// Its help text: the first line beside the flag, the others below it.
    help: &'static str,
    /// What it does.
    action: Action,
}

impl Flag {
    /// The flag as the help text shows it: `--name VALUE`.
    fn usage(&self) -> String {
        let short = match self.action {
            Action::Help => "-h, ",
            Action::Set(_) => "",
        };
        match self.value {
            Some(v) => format!("{short}--{} {v}", self.name),
            None => format!("{short}--{}", self.name),
        }
    }
}

/// Every flag, in the sections and the order of the help text.
const SECTIONS: &[(&str, &[Flag])] = &[
    (
        "Target",
        &[
            Flag {
                name: "url",
                value: Some("URL"),
                help: "base URL, http:// on 127.0.0.0/8 or [::1] only\n\
                       (default http://127.0.0.1:8080). Repeat it for\n\
                       several nodes: subscribers of every kind are spread\n\
                       round-robin over them, a reconnecting client resumes\n\
                       on another node, and all must see one order of\n\
                       events (order_mismatches fail the run)",
                action: Action::Set(|r, v| r.cluster.add_url(&mut r.url, v)),
            },
            Flag {
                name: "sources",
                value: Some("K"),
                help: "spread connections over K destination addresses\n\
                       127.0.0.x, x = URL's last octet .. +K-1 (default 1);\n\
                       the server must listen on 0.0.0.0 or those addresses",
                action: Action::Set(|r, v| {
                    let what = "a whole number from 1 to 254";
                    r.sources = num(v, what)?;
                    if r.sources == 0 || r.sources == 255 {
                        return Err(expected(what, v));
                    }
                    Ok(())
                }),
            },
            Flag {
                name: "bind-sources",
                value: Some("K"),
                help: "subscribers bind K source addresses 127.1.0.1, ..., in\n\
                       turn (IP_BIND_ADDRESS_NO_PORT: each adds ~28,000 ports\n\
                       per destination); 0 = the kernel picks (default 0)",
                action: Action::Set(|r, v| {
                    r.bind_sources = num(v, "a whole number from 0 to 8192")?;
                    if r.bind_sources > 8192 {
                        return Err(expected("a whole number from 0 to 8192", v));
                    }
                    Ok(())
                }),
            },
            Flag {
                name: "processes",
                value: Some("P"),
                help: "spread the subscribers over P processes of this tool\n\
                       (one command; needs --idle or --no-publish); the\n\
                       report lists each child's (default 1)",
                action: Action::Set(|r, v| {
                    r.processes = num(v, "a whole number from 1 to 64")?;
                    if !(1..=64).contains(&r.processes) {
                        return Err(expected("a whole number from 1 to 64", v));
                    }
                    Ok(())
                }),
            },
            Flag {
                name: "server-pid",
                value: Some("PID"),
                help: "sample the server's RSS, CPU time and open fds",
                action: Action::Set(|r, v| {
                    r.server_pid = Some(num(v, "a process id")?);
                    Ok(())
                }),
            },
            Flag {
                name: "subscribe-path",
                value: Some("PATH"),
                help: "subscribers GET this path under the URL's prefix\n\
                       (default /stream)",
                action: Action::Set(|r, v| {
                    let ok = v.starts_with('/')
                        && v.len() <= 1024
                        && v.bytes()
                            .all(|b| b.is_ascii_graphic() && b != b'#' && b != b'?');
                    if !ok {
                        return Err(expected("a path starting with / (no query)", v));
                    }
                    r.subscribe_path = v.to_string();
                    Ok(())
                }),
            },
            Flag {
                name: "subscribe-token",
                value: Some("T"),
                help: "subscribers send this token (ssehub: ?authorization=T),\n\
                       e.g. a JWT that may read --private-every events",
                action: Action::Set(|r, v| {
                    r.subscribe_token = Some(v.to_string());
                    Ok(())
                }),
            },
        ],
    ),
    (
        "Subscribers",
        &[
            Flag {
                name: "clients",
                value: Some("N"),
                help: "subscribers that stay connected (default 100)",
                action: Action::Set(|r, v| num(v, "a whole number").map(|n| r.clients = n)),
            },
            Flag {
                name: "topic",
                value: Some("T"),
                help: "subscribe to topic T (repeatable; none: all topics)",
                action: Action::Set(|r, v| {
                    if v.is_empty() || v.len() > 128 {
                        return Err(expected("1 to 128 characters", v));
                    }
                    r.topics.push(v.to_string());
                    Ok(())
                }),
            },
            Flag {
                name: "connect-rate",
                value: Some("R"),
                help: "new connections per second, 0 = unlimited (default 0)",
                action: Action::Set(|r, v| rate(v).map(|x| r.connect_rate = x)),
            },
            Flag {
                name: "slow",
                value: Some("K"),
                help: "clients that never read; they must be evicted (default 0)",
                action: Action::Set(|r, v| num(v, "a whole number").map(|n| r.slow = n)),
            },
            Flag {
                name: "churn",
                value: Some("R"),
                help: "clients per second that connect, read briefly, hang up",
                action: Action::Set(|r, v| rate(v).map(|x| r.churn = x)),
            },
            Flag {
                name: "reconnect",
                value: Some("R"),
                help: "clients per second that hang up and resume with\n\
                       Last-Event-ID; they must see no gap a reset event\n\
                       did not announce",
                action: Action::Set(|r, v| rate(v).map(|x| r.reconnect = x)),
            },
        ],
    ),
    (
        "Publishing (one keep-alive connection, POST /publish)",
        &[
            Flag {
                name: "publish-rate",
                value: Some("R|max"),
                help: "events per second, or back to back (default 100)",
                action: Action::Set(|r, v| {
                    r.publish_rate = Some(if v == "max" {
                        Rate::Max
                    } else {
                        let x = rate(v)?;
                        if x == 0.0 {
                            return Err("must be above 0 (or use --no-publish)".into());
                        }
                        Rate::PerSec(x)
                    });
                    Ok(())
                }),
            },
            Flag {
                name: "token",
                value: Some("T"),
                help: "bearer token for /publish",
                action: Action::Set(|r, v| {
                    r.token = Some(v.to_string());
                    Ok(())
                }),
            },
            Flag {
                name: "body-size",
                value: Some("BYTES"),
                help: "pad each event's data to this size (default 0)",
                action: Action::Set(|r, v| {
                    r.body_size = num(v, "a size in bytes")?;
                    if r.body_size > MAX_BODY_SIZE {
                        return Err(format!("at most {MAX_BODY_SIZE} bytes, got '{v}'"));
                    }
                    Ok(())
                }),
            },
            Flag {
                name: "private-every",
                value: Some("N"),
                help: "mark every Nth event \"private\": true (default 0: none)",
                action: Action::Set(|r, v| {
                    r.private_every = num(v, "a whole number")?;
                    Ok(())
                }),
            },
            Flag {
                name: "publish-topic",
                value: Some("T"),
                help: "topic to publish to (default: first --topic, or soak)",
                action: Action::Set(|r, v| {
                    r.publish_topic = Some(v.to_string());
                    Ok(())
                }),
            },
            Flag {
                name: "no-publish",
                value: None,
                help: "do not publish: listen to an existing producer and\n\
                       check event ids only",
                action: Action::Set(|r, _| {
                    r.no_publish = true;
                    Ok(())
                }),
            },
            Flag {
                name: "publish-url",
                value: Some("URL"),
                help: "publish to this URL (loopback only; default: --url\n\
                       with the path /publish)",
                action: Action::Set(|r, v| {
                    r.publish_url = Some(v.to_string());
                    Ok(())
                }),
            },
            Flag {
                name: "publish-style",
                value: Some("S"),
                help: "ssehub: a JSON publish object with a bearer token,\n\
                       answered 200 {\"id\":..}; nchan: the event data as the\n\
                       raw body, any 2xx answer accepted, events named soak\n\
                       or unnamed are the tool's own (default ssehub)",
                action: Action::Set(|r, v| {
                    r.style = Some(match v {
                        "ssehub" => Style::Ssehub,
                        "nchan" => Style::Nchan,
                        _ => return Err(expected("ssehub or nchan", v)),
                    });
                    Ok(())
                }),
            },
            Flag {
                name: "wait-connected",
                value: None,
                help: "start publishing only once every initial client has\n\
                       connected (and the server baseline was sampled)",
                action: Action::Set(|r, _| {
                    r.wait_connected = true;
                    Ok(())
                }),
            },
            Flag {
                name: "idle",
                value: None,
                help: "connect the clients, publish nothing, expect nothing:\n\
                       for memory per idle subscriber (implies --no-publish)",
                action: Action::Set(|r, _| {
                    r.idle = true;
                    Ok(())
                }),
            },
        ],
    ),
    (
        "Several nodes (with more than one --url) and outages",
        &[
            Flag {
                name: "publish-to",
                value: Some("MODE"),
                help: "one: publish to the first --url (default);\n\
                       round-robin: to each --url's /publish in turn, one\n\
                       keep-alive connection each",
                action: Action::Set(|r, v| {
                    r.cluster.publish_to = Some(super::cluster::publish_to(v)?);
                    Ok(())
                }),
            },
            Flag {
                name: "tolerate-unavailable",
                value: None,
                help: "503 answers to publishing (the server cannot publish\n\
                       now, e.g. its broker is down) are expected: counted\n\
                       as publish_unavailable, not a failure as long as\n\
                       publishing recovers. The next try (250 ms later) is a\n\
                       new event; the refused one may still arrive (a 503\n\
                       does not prove it was not published) and is optional.\n\
                       Without this flag any 503 fails the run",
                action: Action::Set(|r, _| {
                    r.cluster.tolerate_unavailable = true;
                    Ok(())
                }),
            },
            Flag {
                name: "extra-pid",
                value: Some("PID"),
                help: "also sample this process's CPU time and RSS\n\
                       (repeatable; e.g. Redis, the other nodes)",
                action: Action::Set(|r, v| {
                    r.cluster.extra_pids.push(num(v, "a process id")?);
                    Ok(())
                }),
            },
        ],
    ),
    (
        "Restart mode (the tool runs the server)",
        &[
            Flag {
                name: "server-cmd",
                value: Some("CMD"),
                help: "start the server as sh -c 'exec CMD' before the run and\n\
                       stop it (SIGTERM, must exit 0) after it; CMD must\n\
                       listen on --url's address",
                action: Action::Set(|r, v| {
                    if v.trim().is_empty() {
                        return Err(expected("a command", v));
                    }
                    r.server_cmd = Some(v.to_string());
                    Ok(())
                }),
            },
            Flag {
                name: "restart-after",
                value: Some("SECS"),
                help: "restart it SECS into the run, on the same port: every\n\
                       subscriber resumes with Last-Event-ID and must get\n\
                       exactly what it missed, or a reset first",
                action: Action::Set(|r, v| seconds(v).map(|d| r.restart_after = Some(d))),
            },
            Flag {
                name: "restart-signal",
                value: Some("S"),
                help: "stop it for the restart with term (graceful, must\n\
                       exit 0) or kill (a crash); or hand over with usr2\n\
                       (ssehub's upgrade: follow the new pid; no subscriber\n\
                       may reconnect), or usr2-fail (the successor fails at\n\
                       start: the old server must serve on) (default term)",
                action: Action::Set(|r, v| {
                    r.restart_signal = Some(match v {
                        "term" => StopSignal::Term,
                        "kill" => StopSignal::Kill,
                        "usr2" => StopSignal::Usr2,
                        "usr2-fail" => StopSignal::Usr2Fail,
                        _ => return Err(expected("term, kill, usr2 or usr2-fail", v)),
                    });
                    Ok(())
                }),
            },
            Flag {
                name: "restarts",
                value: Some("K"),
                help: "restart K times, every --restart-after SECS (default 1)",
                action: Action::Set(|r, v| {
                    r.restarts = Some(v.parse().map_err(|_| expected("a count", v))?);
                    Ok(())
                }),
            },
            Flag {
                name: "server-log",
                value: Some("PATH"),
                help: "append the server's output to PATH (default: discard)",
                action: Action::Set(|r, v| {
                    r.server_log = Some(v.to_string());
                    Ok(())
                }),
            },
        ],
    ),
    (
        "Run",
        &[
            Flag {
                name: "duration",
                value: Some("SECS"),
                help: "run time, also the hard cap (required, at least 3)",
                action: Action::Set(|r, v| seconds(v).map(|d| r.duration = Some(d))),
            },
            Flag {
                name: "progress",
                value: Some("SECS"),
                help: "progress line on stderr every SECS, 0 = off (default 5)",
                action: Action::Set(|r, v| seconds(v).map(|d| r.progress = d)),
            },
            Flag {
                name: "threads",
                value: Some("N"),
                help: "executor threads of the tool (default: the number of\n\
                       CPUs); fewer leave more CPU to a server on this machine",
                action: Action::Set(|r, v| {
                    let what = "a whole number from 1 to 256";
                    let t: usize = num(v, what)?;
                    if !(1..=256).contains(&t) {
                        return Err(expected(what, v));
                    }
                    r.threads = Some(t);
                    Ok(())
                }),
            },
            Flag {
                name: "max-rss-growth-kib",
                value: Some("N"),
                help: "fail if the server's RSS grew by more than N KiB",
                action: Action::Set(|r, v| num(v, "KiB").map(|n| r.max_rss_growth_kib = Some(n))),
            },
            Flag {
                name: "max-fd-growth",
                value: Some("N"),
                help: "fail if the server's open fds grew by more than N\n\
                       (both compared with the sample taken once all\n\
                       initial clients were connected)",
                action: Action::Set(|r, v| {
                    num(v, "a whole number").map(|n| r.max_fd_growth = Some(n))
                }),
            },
            Flag {
                name: "help",
                value: None,
                help: "this text",
                action: Action::Help,
            },
        ],
    ),
];

/// Column of the help text where a flag's description starts.
const HELP_COLUMN: usize = 26;

/// Every flag of [`SECTIONS`].
fn flags() -> impl Iterator<Item = &'static Flag> {
    SECTIONS.iter().flat_map(|(_, flags)| flags.iter())
}

/// The help text, made from [`SECTIONS`].
pub fn help() -> String {
    let mut out = String::from(
        "ssehub-soak: soak and load test an SSE server on this machine (loopback only)\n\n\
         USAGE: ssehub-soak --duration SECS [FLAGS]\n\
         \x20      ssehub-soak doctor URL --publish-url URL [--token T] [FLAGS]\n\n\
         doctor: publishes small timestamped events through --publish-url and reads\n\
         them through URL (a stream URL through a proxy): the first-byte delay,\n\
         burst sizes (buffering), the idle cut-off, the headers the path added and a\n\
         verdict (streaming, buffered, cut after N ± 1 s). Events for the first half\n\
         of --duration (default 20, at most 5 s of events), quiet for the rest. It\n\
         takes --publish-url --token --publish-topic (default: URL's topic= or\n\
         doctor) --publish-rate (default 10) --body-size (default 200) --duration.\n\
         Exit status: 0 streaming, 1 buffered or cut, 2 bad usage, 3 could not run.\n\n",
    );
    for (title, flags) in SECTIONS {
        out.push_str(title);
        out.push('\n');
        for flag in *flags {
            let mut lines = flag.help.lines();
            let first = lines.next().unwrap_or_default();
            let usage = flag.usage();
            out.push_str(&format!("  {usage:<w$} {first}\n", w = HELP_COLUMN - 3));
            for line in lines {
                out.push_str(&format!("{:HELP_COLUMN$}{line}\n", ""));
            }
        }
        out.push('\n');
    }
    out.push_str(
        "Output: a JSON report on stdout. Exit status: 0 all checks passed, 1 a check\n\
         failed, 2 bad usage.\n",
    );
    out
}

/// The error of a value that is not `what` was expected.
fn expected(what: &str, v: &str) -> String {
    format!("expected {what}, got '{v}'")
}

fn num<T: FromStr>(v: &str, what: &str) -> Result<T, String> {
    v.parse().map_err(|_| expected(what, v))
}

fn rate(v: &str) -> Result<f64, String> {
    let r: f64 = num(v, "a rate per second (a number >= 0)")?;
    if !r.is_finite() || !(0.0..=1e6).contains(&r) {
        return Err(expected("a rate from 0 to 1000000", v));
    }
    Ok(r)
}

fn seconds(v: &str) -> Result<Duration, String> {
    let s: f64 = num(v, "seconds")?;
    if !s.is_finite() || !(0.0..=86_400.0).contains(&s) {
        return Err(expected("seconds from 0 to 86400", v));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Applies the arguments to the defaults in order; `None` when one asks for the help
/// text.
pub(super) fn read(mut args: impl Iterator<Item = String>) -> Result<Option<Raw>, UsageError> {
    let mut raw = Raw::default();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(UsageError(format!(
                "unexpected argument '{arg}' (see --help)"
            )));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let unknown = || UsageError(format!("unknown flag --{name} (see --help)"));
        let flag = flags().find(|f| f.name == name).ok_or_else(unknown)?;
        // `--help` itself was answered above: `--help=…` is no flag.
        let Action::Set(set) = flag.action else {
            return Err(unknown());
        };
        let value = match (flag.value, inline) {
            (None, Some(_)) => return Err(UsageError(format!("--{name} takes no value"))),
            (None, None) => String::new(),
            (Some(_), Some(v)) => v,
            (Some(_), None) => args
                .next()
                .ok_or_else(|| UsageError(format!("--{name} needs a value")))?,
        };
        set(&mut raw, &value).map_err(|e| UsageError(format!("--{name}: {e}")))?;
        raw.set.push(flag.name);
    }
    Ok(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_made_from_the_table() {
        let text = help();
        let mut names = Vec::new();
        for flag in flags() {
            let usage = flag.usage();
            assert!(usage.len() < HELP_COLUMN - 2, "{usage} overruns the column");
            let first = flag.help.lines().next().unwrap();
            let line = format!("\n  {usage:<w$} {first}\n", w = HELP_COLUMN - 3);
            assert!(text.contains(&line), "{usage} is not in the help text");
            assert!(!names.contains(&flag.name), "--{} twice", flag.name);
            names.push(flag.name);
        }
        assert_eq!(names.len(), 37);
        assert!(text.contains(
            "\n  --url URL               base URL, http:// on 127.0.0.0/8 or [::1] only\n                          (default http://127.0.0.1:8080). Repeat it for\n"
        ));
        assert!(text.contains("\n  -h, --help              this text\n\nOutput: "));
        assert!(text.lines().all(|l| l.len() <= 83), "{text}");
    }
}
