//! The Redis client (src/redis/) against a real `redis-server`.

use std::time::Duration;

use ssehub::redis::{Connection, ErrorKind, RedisError, RedisUrl, resp::Value};

use crate::support::redis::RedisServer;

const T: Duration = Duration::from_secs(5);

fn block<F: std::future::Future>(f: F) -> F::Output {
    futures_lite::future::block_on(f)
}

fn bulk(s: &str) -> Value {
    Value::Bulk(Some(s.as_bytes().to_vec()))
}

#[test]
fn connects_over_a_unix_socket_and_over_tcp_and_speaks_streams() {
    let srv = RedisServer::start_tcp(&[]);
    for url in [srv.unix_url(""), srv.tcp_url("")] {
        let url = RedisUrl::parse(&url).unwrap();
        let mut c = block(Connection::connect(&url, "ssehub-test", T)).unwrap();
        assert_eq!(
            block(c.call(&["PING"], T)).unwrap(),
            Value::Simple("PONG".into())
        );
        let id = block(c.call(&["XADD", "s", "*", "topic", "t", "data", "a\r\nb"], T)).unwrap();
        let id = String::from_utf8(id.as_bytes().unwrap().to_vec()).unwrap();
        let got = block(c.call(&["XRANGE", "s", &id, &id], T)).unwrap();
        let entry = &got.as_array().unwrap()[0];
        assert_eq!(entry.as_array().unwrap()[0], bulk(&id));
        assert_eq!(
            entry.as_array().unwrap()[1],
            Value::Array(Some(vec![
                bulk("topic"),
                bulk("t"),
                bulk("data"),
                bulk("a\r\nb")
            ]))
        );
        // The connection is named.
        let names = block(c.call(&["CLIENT", "LIST"], T)).unwrap();
        assert!(String::from_utf8_lossy(names.as_bytes().unwrap()).contains("name=ssehub-test"));
        let _ = block(c.call(&["DEL", "s"], T));
    }
}

#[test]
fn pipelines_return_one_reply_per_command_errors_in_place() {
    let srv = RedisServer::start(&[]);
    let url = RedisUrl::parse(&srv.unix_url("")).unwrap();
    let mut c = block(Connection::connect(&url, "p", T)).unwrap();
    let cmds: Vec<Vec<&str>> = vec![
        vec!["SET", "a", "1"],
        vec!["INCR", "nope", "x"],
        vec!["GET", "a"],
    ];
    let replies = block(c.pipeline(&cmds, T)).unwrap();
    assert_eq!(replies[0], Value::Simple("OK".into()));
    assert!(matches!(replies[1], Value::Error(_)));
    assert_eq!(replies[2], bulk("1"));
    // An error reply leaves the connection usable.
    assert!(matches!(
        block(c.call(&["INCR", "a", "b"], T)),
        Err(RedisError::Reply { .. })
    ));
    assert_eq!(block(c.call(&["GET", "a"], T)).unwrap(), bulk("1"));
}

#[test]
fn passwords_acl_users_and_databases() {
    let srv = RedisServer::start(&["--requirepass", "s3cret"]);
    let sock = srv.socket.display().to_string();
    // No password: the first command is refused with NOAUTH.
    let url = RedisUrl::parse(&format!("unix://{sock}")).unwrap();
    let err = block(Connection::connect(&url, "x", T)).unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NoAuth), "{err}");
    // A wrong password.
    let url = RedisUrl::parse(&format!("unix://:wrong@{sock}")).unwrap();
    let err = block(Connection::connect(&url, "x", T)).unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::WrongPass), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the password leaked: {err}"
    );
    // The right one, and a database.
    let url = RedisUrl::parse(&format!("unix://:s3cret@{sock}?db=3")).unwrap();
    let mut c = block(Connection::connect(&url, "x", T)).unwrap();
    block(c.call(&["SET", "k", "v"], T)).unwrap();
    srv.cli(&["-n", "3", "GET", "k"]);
    assert_eq!(srv.cli(&["-n", "3", "GET", "k"]), "v");
    assert_eq!(srv.cli(&["-n", "0", "EXISTS", "k"]), "0");
    // An ACL user with the two-argument AUTH.
    srv.cli(&["ACL", "SETUSER", "app", "on", ">apppw", "~*", "+@all"]);
    let url = RedisUrl::parse(&format!("unix://app:apppw@{sock}")).unwrap();
    let mut c = block(Connection::connect(&url, "x", T)).unwrap();
    assert_eq!(block(c.call(&["ACL", "WHOAMI"], T)).unwrap(), bulk("app"));
    let url = RedisUrl::parse(&format!("unix://app:bad@{sock}")).unwrap();
    let err = block(Connection::connect(&url, "x", T)).unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::WrongPass));
}

#[test]
fn a_timeout_or_a_cancelled_exchange_breaks_the_connection() {
    let srv = RedisServer::start(&[]);
    let url = RedisUrl::parse(&srv.unix_url("")).unwrap();
    let mut c = block(Connection::connect(&url, "t", T)).unwrap();
    // A blocking read longer than the time allowed.
    let err = block(c.call(&["BLPOP", "empty", "2"], Duration::from_millis(200))).unwrap_err();
    assert!(matches!(err, RedisError::Timeout), "{err}");
    assert!(c.is_broken());
    assert!(matches!(
        block(c.call(&["PING"], T)),
        Err(RedisError::Broken)
    ));
    // A cancelled exchange (the future dropped half-way) too.
    let mut c = block(Connection::connect(&url, "t", T)).unwrap();
    {
        let fut = c.call(&["BLPOP", "empty", "1"], T);
        let mut fut = std::pin::pin!(fut);
        let waker = std::task::Waker::noop();
        let _ = fut
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
    }
    assert!(c.is_broken());
}

#[test]
fn a_server_that_goes_away_is_an_error_not_a_hang() {
    let mut srv = RedisServer::start(&[]);
    let url = RedisUrl::parse(&srv.unix_url("")).unwrap();
    let mut c = block(Connection::connect(&url, "g", T)).unwrap();
    srv.kill();
    let err = block(c.call(&["PING"], T)).unwrap_err();
    assert!(
        matches!(err, RedisError::Closed | RedisError::Io(_)),
        "{err}"
    );
    let err = block(Connection::connect(&url, "g", Duration::from_millis(500))).unwrap_err();
    assert!(
        matches!(err, RedisError::Io(_) | RedisError::Timeout),
        "{err}"
    );
}

#[test]
fn stream_commands_add_read_and_see_a_trimmed_cursor() {
    use ssehub::redis::stream;
    let srv = RedisServer::start(&[]);
    let url = RedisUrl::parse(&srv.unix_url("")).unwrap();
    let mut w = block(Connection::connect(&url, "w", T)).unwrap();
    let mut r = block(Connection::connect(&url, "r", T)).unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let data = format!("d{i}");
        let fields: [(&[u8], &[u8]); 2] = [(b"topic", b"t"), (b"data", data.as_bytes())];
        ids.push(block(stream::xadd(&mut w, "k", 1000, &fields, T)).unwrap());
    }
    let got = block(stream::read(
        &mut r,
        "k",
        "0-0",
        100,
        Duration::from_millis(100),
        T,
    ))
    .unwrap();
    assert_eq!(got.shape.as_ref().map(|s| s.length), Some(5));
    assert_eq!(
        got.entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids
    );
    assert_eq!(got.entries[4].field("data"), Some(&b"d4"[..]));
    // Nothing new: the blocking read times out empty, within its block time.
    let t0 = std::time::Instant::now();
    let got = block(stream::read(
        &mut r,
        "k",
        &ids[4],
        100,
        Duration::from_millis(200),
        T,
    ))
    .unwrap();
    assert!(got.entries.is_empty());
    assert!(t0.elapsed() < Duration::from_secs(2));
    // The tail and a range.
    let (tail, shape) = block(stream::tail(&mut r, "k", 2, T)).unwrap();
    assert_eq!(shape.and_then(|s| s.entries_added), Some(5));
    assert_eq!(
        tail.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids[3..]
    );
    let from = block(stream::range_from(&mut r, "k", &ids[1], 10, T)).unwrap();
    assert_eq!(from.len(), 4);
    // Trimmed past a cursor: the entries after it that the stream no longer holds were
    // lost to a reader there (two of the three), and to one at the newest entry nothing.
    srv.cli(&["XTRIM", "k", "MAXLEN", "1"]);
    let mut at = |cursor: &str, seen: u64| {
        let got = block(stream::read(
            &mut r,
            "k",
            cursor,
            100,
            Duration::from_millis(100),
            T,
        ))
        .unwrap();
        let mut pos = stream::Position {
            cursor: cursor.to_owned(),
            seen: Some(seen),
        };
        (pos.advance(&got, 100), got.entries.len(), pos)
    };
    let (lost, n, pos) = at(&ids[2], 3);
    assert!(lost);
    assert_eq!(
        (n, pos.cursor.as_str(), pos.seen),
        (1, ids[4].as_str(), Some(5))
    );
    let (lost, n, _) = at(&ids[3], 4);
    assert!(
        !lost,
        "the cursor's entry is gone, but the next one was read"
    );
    assert_eq!(n, 1);
}

#[test]
fn missing_names_the_ids_a_stream_lacks_but_not_those_trimmed_away() {
    use ssehub::redis::stream;
    let srv = RedisServer::start(&[]);
    let url = RedisUrl::parse(&srv.unix_url("")).unwrap();
    let mut c = block(Connection::connect(&url, "c", T)).unwrap();
    let mut ids = Vec::new();
    for i in 0..4 {
        let data = format!("d{i}");
        let fields: [(&[u8], &[u8]); 1] = [(b"data", data.as_bytes())];
        ids.push(block(stream::xadd(&mut c, "k", 1000, &fields, T)).unwrap());
    }
    // ids[0] trimmed away (older than the first entry: not a loss), ids[2] deleted (a
    // loss), and an id after the newest (a loss: the tail is gone).
    block(c.call(&["XTRIM", "k", "MAXLEN", "3"], T)).unwrap();
    block(c.call(&["XDEL", "k", &ids[2]], T)).unwrap();
    let mut asked = ids.clone();
    asked.push("99999999999999-0".to_owned());
    let gone = block(stream::missing(&mut c, "k", &asked, T)).unwrap();
    assert_eq!(gone, vec![ids[2].clone(), "99999999999999-0".to_owned()]);
    // No stream at all: every id is missing.
    let gone = block(stream::missing(&mut c, "none", &ids, T)).unwrap();
    assert_eq!(gone, ids);
}
