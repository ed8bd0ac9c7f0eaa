//! The flag parsing and the checks of [`super`], end to end.

use super::*;

fn run(args: &[&str]) -> Result<Config, UsageError> {
    match parse(args.iter().copied())? {
        Command::Run(c) => Ok(*c),
        other => panic!("not a run: {other:?}"),
    }
}

#[test]
fn defaults_and_values() {
    let c = run(&["--duration", "10"]).unwrap();
    assert_eq!(c.clients, 100);
    assert_eq!(c.duration, Duration::from_secs(10));
    assert_eq!(c.dests, vec!["127.0.0.1:8080".parse().unwrap()]);
    let p = c.publish.unwrap();
    assert_eq!((p.rate, p.topic.as_str()), (Rate::PerSec(100.0), "soak"));

    let c = run(&[
        "--duration=15",
        "--clients",
        "200",
        "--topic",
        "a",
        "--topic=b",
        "--publish-rate",
        "max",
        "--token",
        "t",
        "--body-size",
        "8192",
        "--slow",
        "5",
        "--churn",
        "2.5",
        "--reconnect",
        "1",
        "--server-pid",
        "77",
        "--max-fd-growth",
        "3",
        "--sources",
        "3",
        "--url",
        "http://127.0.0.1:9000",
        "--threads",
        "1",
    ])
    .unwrap();
    assert_eq!(c.topics, vec!["a", "b"]);
    let p = c.publish.unwrap();
    assert_eq!(p.rate, Rate::Max);
    assert_eq!(p.topic, "a");
    assert_eq!(p.token.as_deref(), Some("t"));
    assert_eq!((c.slow, c.churn, c.reconnect), (5, 2.5, 1.0));
    assert_eq!((c.server_pid, c.max_fd_growth), (Some(77), Some(3)));
    assert_eq!(c.dests.len(), 3);
    assert_eq!(c.dests[2], "127.0.0.3:9000".parse().unwrap());
    assert_eq!(c.threads, Some(1));
    assert_eq!(run(&["--duration", "5"]).unwrap().threads, None);
    for bad in ["0", "257", "x"] {
        assert!(
            run(&["--duration", "5", "--threads", bad]).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn no_publish_and_help() {
    let c = run(&["--duration", "5", "--no-publish"]).unwrap();
    assert!(c.publish.is_none());
    assert_eq!(parse(["--clients", "1", "--help"]), Ok(Command::Help));
}

#[test]
fn nchan_publishing_and_idle() {
    let c = run(&[
        "--duration",
        "5",
        "--url",
        "http://127.0.0.1:9000",
        "--subscribe-path",
        "/sub",
        "--publish-url",
        "http://127.0.0.1:9001/pub",
        "--publish-style=nchan",
        "--wait-connected",
    ])
    .unwrap();
    assert_eq!(c.subscribe_path, "/sub");
    let p = c.publish.unwrap();
    assert_eq!(p.addr, Some("127.0.0.1:9001".parse().unwrap()));
    assert_eq!(
        (p.host.as_str(), p.target.as_str()),
        ("127.0.0.1:9001", "/pub")
    );
    assert_eq!(p.style, Style::Nchan);
    assert!(p.wait_connected);

    // Defaults: ssehub's /publish under the URL, on the subscribers' destinations.
    let c = run(&["--duration", "5", "--url", "http://127.0.0.1:9000/hub/"]).unwrap();
    assert_eq!(c.subscribe_path, "/stream");
    assert!(!c.idle);
    let p = c.publish.unwrap();
    assert_eq!((p.addr, p.target.as_str()), (None, "/hub/publish"));
    assert_eq!((p.style, p.wait_connected), (Style::Ssehub, false));

    let c = run(&["--duration", "5", "--idle", "--clients", "7"]).unwrap();
    assert!(c.idle && c.publish.is_none());
    assert_eq!(c.clients, 7);
}

#[test]
fn restart_mode() {
    let c = run(&[
        "--duration",
        "20",
        "--server-cmd",
        "ssehub --bind 127.0.0.1:9000",
        "--restart-after",
        "8",
        "--restart-signal",
        "kill",
        "--server-log",
        "s.log",
    ])
    .unwrap();
    let s = c.server.unwrap();
    assert_eq!(s.cmd, "ssehub --bind 127.0.0.1:9000");
    assert_eq!(s.restart_after, Some(Duration::from_secs(8)));
    assert_eq!(
        (s.restart_signal, s.log.as_deref()),
        (StopSignal::Kill, Some("s.log"))
    );
    let s = run(&["--duration", "5", "--server-cmd", "x"])
        .unwrap()
        .server
        .unwrap();
    assert_eq!(
        (s.restart_after, s.restart_signal),
        (None, StopSignal::Term)
    );
    assert!(run(&["--duration", "5"]).unwrap().server.is_none());
    // 20 s leaves a 2 s tail; the server gets 2 s more to come back.
    assert!(
        run(&[
            "--duration",
            "20",
            "--server-cmd",
            "x",
            "--restart-after",
            "16"
        ])
        .is_ok()
    );
}

#[test]
fn upgrades_are_counted_and_must_fit_the_run() {
    let base = [
        "--duration",
        "30",
        "--server-cmd",
        "x",
        "--restart-after",
        "5",
    ];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        run(&a)
    };
    let s = with(&["--restarts", "3", "--restart-signal", "usr2"])
        .unwrap()
        .server
        .unwrap();
    assert_eq!((s.restarts, s.restart_signal), (3, StopSignal::Usr2));
    assert!(s.restart_signal.is_upgrade() && !StopSignal::Term.is_upgrade());
    let s = with(&["--restart-signal", "usr2-fail"])
        .unwrap()
        .server
        .unwrap();
    assert_eq!((s.restarts, s.restart_signal), (1, StopSignal::Usr2Fail));
    // 30 s leaves 3 s of tail and 2 s more: five restarts every 5 s fit, six do not.
    assert!(with(&["--restarts", "5"]).is_ok());
    assert!(with(&["--restarts", "6"]).is_err());
    assert!(with(&["--restarts", "0"]).is_err());
    assert!(run(&["--duration", "30", "--server-cmd", "x", "--restarts", "2"]).is_err());
    assert!(run(&["--duration", "30", "--restarts", "2"]).is_err());
    assert!(with(&["--restart-signal", "hup"]).is_err());
}

#[test]
fn errors_are_one_line_and_name_the_flag() {
    for (args, flag) in [
        (&["--clients", "5"][..], "--duration"),
        (&["--duration", "1"][..], "--duration"),
        (&["--duration", "x"][..], "--duration"),
        (&["--duration", "5", "--clients"][..], "--clients"),
        (&["--duration", "5", "--clients", "-1"][..], "--clients"),
        (&["--duration", "5", "--frob"][..], "--frob"),
        (&["--duration", "5", "stray"][..], "stray"),
        (
            &["--duration", "5", "--url", "http://10.1.2.3:80"][..],
            "--url",
        ),
        (
            &["--duration", "5", "--publish-rate", "0"][..],
            "--publish-rate",
        ),
        (&["--duration", "5", "--churn", "-2"][..], "--churn"),
        (
            &["--duration", "5", "--no-publish", "--token", "t"][..],
            "--no-publish",
        ),
        (
            &["--duration", "5", "--topic", "a", "--publish-topic", "b"][..],
            "--publish-topic",
        ),
        (&["--duration", "5", "--sources", "0"][..], "--sources"),
        (
            &[
                "--duration",
                "5",
                "--url",
                "http://[::1]:1",
                "--sources",
                "2",
            ][..],
            "--sources",
        ),
        (
            &[
                "--duration",
                "5",
                "--url",
                "http://127.0.0.250:1",
                "--sources",
                "9",
            ][..],
            "--sources",
        ),
        (
            &["--duration", "5", "--body-size", "99999999"][..],
            "--body-size",
        ),
        (
            &["--duration", "5", "--publish-style", "redis"][..],
            "--publish-style",
        ),
        (
            &["--duration", "5", "--publish-url", "http://10.0.0.1/pub"][..],
            "--publish-url",
        ),
        (
            &["--duration", "5", "--subscribe-path", "sub"][..],
            "--subscribe-path",
        ),
        (
            &["--duration", "5", "--subscribe-path", "/s?x=1"][..],
            "--subscribe-path",
        ),
        (&["--duration", "5", "--idle", "--token", "t"][..], "--idle"),
        (
            &["--duration", "5", "--no-publish", "--wait-connected"][..],
            "--no-publish",
        ),
        (&["--duration", "5", "--idle=1"][..], "--idle"),
        (
            &["--duration", "5", "--restart-after", "1"][..],
            "--server-cmd",
        ),
        (
            &["--duration", "5", "--server-cmd", "x", "--server-pid", "1"][..],
            "--server-pid",
        ),
        (
            &[
                "--duration",
                "20",
                "--server-cmd",
                "x",
                "--restart-after",
                "17",
            ][..],
            "--restart-after",
        ),
        (
            &[
                "--duration",
                "20",
                "--server-cmd",
                "x",
                "--restart-after",
                "0",
            ][..],
            "--restart-after",
        ),
        (
            &[
                "--duration",
                "20",
                "--server-cmd",
                "x",
                "--restart-after",
                "5",
                "--slow",
                "1",
            ][..],
            "--slow",
        ),
        (
            &[
                "--duration",
                "5",
                "--server-cmd",
                "x",
                "--restart-signal",
                "hup",
            ][..],
            "--restart-signal",
        ),
        (&["--duration", "5", "--server-cmd", ""][..], "--server-cmd"),
    ] {
        let e = run(args).unwrap_err().0;
        assert!(e.contains(flag), "{args:?}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn unknown_flags_and_misplaced_values() {
    let err = |args: &[&str]| run(args).unwrap_err().0;
    assert_eq!(err(&["--frob"]), "unknown flag --frob (see --help)");
    assert_eq!(err(&["--frob=1"]), "unknown flag --frob (see --help)");
    assert_eq!(err(&["--"]), "unknown flag -- (see --help)");
    // Only `-h` and `--help` as such ask for help.
    assert_eq!(err(&["--help=1"]), "unknown flag --help (see --help)");
    assert_eq!(err(&["-x"]), "unexpected argument '-x' (see --help)");
    assert_eq!(err(&["--idle=1"]), "--idle takes no value");
    assert_eq!(
        err(&["--duration", "5", "--token"]),
        "--token needs a value"
    );
    assert_eq!(
        err(&["--clients=x"]),
        "--clients: expected a whole number, got 'x'"
    );
    assert_eq!(parse(["-h", "--frob"]), Ok(Command::Help));
    // A value may look like a flag.
    let c = run(&["--duration", "5", "--token", "--clients"]).unwrap();
    assert_eq!(c.publish.unwrap().token.as_deref(), Some("--clients"));
}
