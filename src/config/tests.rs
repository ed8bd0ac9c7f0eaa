//! Tests of the configuration: defaults, flags over the environment, aliases, errors
//! that name the flag, and secrets that never show.

use super::*;
use crate::auth::MIN_KEY_BYTES;

fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match Config::from_args(args.iter().copied(), |k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })? {
        Command::Run(c) => Ok(*c),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn defaults_match_the_documented_values() {
    let c = run(&[], &[]).unwrap();
    assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(c.hub.queue_len, 100);
    assert_eq!(c.heartbeat, Some(Duration::from_secs(15)));
    assert_eq!(c.demo_interval_ms, (500, 2000));
    assert_eq!(c.limits.write_timeout, Duration::from_secs(10));
    assert_eq!(c.grace, Duration::from_secs(5));
    assert!(c.demo && !c.quiet && c.publish_token.is_none());
}

#[test]
fn flag_beats_env_and_env_beats_default() {
    let c = run(
        &["--queue", "7"],
        &[("SSEHUB_QUEUE", "9"), ("SSEHUB_HEARTBEAT", "2.5")],
    )
    .unwrap();
    assert_eq!(c.hub.queue_len, 7);
    assert_eq!(c.heartbeat, Some(Duration::from_millis(2500)));
    let c = run(&["--queue=8"], &[]).unwrap();
    assert_eq!(c.hub.queue_len, 8);
    let c = run(&[], &[("SSEHUB_NO_DEMO", "1")]).unwrap();
    assert!(!c.demo);
}

#[test]
fn heartbeat_zero_turns_it_off() {
    assert_eq!(run(&["--heartbeat", "0"], &[]).unwrap().heartbeat, None);
}

#[test]
fn bad_values_name_the_flag() {
    for (args, needle) in [
        (&["--queue", "0"][..], "--queue"),
        (&["--queue", "x"][..], "--queue"),
        (&["--heartbeat", "-1"][..], "--heartbeat"),
        (&["--bind", "nope"][..], "--bind"),
        (
            &["--min-interval-ms", "10", "--max-interval-ms", "5"][..],
            "--min-interval-ms",
        ),
        (&["--frobnicate"][..], "--frobnicate"),
        (&["--queue"][..], "--queue"),
        (&["--write-timeout", "0"][..], "--write-timeout"),
        (&["--cors-origin", "example.com"][..], "--cors-origin"),
        (&["stray"][..], "stray"),
    ] {
        let e = run(args, &[]).unwrap_err();
        assert!(e.0.contains(needle), "{args:?} -> {e}");
        assert!(!e.0.contains('\n'));
    }
}

#[test]
fn help_and_version_are_commands() {
    assert!(matches!(
        Config::from_args(["--help"], |_| None),
        Ok(Command::Help)
    ));
    assert!(matches!(
        Config::from_args(["-V"], |_| None),
        Ok(Command::Version)
    ));
    assert!(help().contains("--max-clients"));
}

#[test]
fn old_flag_names_are_aliases() {
    let c = run(&["--max-clients", "7", "--header-timeout", "2"], &[]).unwrap();
    assert_eq!(c.limits.max_connections, 7);
    assert_eq!(c.limits.request_timeout, Duration::from_secs(2));
    let c = run(&[], &[("SSEHUB_MAX_CLIENTS", "8")]).unwrap();
    assert_eq!(c.limits.max_connections, 8);
    // The new name wins over the old one in the environment.
    let env = [("SSEHUB_MAX_CLIENTS", "8"), ("SSEHUB_MAX_CONNECTIONS", "9")];
    assert_eq!(run(&[], &env).unwrap().limits.max_connections, 9);
    let e = run(&["--max-clients", "0"], &[]).unwrap_err();
    assert!(e.0.contains("--max-connections"), "{e}");
    assert!(help().contains("--request-timeout") && help().contains("--header-timeout"));
}

#[test]
fn redis_flags() {
    let c = run(
        &["--redis", "unix://:pw@/tmp/r.sock", "--history", "50"],
        &[],
    )
    .unwrap();
    let r = c.redis.as_ref().unwrap();
    assert_eq!((r.stream.as_str(), r.maxlen), ("ssehub:events", 50));
    assert!(!format!("{c:?}").contains("pw@"));
    let c = run(
        &[
            "--redis",
            "redis://h",
            "--redis-stream",
            "k",
            "--redis-maxlen",
            "9",
        ],
        &[],
    );
    assert_eq!(c.unwrap().redis.unwrap().maxlen, 9);
    for bad in [
        &["--redis", "h:1"][..],
        &["--redis", "redis://h", "--redis-stream", "a b"],
    ] {
        let e = run(bad, &[]).unwrap_err();
        assert!(e.0.starts_with("--redis"), "{e}");
    }
    assert!(run(&[], &[]).unwrap().redis.is_none());
}

#[test]
fn debug_never_shows_the_token() {
    let c = run(&["--publish-token", "s3cret"], &[]).unwrap();
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn jwt_key_from_flag_env_or_file() {
    let key = "k".repeat(MIN_KEY_BYTES);
    let c = run(&["--jwt-key", &key], &[]).unwrap();
    assert_eq!(c.jwt_key, Some(Key::new(key.clone())));
    assert_eq!(c.jwt_cookie, "mercureAuthorization");
    assert_eq!(c.subscribe_auth, SubscribeAuth::Optional);
    let c = run(&[], &[("SSEHUB_JWT_KEY", &key)]).unwrap();
    assert_eq!(c.jwt_key, Some(Key::new(key.clone())));
    let dir = std::env::temp_dir().join(format!("ssehub-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("key");
    // One trailing newline (LF or CRLF) is dropped; a second one is key material.
    for (content, want) in [
        (format!("{key}\n"), key.clone()),
        (format!("{key}\r\n"), key.clone()),
        (format!("{key}\n\n"), format!("{key}\n")),
        (key.clone(), key.clone()),
    ] {
        std::fs::write(&file, content).unwrap();
        let path = file.to_str().unwrap();
        let c = run(&["--jwt-key-file", path], &[]).unwrap();
        assert_eq!(c.jwt_key, Some(Key::new(want.clone())));
        let c = run(&[], &[("SSEHUB_JWT_KEY_FILE", path)]).unwrap();
        assert_eq!(c.jwt_key, Some(Key::new(want)));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn issuer_and_audience_come_together_with_a_key() {
    let key = "k".repeat(MIN_KEY_BYTES);
    let c = run(
        &[
            "--jwt-key",
            &key,
            "--jwt-issuer",
            "i",
            "--jwt-audience",
            "a",
        ],
        &[],
    )
    .unwrap();
    let want = Key::new(key.clone()).expecting(Some("i".into()), Some("a".into()));
    assert_eq!(c.jwt_key, Some(want));
    let c = run(
        &["--jwt-key", &key],
        &[("SSEHUB_JWT_ISSUER", "i"), ("SSEHUB_JWT_AUDIENCE", "a")],
    )
    .unwrap();
    assert_ne!(c.jwt_key, Some(Key::new(key.clone())));
    for (args, needle) in [
        (vec!["--jwt-key", &key, "--jwt-issuer", "i"], "give both"),
        (vec!["--jwt-key", &key, "--jwt-audience", "a"], "give both"),
        (
            vec!["--jwt-issuer", "i", "--jwt-audience", "a"],
            "need --jwt-key",
        ),
        (
            vec!["--jwt-key", &key, "--jwt-issuer", "", "--jwt-audience", "a"],
            "non-empty",
        ),
    ] {
        let e = run(&args, &[]).unwrap_err();
        assert!(e.0.contains(needle), "{args:?}: {e}");
    }
}

#[test]
fn bad_jwt_settings_name_the_flag_and_never_the_key() {
    let key = "k".repeat(MIN_KEY_BYTES);
    let short = "short-secret";
    for (args, needle) in [
        (
            vec!["--jwt-key", short],
            "--jwt-key: an HS256 key must be at least 32",
        ),
        (vec!["--jwt-key", ""], "--jwt-key:"),
        (
            vec!["--jwt-key-file", "/nonexistent/ssehub-key"],
            "--jwt-key-file: cannot read '/nonexistent/ssehub-key'",
        ),
        (vec!["--jwt-key", &key, "--jwt-key-file", "/k"], "not both"),
        (vec!["--subscribe-auth", "always"], "--subscribe-auth"),
        (vec!["--subscribe-auth", "required"], "needs --jwt-key"),
        (vec!["--jwt-cookie", "a b"], "--jwt-cookie"),
        (vec!["--jwt-cookie", ""], "--jwt-cookie"),
        (
            vec!["--jwt-alg", "RS512"],
            "--jwt-alg: expected HS256, RS256 or ES256",
        ),
        (vec!["--jwt-alg", "none"], "--jwt-alg: expected"),
        (vec!["--jwt-alg", "RS256"], "needs --jwt-public-key-file"),
        (
            vec!["--jwt-alg", "ES256", "--jwt-key", &key],
            "needs --jwt-public-key-file",
        ),
        (
            vec!["--jwt-public-key-file", "/k"],
            "needs --jwt-alg RS256 or ES256",
        ),
        (
            vec![
                "--jwt-alg",
                "RS256",
                "--jwt-public-key-file",
                "/k",
                "--jwt-key",
                &key,
            ],
            "not --jwt-key",
        ),
        (
            vec![
                "--jwt-alg",
                "ES256",
                "--jwt-public-key-file",
                "/nonexistent/k.pem",
            ],
            "--jwt-public-key-file: cannot read",
        ),
        (
            vec!["--jwt-alg", "RS256", "--jwt-public-key-file", "Cargo.toml"],
            "not a PEM RSA public key",
        ),
        (
            vec!["--jwt-alg", "ES256", "--jwt-public-key-file", "Cargo.toml"],
            "not a PEM P-256 public key",
        ),
    ] {
        let e = run(&args, &[]).unwrap_err();
        assert!(e.0.contains(needle), "{args:?} -> {e}");
        assert!(!e.0.contains('\n') && !e.0.contains(short) && !e.0.contains(&key));
    }
    let c = run(
        &[
            "--jwt-key",
            &key,
            "--subscribe-auth",
            "required",
            "--jwt-cookie",
            "tok",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.subscribe_auth, SubscribeAuth::Required);
    assert_eq!(c.jwt_cookie, "tok");
    assert!(!format!("{c:?}").contains(&key));
}

#[test]
fn cors_origins_repeat() {
    let c = run(
        &["--cors-origin", "http://a.test", "--cors-origin", "*"],
        &[],
    )
    .unwrap();
    assert_eq!(c.cors_origins, ["http://a.test", "*"]);
}

#[test]
fn fsync_needs_a_history_file_and_a_file_no_redis() {
    let c = run(&["--history-file", "h", "--fsync", "always"], &[]).unwrap();
    assert_eq!(
        (c.history_file.as_deref(), c.fsync),
        (Some("h".as_ref()), Fsync::Always)
    );
    let e = run(&["--fsync", "never"], &[]).unwrap_err();
    assert!(e.0.contains("--history-file"), "{e}");
    assert!(run(&["--history-file", "h", "--fsync", "x"], &[]).is_err());
    let e = run(&["--history-file", "h", "--redis", "redis://h"], &[]).unwrap_err();
    assert!(e.0.starts_with("--history-file"), "{e}");
}

/// A `--config` file with `text` in a directory of its own; the directory is removed on
/// drop.
struct ConfigFile(std::path::PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> ConfigFile {
        let dir = std::env::temp_dir().join(format!("ssehub-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ssehub.env");
        std::fs::write(&path, text).unwrap();
        ConfigFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

#[test]
fn config_file_is_below_the_environment_and_the_flags() {
    let file = ConfigFile::new(
        "precedence",
        "# all three from the file\nSSEHUB_QUEUE=5\nSSEHUB_HISTORY='6'\n\
         SSEHUB_GRACE=\"7\"\nSSEHUB_MAX_CLIENTS=8\nSSEHUB_CORS_ORIGIN=http://a.test, *\n\
         PATH=/not/ours\n",
    );
    let c = run(&["--config", file.path()], &[]).unwrap();
    assert_eq!(
        (c.hub.queue_len, c.hub.history_events, c.grace),
        (5, 6, Duration::from_secs(7))
    );
    assert_eq!(c.limits.max_connections, 8, "an alias's twin in a file");
    assert_eq!(c.cors_origins, ["http://a.test", "*"]);
    // The environment beats the file; a flag beats both.
    let env = [("SSEHUB_QUEUE", "50"), ("SSEHUB_HISTORY", "60")];
    let c = run(&["--config", file.path(), "--history", "600"], &env).unwrap();
    assert_eq!((c.hub.queue_len, c.hub.history_events), (50, 600));
    assert_eq!(c.grace, Duration::from_secs(7));
    // SSEHUB_CONFIG names the file too; --config wins over it.
    let c = run(&[], &[("SSEHUB_CONFIG", file.path())]).unwrap();
    assert_eq!(c.hub.queue_len, 5);
    let e = run(
        &["--config", file.path()],
        &[("SSEHUB_CONFIG", "/nonexistent")],
    );
    assert_eq!(e.unwrap().hub.queue_len, 5);
    // A bad value from the file names the flag, as from anywhere else.
    let bad = ConfigFile::new("bad-value", "SSEHUB_QUEUE=0\n");
    let e = run(&["--config", bad.path()], &[]).unwrap_err();
    assert!(e.0.starts_with("--queue:"), "{e}");
}

#[test]
fn config_file_errors_name_the_file_and_the_line() {
    let missing = "/nonexistent/ssehub.env";
    let e = run(&["--config", missing], &[]).unwrap_err();
    assert!(
        e.0.starts_with(&format!("--config: cannot read '{missing}'")),
        "{e}"
    );
    assert!(!e.0.contains('\n'));
    for (name, text, needle) in [
        (
            "unknown",
            "SSEHUB_QUEUE=1\n\nSSEHUB_QUEUEE=2\n",
            "line 3: unknown setting SSEHUB_QUEUEE",
        ),
        ("export", "export SSEHUB_QUEUE=1\n", "line 1: 'export'"),
        ("nested", "SSEHUB_CONFIG=/x\n", "line 1: SSEHUB_CONFIG"),
        (
            "syntax",
            "# ok\nSSEHUB_QUEUE\n",
            "line 2: expected NAME=value",
        ),
    ] {
        let file = ConfigFile::new(name, text);
        let e = run(&["--config", file.path()], &[]).unwrap_err();
        let want = format!("--config: {} {needle}", file.path());
        assert!(e.0.starts_with(&want), "{e} (wanted {want})");
        assert!(!e.0.contains('\n'));
    }
}

#[test]
fn mercure_subscriptions_is_off_by_default_and_needs_the_mercure_path() {
    assert!(!run(&[], &[]).unwrap().mercure_subscriptions);
    assert!(
        run(&["--mercure-subscriptions"], &[])
            .unwrap()
            .mercure_subscriptions
    );
    assert!(
        run(&[], &[("SSEHUB_MERCURE_SUBSCRIPTIONS", "1")])
            .unwrap()
            .mercure_subscriptions
    );
    let e = run(&["--mercure-subscriptions", "--mercure-path", "off"], &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--mercure-subscriptions: needs the Mercure path (--mercure-path is off)"
    );
}

#[test]
fn role_keys_stand_alone_or_fall_back_to_the_shared_key() {
    let shared = "s".repeat(MIN_KEY_BYTES);
    let publisher = "p".repeat(MIN_KEY_BYTES);
    let subscriber = "b".repeat(MIN_KEY_BYTES);
    let c = run(
        &["--jwt-key", &shared, "--jwt-publisher-key", &publisher],
        &[("SSEHUB_JWT_SUBSCRIBER_KEY", &subscriber)],
    )
    .unwrap();
    assert_eq!(c.publisher_key(), Some(&Key::new(publisher.clone())));
    assert_eq!(c.subscriber_key(), Some(&Key::new(subscriber.clone())));
    // One role's own key; the other role falls back to --jwt-key.
    let c = run(
        &["--jwt-key", &shared, "--jwt-subscriber-key", &subscriber],
        &[],
    )
    .unwrap();
    assert_eq!(c.publisher_key(), Some(&Key::new(shared.clone())));
    assert_eq!(c.subscriber_key(), Some(&Key::new(subscriber.clone())));
    // A role key alone: the other role reads no token.
    let c = run(&["--jwt-publisher-key", &publisher], &[]).unwrap();
    assert_eq!(c.publisher_key(), Some(&Key::new(publisher.clone())));
    assert_eq!(c.subscriber_key(), None);
    // Issuer and audience bind every key.
    let c = run(
        &[
            "--jwt-publisher-key",
            &publisher,
            "--jwt-issuer",
            "i",
            "--jwt-audience",
            "a",
        ],
        &[],
    )
    .unwrap();
    let want = Key::new(publisher.clone()).expecting(Some("i".into()), Some("a".into()));
    assert_eq!(c.publisher_key(), Some(&want));
}

#[test]
fn role_key_errors_name_the_role_flag() {
    let short = "k".repeat(MIN_KEY_BYTES - 1);
    let key = "k".repeat(MIN_KEY_BYTES);
    for (args, needle) in [
        (
            vec!["--jwt-publisher-key", &short],
            "--jwt-publisher-key: an HS256 key",
        ),
        (
            vec!["--jwt-subscriber-alg", "RS256"],
            "--jwt-subscriber-alg RS256 needs --jwt-subscriber-public-key-file",
        ),
        (
            vec!["--jwt-publisher-public-key-file", "/nonexistent"],
            "--jwt-publisher-public-key-file needs --jwt-publisher-alg RS256 or ES256",
        ),
        (
            vec![
                "--jwt-subscriber-key",
                &key,
                "--jwt-subscriber-key-file",
                "/x",
            ],
            "--jwt-subscriber-key and --jwt-subscriber-key-file: give one",
        ),
        (
            vec!["--jwt-publisher-alg", "none"],
            "--jwt-publisher-alg: expected HS256, RS256 or ES256",
        ),
        // A publisher key alone cannot check subscribers' tokens.
        (
            vec!["--jwt-publisher-key", &key, "--subscribe-auth", "required"],
            "--subscribe-auth required needs",
        ),
    ] {
        let e = run(&args, &[]).unwrap_err();
        assert!(e.0.starts_with(needle), "{args:?}: {e}");
        assert!(!e.0.contains(&key[..MIN_KEY_BYTES - 1]), "{e}");
    }
    let ok = run(
        &["--jwt-subscriber-key", &key, "--subscribe-auth", "required"],
        &[],
    );
    assert!(ok.is_ok());
}

#[test]
fn drain_spread_defaults_to_four_fifths_of_grace_and_never_exceeds_it() {
    use std::time::Duration;
    let c = run(&["--grace", "5"], &[]).unwrap();
    assert_eq!(c.drain_spread(), Duration::from_secs(4));
    let c = run(&["--grace", "5", "--drain-spread", "2.5"], &[]).unwrap();
    assert_eq!(c.drain_spread(), Duration::from_millis(2500));
    let c = run(&["--drain-spread", "0"], &[("SSEHUB_GRACE", "3")]).unwrap();
    assert_eq!(c.drain_spread(), Duration::ZERO);
    let e = run(&["--grace", "2", "--drain-spread", "3"], &[]).unwrap_err();
    assert!(
        e.0.starts_with("--drain-spread: at most --grace (2 s)"),
        "{e}"
    );
    let e = run(&["--drain-spread", "soon"], &[]).unwrap_err();
    assert!(e.0.starts_with("--drain-spread: expected seconds"), "{e}");
}

#[test]
fn the_capacity_knobs_rest_batch_window_and_one_thread() {
    let c = run(&[], &[]).unwrap();
    assert!(c.rest_idle);
    assert_eq!(c.limits.batch_window, Duration::from_millis(5));
    let c = run(&["--no-rest", "--batch-window", "0", "--threads", "0"], &[]).unwrap();
    assert!(!c.rest_idle);
    assert_eq!(c.limits.batch_window, Duration::ZERO);
    assert_eq!(c.threads, 0);
    let c = run(&[], &[("SSEHUB_BATCH_WINDOW", "20")]).unwrap();
    assert_eq!(c.limits.batch_window, Duration::from_millis(20));
    let e = run(&["--batch-window", "2000"], &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--batch-window: expected a whole number from 0 to 1000, got '2000'"
    );
}
