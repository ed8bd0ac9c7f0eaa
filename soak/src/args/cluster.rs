//! The settings for several nodes and for outages: `--url` given more than once,
//! `--publish-to`, `--tolerate-unavailable` and `--extra-pid`, validated into a
//! [`Cluster`].
//!
//! With one `--url` the run is what it always was: one node, the report as before (the
//! fields of this file are left out of it).

use std::net::SocketAddr;

use serde::Serialize;

use super::{UsageError, destinations};
use crate::http::{BaseUrl, parse_url};

/// Most `--url`s (nodes) a run spreads over.
pub const MAX_NODES: usize = 64;

/// Where the publisher sends its requests when there are several nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublishTo {
    /// Every request to the first `--url`.
    One,
    /// Request `k` to node `k mod N`, one keep-alive connection per node.
    RoundRobin,
}

/// The flag values of this file as given.
#[derive(Debug, Default)]
pub(super) struct ClusterRaw {
    /// Every `--url`, in order (empty: only the default URL).
    pub(super) urls: Vec<String>,
    pub(super) publish_to: Option<PublishTo>,
    pub(super) tolerate_unavailable: bool,
    pub(super) extra_pids: Vec<u32>,
}

impl ClusterRaw {
    /// `--url`: the first one is also the run's `url`.
    pub(super) fn add_url(&mut self, url: &mut String, v: &str) -> Result<(), String> {
        if self.urls.len() == MAX_NODES {
            return Err(format!("at most {MAX_NODES} of them"));
        }
        if self.urls.is_empty() {
            v.clone_into(url);
        }
        self.urls.push(v.to_string());
        Ok(())
    }
}

/// One node: a server the subscribers are spread over.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The URL as given.
    pub url: String,
    /// The parsed URL.
    pub base: BaseUrl,
    /// Its destination addresses (`--sources`), used round-robin.
    pub dests: Vec<SocketAddr>,
}

/// Where one publish request goes (with `--publish-to round-robin`).
#[derive(Debug, Clone, PartialEq)]
pub struct PublishTarget {
    /// Connection address.
    pub addr: SocketAddr,
    /// `Host` header.
    pub host: String,
    /// Request target (`{prefix}/publish`).
    pub target: String,
}

/// Several nodes, expected outages and extra processes to sample. Flattened into the
/// configuration: each field is left out of the report when it has its default.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// The nodes, in `--url` order (one with a single `--url`).
    #[serde(skip)]
    pub nodes: Vec<Node>,
    /// Every `--url` (only with several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Where publishing goes (only with several nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_to: Option<PublishTo>,
    /// One publish target per node with `--publish-to round-robin`; empty otherwise
    /// (the publisher then uses the one target of [`super::Publish`]).
    #[serde(skip)]
    pub publish_targets: Vec<PublishTarget>,
    /// `503` answers to publishing are expected (counted, not failures), as long as
    /// publishing recovers.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tolerate_unavailable: bool,
    /// More processes to sample like the server (CPU, RSS), e.g. Redis or other nodes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_pids: Vec<u32>,
}

impl Cluster {
    /// Whether the run spreads over several nodes.
    pub fn several(&self) -> bool {
        self.nodes.len() > 1
    }
}

/// Validates the values of this file. `first` is the run's (first) URL, already parsed;
/// `publishing` whether the tool publishes, `explicit_publish_url` whether
/// `--publish-url` was given.
pub(super) fn validate(
    raw: ClusterRaw,
    first: &BaseUrl,
    first_url: &str,
    sources: u8,
    publishing: bool,
    explicit_publish_url: bool,
) -> Result<Cluster, UsageError> {
    let ClusterRaw {
        urls,
        publish_to,
        tolerate_unavailable,
        extra_pids,
    } = raw;
    let mut nodes = vec![Node {
        url: first_url.to_string(),
        base: first.clone(),
        dests: destinations(first, sources)?,
    }];
    for url in urls.iter().skip(1) {
        let base = parse_url(url).map_err(|e| UsageError(e.to_string()))?;
        nodes.push(Node {
            url: url.clone(),
            dests: destinations(&base, sources)?,
            base,
        });
    }
    if !publishing && (publish_to.is_some() || tolerate_unavailable) {
        return Err(UsageError(
            "--publish-to/--tolerate-unavailable need publishing (no --no-publish or --idle)"
                .into(),
        ));
    }
    let several = nodes.len() > 1;
    let publish_targets = match publish_to {
        Some(PublishTo::RoundRobin) if explicit_publish_url => {
            return Err(UsageError(
                "--publish-to round-robin publishes to each --url's /publish: it conflicts with --publish-url"
                    .into(),
            ));
        }
        Some(PublishTo::RoundRobin) if several => nodes
            .iter()
            .map(|n| PublishTarget {
                addr: n.base.addr,
                host: n.base.host.clone(),
                target: format!("{}/publish", n.base.prefix),
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Cluster {
        urls: several.then(|| urls.clone()),
        publish_to: (several && publishing).then(|| publish_to.unwrap_or(PublishTo::One)),
        nodes,
        publish_targets,
        tolerate_unavailable,
        extra_pids,
    })
}

/// `--publish-to`'s value.
pub(super) fn publish_to(v: &str) -> Result<PublishTo, String> {
    match v {
        "one" => Ok(PublishTo::One),
        "round-robin" => Ok(PublishTo::RoundRobin),
        _ => Err(format!("expected one or round-robin, got '{v}'")),
    }
}

#[cfg(test)]
mod tests {
    use crate::args::{Command, Config, parse};

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse(args.iter().copied()).map_err(|e| e.0)? {
            Command::Run(c) => Ok(*c),
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn one_url_is_one_node_and_changes_nothing() {
        let c = run(&["--duration", "5", "--url", "http://127.0.0.1:9000"]).unwrap();
        assert_eq!(c.cluster.nodes.len(), 1);
        assert!(!c.cluster.several());
        assert_eq!(c.cluster.nodes[0].dests, c.dests);
        assert_eq!((c.cluster.urls.clone(), c.cluster.publish_to), (None, None));
        let json = serde_json::to_value(&c).unwrap();
        for absent in ["urls", "publish_to", "tolerate_unavailable", "extra_pids"] {
            assert!(json.get(absent).is_none(), "{absent} in {json}");
        }
        // The default URL is one node too.
        let c = run(&["--duration", "5"]).unwrap();
        assert_eq!(c.cluster.nodes[0].url, "http://127.0.0.1:8080");
    }

    #[test]
    fn several_urls_are_nodes_in_order() {
        let c = run(&[
            "--duration",
            "5",
            "--url",
            "http://127.0.0.1:9000",
            "--url=http://127.0.0.1:9001/hub",
            "--url",
            "http://127.0.0.1:9002",
            "--sources",
            "2",
            "--publish-to",
            "round-robin",
            "--tolerate-unavailable",
            "--extra-pid",
            "12",
            "--extra-pid",
            "13",
        ])
        .unwrap();
        assert_eq!(c.url, "http://127.0.0.1:9000");
        let nodes = &c.cluster.nodes;
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[1].base.prefix, "/hub");
        assert_eq!(
            nodes[2].dests,
            vec![
                "127.0.0.1:9002".parse().unwrap(),
                "127.0.0.2:9002".parse().unwrap()
            ]
        );
        let t = &c.cluster.publish_targets;
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[1].host.as_str(), t[1].target.as_str()),
            ("127.0.0.1:9001", "/hub/publish")
        );
        assert!(c.cluster.tolerate_unavailable);
        assert_eq!(c.cluster.extra_pids, [12, 13]);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["publish_to"], "round-robin");
        assert_eq!(json["urls"].as_array().unwrap().len(), 3);

        let c = run(&[
            "--duration",
            "5",
            "--url",
            "http://127.0.0.1:9000",
            "--url",
            "http://127.0.0.1:9001",
        ])
        .unwrap();
        assert_eq!(c.cluster.publish_to, Some(super::PublishTo::One));
        assert!(c.cluster.publish_targets.is_empty());
    }

    #[test]
    fn conflicts_are_one_line() {
        let two = ["--url", "http://127.0.0.1:1", "--url", "http://127.0.0.1:2"];
        for (extra, flag) in [
            (&["--publish-to", "all"][..], "--publish-to"),
            (
                &[
                    "--publish-to",
                    "round-robin",
                    "--publish-url",
                    "http://127.0.0.1:3/pub",
                ][..],
                "--publish-url",
            ),
            (&["--no-publish", "--publish-to", "one"][..], "--publish-to"),
            (
                &["--idle", "--tolerate-unavailable"][..],
                "--tolerate-unavailable",
            ),
            (&["--url", "http://10.0.0.1:1"][..], "--url"),
            (&["--extra-pid", "x"][..], "--extra-pid"),
            (&["--server-cmd", "ssehub"][..], "--server-cmd"),
        ] {
            let mut args = vec!["--duration", "5"];
            args.extend(two);
            args.extend(extra);
            let e = run(&args).unwrap_err();
            assert!(e.contains(flag), "{args:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let mut args = vec!["--duration", "5"];
        let url = "--url=http://127.0.0.1:1";
        args.extend(std::iter::repeat_n(url, super::MAX_NODES + 1));
        assert!(run(&args).unwrap_err().contains("--url"));
    }
}
