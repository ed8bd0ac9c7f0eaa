//! Black-box integration tests of ssehub, in one binary so they link once.
//! Run with `cargo test --test tests`.

// Test harness: in-process server, the real binary, raw client, SSE parser.
mod support;

// Stream head, demo events, heartbeats, hang-ups, keep-alive, pipelining, client cap.
mod server;
// Fan-out through the hub: same events in order, slow-subscriber and write-timeout eviction.
mod hub_e2e;
// POST /publish: auth, JSON and text bodies, limits, multi-line data, topics.
mod publish;
// Last-Event-ID replay from the history.
mod replay;
// --history-file: restarts, kill -9, corruption, unusable paths, a full disk.
mod history_file;
// Private topics: tokens minted by PyJWT and jsonwebtoken, rights, 401 reasons, expiry.
mod auth;
// The token lifecycle (#24): token-expiring, 401 on both paths, the per-token cap; /ssehub.js.
mod token_lifecycle;
// Tagged streams (#24): ?tagged=1 names each event's topics and privacy; plain unchanged.
mod tagged;
// The ssehub binary: flags, exit codes, signals, stdin mode.
mod binary;
// Malformed and oversized requests, and attacks: each answered precisely, others unharmed.
mod hardening;
// Real clients: curl and nc.
mod clients;
// /stats and /metrics after real traffic, checked with a Prometheus parser; HEAD.
mod metrics;
// Hostile clients and honest answers: flooding a stream, lingering close, bounded
// metrics, descriptor exhaustion.
mod hostile;
// The shape of the code: one-way dependencies, file sizes.
mod layout;
// Docs point at files that exist (docs/, README.md, the crate and module docs).
mod doc_paths;
// RFC 9110 / RFC 9112 requirements, one test each (docs/http-conformance.md lists them).
mod conformance;
// The Redis client against a real redis-server.
mod redis_client;
// Several nodes on one Redis: one order, replay on any node, outages and losses.
mod cluster;
// Resets on Redis nodes: a short stream, an id beyond the stream, a lagging node.
mod cluster_resets;
// TLS to Redis: the right CA, a wrong CA, an expired certificate.
mod redis_tls;
// Sentinel: failovers followed, losses announced, WAIT keeps answered events.
mod sentinel;
// Every kind of event (alternate topics, private, publisher ids, idempotent retries)
// through each backend of the publish port: memory, a history file, three Redis nodes.
mod events;
// Running as a daemon: systemd notify and watchdog, socket activation, the units, the
// static binary in an empty root.
mod daemon;
// The Mercure path with Mercure's own clients: Symfony's publisher (php-symfony-mercure),
// form posts; selectors, Mercure's token rules, resume headers, the CSRF rule.
mod mercure;
// Mercure 1.0 access tokens (RFC 9068): rights, cookie, RFC 6750 refusals; RS256, ES256.
mod mercure_tokens;
// Mercure's active subscriptions: the list in both shapes, the events, the storm bound.
mod mercure_subscriptions;
// A key per role (--jwt-publisher-key, --jwt-subscriber-key): neither token serves the other.
mod mercure_keys;
// Mercure clients resuming on another Redis node and after a restart with a history file.
mod mercure_resume;
// The jittered drain on SIGTERM (#22): stream ends spread within grace; --drain-spread 0.
mod drain;
// Behind real reverse proxies (nginx, Caddy with HTTP/2 and Chromium), and the soak
// tool's proxy doctor.
mod proxy;
// SIGUSR2: live streams, listeners and history handed to a successor; rollback.
mod handover;
// The capacity plan's tools (#25): the soak tool over several source addresses and
// processes.
mod capacity;
