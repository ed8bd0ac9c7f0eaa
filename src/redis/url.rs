//! Where the Redis server is and how to log in: `redis://[user:password@]host:port[/db]`,
//! `unix:///path/to/socket[?db=N]` (user and password as `unix://user:pass@/path`), or
//! through Sentinel:
//! `redis-sentinel://[user:password@]host:port[,host:port…]/MASTER-NAME[/db][?redis_user=U&redis_password=P]`,
//! or `rediss-sentinel://…` for TLS to the sentinels and to the master alike (Lettuce's
//! scheme pair; `redis+sentinel://` and `rediss+sentinel://`, the Python world's
//! spelling, are taken too).
//!
//! With Sentinel the credentials before `@` are the sentinels' and, unless
//! `redis_user` / `redis_password` say otherwise, Redis's too (one password for both is
//! the common setup; the query sets Redis's own when they differ).

use std::fmt;
use std::path::PathBuf;

/// The default Redis port.
pub const DEFAULT_PORT: u16 = 6379;
/// The default Sentinel port.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// Where the trust and the client's identity come from (`--redis-ca`, `--redis-cert`,
/// `--redis-key`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificates (PEM) to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// The client certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key: Option<PathBuf>,
}

/// The sentinels to ask for the master (`redis-sentinel://`).
#[derive(Clone, PartialEq, Eq)]
pub struct Sentinels {
    /// The sentinels, `host:port`, asked in order.
    pub addrs: Vec<(String, u16)>,
    /// The master's name in the sentinels' configuration.
    pub master: String,
    /// The sentinels' ACL user, if any.
    pub user: Option<String>,
    /// The sentinels' password, if any.
    pub password: Option<String>,
}

/// A parsed Redis address and credentials. Its `Debug` and `Display` never show the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// The ACL user, if any (`AUTH user password`; without it `AUTH password`).
    pub user: Option<String>,
    /// The password, if any.
    pub password: Option<String>,
    /// The database to `SELECT` (0 by default).
    pub db: u32,
    /// With Sentinel: the sentinels that say where the master is (`endpoint` is then
    /// the first sentinel's, unused).
    pub sentinel: Option<Box<Sentinels>>,
    /// TLS (`rediss://`), with where its trust and identity come from.
    pub tls: Option<Box<TlsFiles>>,
}

/// A TCP host and port, or a unix socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `host:port`.
    Tcp(String, u16),
    /// A unix socket path.
    Unix(String),
}

impl fmt::Debug for Sentinels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sentinels")
            .field("addrs", &self.addrs)
            .field("master", &self.master)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(h, p) => write!(f, "{h}:{p}"),
            Endpoint::Unix(path) => write!(f, "unix:{path}"),
        }
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match (&self.user, &self.password) {
            (Some(u), _) => format!("{u}:***@"),
            (None, Some(_)) => ":***@".to_owned(),
            (None, None) => String::new(),
        };
        if let Some(s) = &self.sentinel {
            let hosts: Vec<String> = s.addrs.iter().map(|(h, p)| format!("{h}:{p}")).collect();
            let sauth = match (&s.user, &s.password) {
                (Some(u), _) => format!("{u}:***@"),
                (None, Some(_)) => ":***@".to_owned(),
                (None, None) => String::new(),
            };
            let scheme = if self.tls.is_some() {
                "rediss-sentinel"
            } else {
                "redis-sentinel"
            };
            return write!(
                f,
                "{scheme}://{sauth}{}/{}/{}",
                hosts.join(","),
                s.master,
                self.db
            );
        }
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match &self.endpoint {
            Endpoint::Tcp(h, p) => write!(f, "{scheme}://{auth}{h}:{p}/{}", self.db),
            Endpoint::Unix(path) => write!(f, "unix://{auth}{path}?db={}", self.db),
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// Decodes `%XX` escapes (user names and passwords may hold `@` or `:`).
fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad %-escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials are not UTF-8".to_owned())
}

/// `host[:port]` (IPv6 in brackets), with `default` for a missing port.
fn host_port(hostport: &str, default: u16) -> Result<(String, u16), String> {
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse().map_err(|_| "port must be a number")?)
        }
        _ => (hostport, default),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("missing host".into());
    }
    Ok((host.to_owned(), port))
}

/// The value of `name` in a `a=1&b=2` query, percent-decoded.
fn query_value(query: Option<&str>, name: &str) -> Result<Option<String>, String> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(percent_decode)
        .transpose()
}

impl RedisUrl {
    /// Parses a URL.
    ///
    /// # Errors
    ///
    /// A one-line reason (which never holds the password).
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub::redis::{Endpoint, RedisUrl};
    /// let u = RedisUrl::parse("redis://app:s%40cret@127.0.0.1:6380/2").unwrap();
    /// assert_eq!(u.endpoint, Endpoint::Tcp("127.0.0.1".into(), 6380));
    /// assert_eq!((u.user.as_deref(), u.password.as_deref(), u.db), (Some("app"), Some("s@cret"), 2));
    /// assert_eq!(u.to_string(), "redis://app:***@127.0.0.1:6380/2");
    /// let u = RedisUrl::parse("unix:///run/redis.sock").unwrap();
    /// assert_eq!(u.endpoint, Endpoint::Unix("/run/redis.sock".into()));
    /// ```
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("expected redis://host:port or unix:///path")?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (user, password) = match auth {
            None => (None, None),
            Some(a) => {
                let (u, p) = match a.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => ("", Some(a)),
                };
                let user = (!u.is_empty()).then(|| percent_decode(u)).transpose()?;
                let password = p
                    .filter(|p| !p.is_empty())
                    .map(percent_decode)
                    .transpose()?;
                (user, password)
            }
        };
        match scheme {
            "redis" | "rediss" => {
                if scheme == "rediss" && !cfg!(feature = "tls") {
                    return Err(
                        "rediss:// needs TLS, and this ssehub was built without the \
                                tls feature"
                            .into(),
                    );
                }
                let (hostport, db) = match rest.split_once('/') {
                    Some((h, "")) => (h, 0),
                    Some((h, d)) => (h, d.parse().map_err(|_| "database must be a number")?),
                    None => (rest, 0),
                };
                let (host, port) = host_port(hostport, DEFAULT_PORT)?;
                Ok(RedisUrl {
                    endpoint: Endpoint::Tcp(host, port),
                    user,
                    password,
                    db,
                    sentinel: None,
                    tls: (scheme == "rediss").then(Box::default),
                })
            }
            "unix" => {
                let (path, query) = match rest.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (rest, None),
                };
                if !path.starts_with('/') {
                    return Err("unix socket path must be absolute: unix:///path".into());
                }
                let db = match query.and_then(|q| q.strip_prefix("db=")) {
                    Some(d) => d.parse().map_err(|_| "db must be a number")?,
                    None => 0,
                };
                Ok(RedisUrl {
                    endpoint: Endpoint::Unix(path.to_owned()),
                    user,
                    password,
                    db,
                    sentinel: None,
                    tls: None,
                })
            }
            "redis-sentinel" | "rediss-sentinel" | "redis+sentinel" | "rediss+sentinel" => {
                let tls = scheme.starts_with("rediss");
                if tls && !cfg!(feature = "tls") {
                    return Err(format!(
                        "{scheme}:// needs TLS, and this ssehub was built without the tls feature"
                    ));
                }
                let (rest, query) = match rest.split_once('?') {
                    Some((r, q)) => (r, Some(q)),
                    None => (rest, None),
                };
                let mut parts = rest.split('/');
                let hosts = parts.next().unwrap_or("");
                let master = parts.next().unwrap_or("");
                if master.is_empty() {
                    return Err(
                        "expected redis-sentinel://host:port[,host:port…]/MASTER-NAME[/db]".into(),
                    );
                }
                let db = match parts.next() {
                    None | Some("") => 0,
                    Some(d) => d.parse().map_err(|_| "database must be a number")?,
                };
                if parts.next().is_some() {
                    return Err("too many path parts after the master name".into());
                }
                let addrs = hosts
                    .split(',')
                    .map(|h| host_port(h, DEFAULT_SENTINEL_PORT))
                    .collect::<Result<Vec<_>, _>>()?;
                let redis_user = query_value(query, "redis_user")?;
                let redis_password = query_value(query, "redis_password")?;
                if let Some(q) = query {
                    for kv in q.split('&') {
                        let k = kv.split('=').next().unwrap_or("");
                        if !matches!(k, "redis_user" | "redis_password") {
                            return Err(format!(
                                "unknown parameter {k:?}: expected redis_user or redis_password"
                            ));
                        }
                    }
                }
                let (h, p) = addrs[0].clone();
                Ok(RedisUrl {
                    endpoint: Endpoint::Tcp(h, p),
                    user: redis_user.or_else(|| user.clone()),
                    password: redis_password.or_else(|| password.clone()),
                    db,
                    sentinel: Some(Box::new(Sentinels {
                        addrs,
                        master: percent_decode(master)?,
                        user,
                        password,
                    })),
                    tls: tls.then(Box::default),
                })
            }
            other => Err(format!(
                "unknown scheme {other:?}: expected redis://, rediss://, unix://, \
                 redis-sentinel:// or rediss-sentinel://"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = RedisUrl::parse("redis://localhost").unwrap();
        assert_eq!(u.endpoint, Endpoint::Tcp("localhost".into(), 6379));
        assert_eq!((u.user, u.password, u.db), (None, None, 0));
        let u = RedisUrl::parse("redis://:pw@h:1/").unwrap();
        assert_eq!((u.user, u.password.as_deref()), (None, Some("pw")));
        let u = RedisUrl::parse("redis://pw@h:1").unwrap();
        assert_eq!(u.password.as_deref(), Some("pw"));
        let u = RedisUrl::parse("redis://[::1]:7000/3").unwrap();
        assert_eq!(u.endpoint, Endpoint::Tcp("::1".into(), 7000));
        assert_eq!(u.db, 3);
        let u = RedisUrl::parse("rediss://h:6380").unwrap();
        assert_eq!(u.tls.is_some(), cfg!(feature = "tls"));
        assert_eq!(u.to_string(), "rediss://h:6380/0");
        let u = RedisUrl::parse("unix://u:p@/tmp/r.sock?db=4").unwrap();
        assert_eq!(u.endpoint, Endpoint::Unix("/tmp/r.sock".into()));
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref(), u.db),
            (Some("u"), Some("p"), 4)
        );
    }

    #[test]
    fn sentinel_forms() {
        let u = RedisUrl::parse("redis-sentinel://s1,s2:26380,[::1]:7/mymaster/2").unwrap();
        let s = u.sentinel.as_ref().unwrap();
        assert_eq!(
            s.addrs,
            vec![
                ("s1".to_owned(), 26379),
                ("s2".to_owned(), 26380),
                ("::1".to_owned(), 7)
            ]
        );
        assert_eq!((s.master.as_str(), u.db), ("mymaster", 2));
        assert_eq!((u.user, u.password), (None, None));
        // One password for both, or Redis's own from the query.
        let u = RedisUrl::parse("redis-sentinel://ops:sp@h/m").unwrap();
        let s = u.sentinel.as_ref().unwrap();
        assert_eq!(
            (s.user.as_deref(), s.password.as_deref()),
            (Some("ops"), Some("sp"))
        );
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref()),
            (Some("ops"), Some("sp"))
        );
        let u = RedisUrl::parse("redis-sentinel://:sp@h/m?redis_user=app&redis_password=r%26p")
            .unwrap();
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref()),
            (Some("app"), Some("r&p"))
        );
        assert_eq!(u.sentinel.as_ref().unwrap().password.as_deref(), Some("sp"));
        assert!(!format!("{u} {u:?}").contains("sp@") && !u.to_string().contains("r&p"));
        assert_eq!(u.to_string(), "redis-sentinel://:***@h:26379/m/0");
        // TLS to the sentinels and the master.
        for scheme in ["rediss-sentinel", "rediss+sentinel"] {
            let u = RedisUrl::parse(&format!("{scheme}://s1:26380/m")).unwrap();
            assert_eq!(u.tls.is_some(), cfg!(feature = "tls"));
            if cfg!(feature = "tls") {
                assert_eq!(u.to_string(), "rediss-sentinel://s1:26380/m/0");
            }
        }
        let u = RedisUrl::parse("redis+sentinel://s1/m").unwrap();
        assert!(u.tls.is_none() && u.sentinel.is_some());
    }

    #[test]
    fn errors_are_one_line_and_never_show_the_password() {
        for bad in [
            "localhost:6379",
            "redis://h:port",
            "redis://h:1/x",
            "redis://",
            "unix://relative.sock",
            "http://h",
            "redis://u:%zz@h",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert!(!e.contains('\n') && !e.contains("zz"), "{bad}: {e}");
        }
        for bad in [
            "redis-sentinel://h:1",
            "redis-sentinel://h:1/",
            "redis-sentinel://h:x/m",
            "redis-sentinel://h:1,/m",
            "redis-sentinel://h:1/m/x",
            "redis-sentinel://h:1/m?nope=1",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
        let u = RedisUrl::parse("redis-sentinel://u:topsecret@h:1/m?redis_password=alsosecret")
            .unwrap();
        assert!(!format!("{u} {u:?}").contains("secret"));
        let u = RedisUrl::parse("redis://u:topsecret@h:1").unwrap();
        assert!(!format!("{u} {u:?}").contains("topsecret"));
    }
}
