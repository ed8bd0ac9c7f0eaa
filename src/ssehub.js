// ssehub.js: one event stream per browser, shared by its tabs. Served by ssehub at /ssehub.js.
//
//   const source = new SsehubSource("/stream?topic=news", { refresh: () => fetch("/token") });
//   source.onmessage = (e) => console.log(e.data, e.topics, e.private);
//   source.addEventListener("alert", (e) => console.log(e.lastEventId, e.data));
//
// The EventSource interface: onopen, onmessage, onerror, addEventListener,
// removeEventListener, readyState, url, withCredentials, close(); and more:
//   shared       true when the tabs share streams (Web Locks and BroadcastChannel are there);
//                false: this tab holds a stream of its own (an insecure context, an old
//                browser, or options.shared === false).
//   leader       true while this tab holds the stream.
//   stream       the URL of the stream this tab's events come from (its own topics, or a
//                wider set another tab opened), once known.
//   lastEventId  the last id the group saw.
// Each event (a MessageEvent) also has `topics` (the event's topics, its own first) and
// `private` (true for a private event): the stream is read with ?tagged=1.
//
// The stream is read with fetch() and a parser of its own (the WHATWG event-stream rules),
// not EventSource, which hides the tag fields. It reconnects as EventSource does (after the
// server's retry:, from the last id) and gives up on a refusal (a status other than 200).
//
// Sharing: tabs of one origin whose URLs differ at most in their topics may share one
// stream. A tab joins a group that is open already when its stream covers the tab's topics
// (the same path and other parameters; no topic = every topic; else a superset of the
// tab's topics), the narrowest such; otherwise it starts a group of its own. A group elects
// one leader with a Web Lock named after the group's stream; the leader reads the stream
// and relays every event (named ones too, reset, token-expiring; ids) over a
// BroadcastChannel of the same name, and each tab keeps those of its own topics (by the
// tag: an event on any of them), so every tab sees its events in the same order. When the
// leader's tab closes, the next tab in the lock's queue leads at once and opens the group's
// stream from the last id the group saw (?lastEventId=), and ids already seen are skipped:
// nothing is missed or repeated. A URL with ?lastEventId= asked for a replay: it forms a
// group of its own.
//
// Tokens: on a token-expiring event the leader calls options.refresh() (a Promise, e.g. one
// that sets a fresh cookie), then opens a new stream from its last id and closes the old
// one once the new one is open: no gap, no duplicate.
(function (root) {
  "use strict";
  const CONNECTING = 0, OPEN = 1, CLOSED = 2;
  const KEEP_IDS = 1000; // ids remembered to skip a repeat after a handover or a refresh
  const PREFIX = "ssehub:";
  const RETRY_MS = 3000; // until the server's retry: says otherwise

  /** A stream URL's parts: its base (every parameter but topic and tagged, sorted) and its
   * topics (sorted, each once; null: every topic). */
  function parts(href) {
    const u = new URL(href);
    const topics = [...new Set(u.searchParams.getAll("topic"))].sort();
    const rest = [...u.searchParams].filter(([k]) => k !== "topic" && k !== "tagged");
    rest.sort((a, b) => (a[0] + "=" + a[1] < b[0] + "=" + b[1] ? -1 : 1));
    u.search = new URLSearchParams(rest).toString();
    u.hash = "";
    return { base: u.href, topics: topics.length ? topics : null };
  }

  /** The URL of the stream on `base` with `topics`. */
  function streamUrl(base, topics) {
    const u = new URL(base);
    for (const t of topics || []) u.searchParams.append("topic", t);
    return u.href;
  }

  /** Whether a stream on `wide` topics carries every event a tab on `narrow` wants. */
  function covers(wide, narrow) {
    if (wide === null) return true;
    if (narrow === null) return false;
    const have = new Set(wide);
    return narrow.every((t) => have.has(t));
  }

  const groupKey = (base, topics) => PREFIX + JSON.stringify([base, topics]);

  /** The event-stream parser: feed it text, it calls `onEvent` per dispatched event and
   * `onRetry` per retry: field. Besides the standard fields it reads ssehub's tags,
   * `topic:` (one per topic) and `private:`. */
  class Parser {
    constructor(onEvent, onRetry) {
      this.onEvent = onEvent;
      this.onRetry = onRetry;
      this.buf = "";
      this.lastId = "";
      this.clear();
    }

    clear() {
      this.data = [];
      this.type = "";
      this.idSet = false;
      this.topics = [];
      this.private = false;
    }

    feed(text) {
      this.buf += text;
      let start = 0;
      for (;;) {
        const cr = this.buf.indexOf("\r", start), lf = this.buf.indexOf("\n", start);
        if (cr < 0 && lf < 0) break;
        const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
        // A CR at the end may be the first half of a CRLF: wait for the next chunk.
        if (end === cr && end === this.buf.length - 1) break;
        this.line(this.buf.slice(start, end));
        start = end + (end === cr && this.buf[end + 1] === "\n" ? 2 : 1);
      }
      this.buf = this.buf.slice(start);
    }

    line(line) {
      if (line === "") return this.dispatch();
      if (line[0] === ":") return undefined;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "data") this.data.push(value);
      else if (field === "event") this.type = value;
      else if (field === "id" && !value.includes("\0")) { this.lastId = value; this.idSet = true; }
      else if (field === "retry" && /^[0-9]+$/.test(value)) this.onRetry(Number(value));
      else if (field === "topic") this.topics.push(value);
      else if (field === "private") this.private = value === "1";
      return undefined;
    }

    dispatch() {
      if (this.data.length) {
        this.onEvent({
          type: this.type || "message", data: this.data.join("\n"), lastEventId: this.lastId,
          id: this.idSet ? this.lastId : null, topics: this.topics, private: this.private,
        });
      }
      this.clear();
    }
  }

  class SsehubSource extends EventTarget {
    constructor(url, options = {}) {
      super();
      this.url = new URL(url, root.location.href).href;
      this.withCredentials = !!options.withCredentials;
      this.readyState = CONNECTING;
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      this.lastEventId = new URL(this.url).searchParams.get("lastEventId") || "";
      this.leader = false;
      this.stream = null;
      this.shared = options.shared !== false && !!(root.navigator && root.navigator.locks) &&
        typeof root.BroadcastChannel === "function";
      this._refresh = options.refresh;
      this._seen = new Set();
      this._conn = null;
      this._old = null;
      const { base, topics } = parts(this.url);
      this._base = base;
      this._origin = new URL(base).origin;
      this._topics = topics;
      this._wanted = topics && new Set(topics);
      if (!this.shared) { this._join(topics); this._lead(); return; }
      this._pick().then((wide) => { if (!this._closed) this._enter(wide); });
    }

    /** The topics of the narrowest open group on this base whose stream covers this tab's
     * (this tab's own when there is none). */
    async _pick() {
      let best = this._topics;
      if (typeof root.navigator.locks.query !== "function") return best;
      try {
        const snapshot = await root.navigator.locks.query();
        let found = null;
        for (const lock of [...(snapshot.held || []), ...(snapshot.pending || [])]) {
          if (!lock.name || !lock.name.startsWith(PREFIX)) continue;
          let group;
          try { group = JSON.parse(lock.name.slice(PREFIX.length)); } catch (_) { continue; }
          if (!Array.isArray(group) || group[0] !== this._base || !covers(group[1], this._topics)) continue;
          const size = group[1] === null ? Infinity : group[1].length;
          if (!found || size < found.size) found = { topics: group[1], size };
        }
        if (found) best = found.topics;
      } catch (_) { /* no snapshot: a group of its own */ }
      return best;
    }

    _join(topics) {
      this._group = topics;
      this.stream = streamUrl(this._base, topics);
      const u = new URL(this.url);
      const resume = u.searchParams.get("lastEventId");
      if (resume) { const s = new URL(this.stream); s.searchParams.set("lastEventId", resume); this.stream = s.href; }
    }

    /** Joins the group of the stream on `topics`: its channel, and its lock's queue. */
    _enter(topics) {
      this._join(topics);
      const key = groupKey(this._base, topics);
      this._channel = new root.BroadcastChannel(key);
      this._channel.onmessage = (m) => this._onPost(m.data);
      this._abort = new AbortController();
      root.navigator.locks.request(key, { signal: this._abort.signal }, () => {
        if (this._closed) return undefined;
        this._lead();
        return new Promise((release) => { this._release = release; });
      }).catch(() => { /* aborted by close() */ });
      this._post({ t: "hello" });
    }

    close() {
      if (this._closed) return;
      this._closed = true;
      this.readyState = CLOSED;
      this._drop(this._conn);
      this._drop(this._old);
      this._conn = this._old = null;
      clearTimeout(this._retryTimer);
      if (this.shared) {
        if (this._abort) this._abort.abort();
        if (this._release) this._release();
        if (this._channel) this._channel.close();
      }
      this.leader = false;
    }

    // ---- the leader's side ----

    _lead() {
      this.leader = true;
      this._retryMs = RETRY_MS;
      this._open(this.lastEventId);
    }

    _drop(conn) {
      if (conn) { conn.dropped = true; conn.ctl.abort(); }
    }

    /** Opens the group's stream from `resume` (an id, or "" for none). */
    _open(resume) {
      const u = new URL(this.stream);
      u.searchParams.set("tagged", "1");
      if (resume) u.searchParams.set("lastEventId", resume); else u.searchParams.delete("lastEventId");
      const conn = { ctl: new AbortController(), dropped: false };
      this._conn = conn;
      if (this.readyState !== OPEN) this._state(CONNECTING, null);
      this._read(conn, u.href);
    }

    async _read(conn, href) {
      let response;
      try {
        response = await root.fetch(href, {
          signal: conn.ctl.signal, cache: "no-store", headers: { Accept: "text/event-stream" },
          credentials: this.withCredentials ? "include" : "same-origin",
        });
      } catch (_) {
        return this._lost(conn);
      }
      if (conn.dropped) return undefined;
      const type = response.headers.get("Content-Type") || "";
      if (response.status !== 200 || !type.startsWith("text/event-stream") || !response.body) {
        // Refused (401, 429, …): as EventSource, give up and say so.
        if (conn !== this._conn) return undefined;
        this._state(CLOSED, "error");
        this.close();
        return undefined;
      }
      if (conn === this._conn) {
        this._drop(this._old);
        this._old = null;
        this._state(OPEN, "open");
      }
      const parser = new Parser((ev) => this._fromStream(conn, ev), (ms) => { this._retryMs = ms; });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } catch (_) { /* ended by abort or a network error */ }
      return this._lost(conn);
    }

    /** The stream ended: reconnect after retry: from the last id, as EventSource does. */
    _lost(conn) {
      if (conn.dropped || conn !== this._conn || this._closed) return undefined;
      this._state(CONNECTING, "error");
      clearTimeout(this._retryTimer);
      this._retryTimer = setTimeout(() => {
        if (!this._closed && this.leader && conn === this._conn) this._open(this.lastEventId);
      }, this._retryMs);
      return undefined;
    }

    _fromStream(conn, ev) {
      if (conn.dropped) return;
      const msg = Object.assign({ t: "event", origin: this._origin }, ev);
      if (!this._take(msg)) return;
      if (this.shared) this._post(msg);
      if (ev.type === "token-expiring" && conn === this._conn) this._renew();
    }

    /** token-expiring: refresh, then a new stream from the last id; the old one closes once it is open. */
    async _renew() {
      if (typeof this._refresh !== "function" || this._renewing) return;
      this._renewing = true;
      try {
        await this._refresh();
        if (this._closed || !this.leader) return;
        this._old = this._conn;
        this._open(this.lastEventId);
      } catch (_) {
        this._emit(new Event("error"));
      } finally {
        this._renewing = false;
      }
    }

    _state(readyState, event) {
      this.readyState = readyState;
      if (this.shared) this._post({ t: "state", readyState, event });
      if (event) this._emit(new Event(event));
    }

    // ---- every tab ----

    /** Takes an event of the group's stream: skipped when its id was seen (false), else
     * dispatched when it is on this tab's topics (or on none: reset, token-expiring). */
    _take(msg) {
      if (msg.id) {
        if (this._seen.has(msg.id)) return false;
        this._seen.add(msg.id);
        if (this._seen.size > KEEP_IDS) this._seen.delete(this._seen.values().next().value);
        this.lastEventId = msg.id;
      }
      if (this._wanted && msg.topics.length && !msg.topics.some((t) => this._wanted.has(t))) return true;
      const ev = new MessageEvent(msg.type, { data: msg.data, lastEventId: msg.lastEventId, origin: msg.origin });
      ev.topics = msg.topics;
      ev.private = msg.private;
      this._emit(ev);
      return true;
    }

    _emit(ev) {
      this.dispatchEvent(ev);
      const handler = this["on" + ev.type];
      if ((ev.type === "message" || ev.type === "open" || ev.type === "error") && typeof handler === "function") {
        handler.call(this, ev);
      }
    }

    _post(msg) {
      try { this._channel.postMessage(msg); } catch (_) { /* closed */ }
    }

    _onPost(msg) {
      if (this._closed) return;
      if (msg.t === "hello") {
        if (this.leader) {
          this._post({ t: "state", readyState: this.readyState, event: this.readyState === OPEN ? "open" : null });
        }
      } else if (this.leader) {
        // Another leader's words (a handover in flight): this tab's own stream is the truth.
      } else if (msg.t === "event") {
        this._take(msg);
      } else if (msg.t === "state") {
        const was = this.readyState;
        // The leader's stream closed: another tab (maybe this one) leads next.
        this.readyState = msg.readyState === CLOSED ? CONNECTING : msg.readyState;
        if (msg.event && !(msg.event === "open" && was === OPEN)) this._emit(new Event(msg.event));
      }
    }
  }
  SsehubSource.CONNECTING = CONNECTING;
  SsehubSource.OPEN = OPEN;
  SsehubSource.CLOSED = CLOSED;
  // The event-stream parser, for a page that reads a stream of its own (and for tests):
  // new SsehubSource.Parser(onEvent, onRetry), then parser.feed(text) for each chunk.
  SsehubSource.Parser = Parser;
  root.SsehubSource = SsehubSource;
})(typeof window !== "undefined" ? window : self);
