//! One connection to a Redis server: connect and log in, then pipelined commands, each
//! batch bounded in time. A connection whose exchange failed, timed out or was cancelled
//! half-way is broken for good (the replies would be out of step with the commands): the
//! caller drops it and connects again.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;
use async_net::TcpStream;
use async_net::unix::UnixStream;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt};

use super::resp::{self, ReplyLimits, RespError, Value};
use super::url::{Endpoint, RedisUrl, TlsFiles};

/// What kind of error reply a server sent (the first word of `-ERR ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `LOADING`: the server is loading its data set; try again shortly.
    Loading,
    /// `READONLY`: a replica; writes must go to the primary.
    ReadOnly,
    /// `NOAUTH`: a password is needed.
    NoAuth,
    /// `WRONGPASS` (or a refused `AUTH`): bad credentials.
    WrongPass,
    /// `OOM`: the server is out of memory (`maxmemory` with `noeviction`).
    Oom,
    /// `MOVED` / `ASK`: a Redis Cluster, which this client does not speak.
    Cluster,
    /// `NOGROUP`, `ERR ...` and the rest.
    Other,
}

impl ErrorKind {
    /// Classifies an error reply's text.
    pub fn of(message: &str) -> ErrorKind {
        let word = message.split_whitespace().next().unwrap_or("");
        match word {
            "LOADING" => ErrorKind::Loading,
            "READONLY" => ErrorKind::ReadOnly,
            "NOAUTH" => ErrorKind::NoAuth,
            "WRONGPASS" => ErrorKind::WrongPass,
            "OOM" => ErrorKind::Oom,
            "MOVED" | "ASK" | "CLUSTERDOWN" => ErrorKind::Cluster,
            _ if message.contains("invalid password") || message.contains("invalid username") => {
                ErrorKind::WrongPass
            }
            _ => ErrorKind::Other,
        }
    }
}

/// Why a Redis exchange failed.
#[derive(Debug)]
pub enum RedisError {
    /// Connecting or the socket failed.
    Io(io::Error),
    /// No complete reply within the time allowed.
    Timeout,
    /// The reply bytes are not RESP2 (or over the size cap).
    Protocol(RespError),
    /// The server closed the connection.
    Closed,
    /// The server answered with an error.
    Reply {
        /// Its class.
        kind: ErrorKind,
        /// Its text (never holds the password: the client never echoes it).
        message: String,
    },
    /// The connection broke earlier (or an exchange was cancelled): connect again.
    Broken,
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Io(e) => write!(f, "{e}"),
            RedisError::Timeout => f.write_str("no reply in time"),
            RedisError::Protocol(e) => write!(f, "protocol error: {e}"),
            RedisError::Closed => f.write_str("connection closed by the server"),
            RedisError::Reply { message, .. } => write!(f, "server error: {message}"),
            RedisError::Broken => f.write_str("connection broken"),
        }
    }
}

impl std::error::Error for RedisError {}

impl RedisError {
    /// The server's error class, for an error reply.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            RedisError::Reply { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// An error reply as a [`RedisError`]; any other value as itself.
pub fn check(v: Value) -> Result<Value, RedisError> {
    match v {
        Value::Error(message) => Err(RedisError::Reply {
            kind: ErrorKind::of(&message),
            message,
        }),
        v => Ok(v),
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_close(cx),
            Stream::Unix(s) => Pin::new(s).poll_close(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// One logged-in connection.
pub struct Connection {
    stream: Stream,
    /// Where it is connected (with Sentinel: the master the sentinels named).
    endpoint: Endpoint,
    /// Reply bytes read and not yet parsed.
    buf: Vec<u8>,
    limits: ReplyLimits,
    /// Set while an exchange is under way; still set after one failed or was cancelled.
    broken: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// `AUTH [user] password`, when there is a password.
fn auth_command(user: Option<&str>, password: Option<&str>) -> Option<Vec<Vec<u8>>> {
    let pw = password?;
    let mut auth = vec![b"AUTH".to_vec()];
    if let Some(user) = user {
        auth.push(user.as_bytes().to_vec());
    }
    auth.push(pw.as_bytes().to_vec());
    Some(auth)
}

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

impl Connection {
    /// Connects to `url` and logs in (`AUTH`, `SELECT`, `CLIENT SETNAME name`), all within
    /// `timeout`. With Sentinel (`redis-sentinel://`) the sentinels are asked for the
    /// master first, and the server must say `ROLE` master.
    ///
    /// # Errors
    ///
    /// The connect or login failure; a refused `AUTH` is [`ErrorKind::WrongPass`]; a
    /// server the sentinels named that is not (or no longer) the master is
    /// [`ErrorKind::ReadOnly`].
    pub async fn connect(
        url: &RedisUrl,
        name: &str,
        timeout: Duration,
    ) -> Result<Connection, RedisError> {
        let deadline = Instant::now() + timeout;
        let endpoint = match &url.sentinel {
            Some(s) => {
                let (host, port) =
                    super::sentinel::master_addr(s, url.tls.as_deref(), deadline).await?;
                Endpoint::Tcp(host, port)
            }
            None => url.endpoint.clone(),
        };
        Connection::login(url, endpoint, name, deadline).await
    }

    /// Connects to `endpoint` (a master a sentinel named on its pub/sub) with `url`'s
    /// credentials, TLS and database, and logs in as [`Connection::connect`] does; with
    /// Sentinel the server must say `ROLE` master.
    ///
    /// # Errors
    ///
    /// As [`Connection::connect`].
    pub async fn connect_to(
        url: &RedisUrl,
        endpoint: &Endpoint,
        name: &str,
        timeout: Duration,
    ) -> Result<Connection, RedisError> {
        let deadline = Instant::now() + timeout;
        Connection::login(url, endpoint.clone(), name, deadline).await
    }

    /// Opens `endpoint` and logs in (`AUTH`, `SELECT`, `CLIENT SETNAME`, and with
    /// Sentinel `ROLE`), by `deadline`.
    async fn login(
        url: &RedisUrl,
        endpoint: Endpoint,
        name: &str,
        deadline: Instant,
    ) -> Result<Connection, RedisError> {
        let check_role = url.sentinel.is_some();
        let mut conn = Connection::open(&endpoint, url.tls.as_deref(), deadline).await?;
        let mut login: Vec<Vec<Vec<u8>>> = Vec::new();
        if let Some(auth) = auth_command(url.user.as_deref(), url.password.as_deref()) {
            login.push(auth);
        }
        if url.db != 0 {
            login.push(vec![b"SELECT".to_vec(), url.db.to_string().into_bytes()]);
        }
        login.push(vec![
            b"CLIENT".to_vec(),
            b"SETNAME".to_vec(),
            name.as_bytes().to_vec(),
        ]);
        if check_role {
            login.push(vec![b"ROLE".to_vec()]);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let mut replies = conn.pipeline(&login, left).await?;
        let role = if check_role { replies.pop() } else { None };
        for reply in replies {
            check(reply)?;
        }
        if let Some(role) = role {
            let role = check(role)?;
            let word = role
                .as_array()
                .and_then(|r| r.first())
                .and_then(Value::as_bytes)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            if word != "master" {
                return Err(RedisError::Reply {
                    kind: ErrorKind::ReadOnly,
                    message: format!(
                        "READONLY {endpoint} says ROLE {word:?}, not master (a failover is \
                         under way)"
                    ),
                });
            }
        }
        Ok(conn)
    }

    /// Connects to `endpoint` (over TLS with `tls`) and logs in with `AUTH` only (a
    /// sentinel has no databases), within `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Connection::connect`].
    pub async fn connect_plain(
        endpoint: &Endpoint,
        user: Option<&str>,
        password: Option<&str>,
        tls: Option<&TlsFiles>,
        timeout: Duration,
    ) -> Result<Connection, RedisError> {
        let deadline = Instant::now() + timeout;
        let mut conn = Connection::open(endpoint, tls, deadline).await?;
        if let Some(auth) = auth_command(user, password) {
            let left = deadline.saturating_duration_since(Instant::now());
            for reply in conn.pipeline(&[auth], left).await? {
                check(reply)?;
            }
        }
        Ok(conn)
    }

    /// Opens the socket (with TLS: and makes the handshake), by `deadline`.
    async fn open(
        endpoint: &Endpoint,
        tls: Option<&TlsFiles>,
        deadline: Instant,
    ) -> Result<Connection, RedisError> {
        let stream = async {
            Ok(match endpoint {
                Endpoint::Tcp(host, port) => {
                    let s = TcpStream::connect((host.as_str(), *port)).await?;
                    let _ = s.set_nodelay(true);
                    match tls {
                        #[cfg(feature = "tls")]
                        Some(files) => {
                            Stream::Tls(Box::new(super::tls::handshake(s, host, files).await?))
                        }
                        #[cfg(not(feature = "tls"))]
                        Some(_) => return Err(io::Error::other("built without TLS")),
                        None => Stream::Tcp(s),
                    }
                }
                Endpoint::Unix(path) => Stream::Unix(UnixStream::connect(path).await?),
            })
        }
        .or(async {
            Timer::at(deadline).await;
            Err(io::ErrorKind::TimedOut.into())
        })
        .await
        .map_err(|e: io::Error| {
            if e.kind() == io::ErrorKind::TimedOut {
                RedisError::Timeout
            } else {
                RedisError::Io(e)
            }
        })?;
        Ok(Connection {
            stream,
            endpoint: endpoint.clone(),
            buf: Vec::new(),
            limits: ReplyLimits::default(),
            broken: false,
        })
    }

    /// Where this connection goes (with Sentinel: the master it was told of).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends a command without reading its reply (pub/sub: the reply comes as a push).
    ///
    /// # Errors
    ///
    /// The write's failure (it breaks the connection).
    pub async fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<(), RedisError> {
        if self.broken {
            return Err(RedisError::Broken);
        }
        let mut out = Vec::new();
        resp::encode(&mut out, args);
        self.broken = true;
        self.stream.write_all(&out).await.map_err(RedisError::Io)?;
        self.broken = false;
        Ok(())
    }

    /// The next value the server sends on its own (a pub/sub message), or `None` when
    /// none came within `timeout`. Waiting is safe to cancel: the connection stays usable.
    ///
    /// # Errors
    ///
    /// The socket's failure, or bytes that are not RESP2 (both break the connection).
    pub async fn next_push(&mut self, timeout: Duration) -> Result<Option<Value>, RedisError> {
        if self.broken {
            return Err(RedisError::Broken);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match resp::parse(&self.buf, self.limits) {
                Ok(Some((v, used))) => {
                    self.buf.drain(..used);
                    return Ok(Some(v));
                }
                Ok(None) => {}
                Err(e) => {
                    self.broken = true;
                    return Err(RedisError::Protocol(e));
                }
            }
            let mut chunk = [0u8; 4096];
            let n = async { Some(self.stream.read(&mut chunk).await) }
                .or(async {
                    Timer::at(deadline).await;
                    None
                })
                .await;
            match n {
                None => return Ok(None),
                Some(Ok(0)) => {
                    self.broken = true;
                    return Err(RedisError::Closed);
                }
                Some(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Some(Err(e)) => {
                    self.broken = true;
                    return Err(RedisError::Io(e));
                }
            }
        }
    }

    /// Whether an earlier exchange failed or was cancelled: the connection must go.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Sends one command and reads its reply within `timeout`. An error reply is
    /// `Err(RedisError::Reply)`; the connection stays usable after one.
    ///
    /// # Errors
    ///
    /// See [`RedisError`]; all but `Reply` break the connection.
    pub async fn call<A: AsRef<[u8]>>(
        &mut self,
        args: &[A],
        timeout: Duration,
    ) -> Result<Value, RedisError> {
        let mut out = Vec::new();
        resp::encode(&mut out, args);
        let mut replies = self.exchange(&out, 1, timeout).await?;
        check(replies.pop().ok_or(RedisError::Closed)?)
    }

    /// Sends `commands` in one write and reads one reply per command, all within
    /// `timeout`. Error replies are returned as [`Value::Error`] in their place.
    ///
    /// # Errors
    ///
    /// See [`RedisError`]; each breaks the connection.
    pub async fn pipeline<A: AsRef<[u8]>>(
        &mut self,
        commands: &[Vec<A>],
        timeout: Duration,
    ) -> Result<Vec<Value>, RedisError> {
        let mut out = Vec::new();
        for c in commands {
            resp::encode(&mut out, c);
        }
        self.exchange(&out, commands.len(), timeout).await
    }

    async fn exchange(
        &mut self,
        out: &[u8],
        replies: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>, RedisError> {
        if self.broken {
            return Err(RedisError::Broken);
        }
        // Cleared only when the whole exchange completes: a failure, a timeout or a
        // cancelled future leaves the connection marked broken.
        self.broken = true;
        let deadline = Instant::now() + timeout;
        let work = async {
            self.stream.write_all(out).await.map_err(RedisError::Io)?;
            let mut got = Vec::with_capacity(replies);
            while got.len() < replies {
                match resp::parse(&self.buf, self.limits).map_err(RedisError::Protocol)? {
                    Some((v, used)) => {
                        self.buf.drain(..used);
                        got.push(v);
                    }
                    None => {
                        let start = self.buf.len();
                        self.buf.resize(start + READ_CHUNK, 0);
                        let n = self.stream.read(&mut self.buf[start..]).await;
                        let n = n.map_err(RedisError::Io)?;
                        self.buf.truncate(start + n);
                        if n == 0 {
                            return Err(RedisError::Closed);
                        }
                    }
                }
            }
            Ok(got)
        };
        let result = work
            .or(async {
                Timer::at(deadline).await;
                Err(RedisError::Timeout)
            })
            .await;
        if result.is_ok() {
            self.broken = false;
            if self.buf.capacity() > 4 * READ_CHUNK && self.buf.is_empty() {
                self.buf = Vec::new();
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_classified() {
        for (msg, kind) in [
            (
                "LOADING Redis is loading the dataset in memory",
                ErrorKind::Loading,
            ),
            (
                "READONLY You can't write against a read only replica.",
                ErrorKind::ReadOnly,
            ),
            ("NOAUTH Authentication required.", ErrorKind::NoAuth),
            (
                "WRONGPASS invalid username-password pair or user is disabled.",
                ErrorKind::WrongPass,
            ),
            ("ERR invalid password", ErrorKind::WrongPass),
            (
                "OOM command not allowed when used memory > 'maxmemory'.",
                ErrorKind::Oom,
            ),
            ("MOVED 3999 127.0.0.1:6381", ErrorKind::Cluster),
            ("ASK 3999 127.0.0.1:6381", ErrorKind::Cluster),
            ("ERR unknown command", ErrorKind::Other),
        ] {
            assert_eq!(ErrorKind::of(msg), kind, "{msg}");
        }
    }
}
