// ssehub.js: one event stream per browser, shared by its tabs. Served by ssehub at /ssehub.js.
//
//   const source = new SsehubSource("/stream?topic=news", { refresh: () => fetch("/token") });
//   source.onmessage = (e) => console.log(e.data);
//   source.addEventListener("alert", (e) => console.log(e.lastEventId, e.data));
//
// The EventSource interface: onopen, onmessage, onerror, addEventListener,
// removeEventListener, readyState, url, withCredentials, close(); and more:
//   shared       true when the tabs share one stream (Web Locks and BroadcastChannel are
//                there); false: this tab holds a stream of its own (an insecure context, an
//                old browser, or options.shared === false).
//   leader       true while this tab holds the stream.
//   lastEventId  the last id the group saw.
//
// Sharing: tabs of one origin that open the same URL (same path, same query parameters in
// any order) elect one leader with a Web Lock named after the URL. The
// leader holds the only EventSource and relays every event (named ones too, reset,
// token-expiring; ids and lastEventId) over a BroadcastChannel of the same name, so every
// tab sees the same events in the same order. When the leader's tab closes, the next tab
// in the lock's queue leads at once and resumes from the last id the group saw
// (?lastEventId=), and ids already seen are skipped: nothing is missed or repeated. Tabs
// with other URLs form groups of their own (one with ?lastEventId= too: it asked for a replay). A named event reaches the tabs once one of
// them listens for that name (as with EventSource, which reports only names listened to).
//
// Tokens: on a token-expiring event the leader calls options.refresh() (a Promise, e.g. one
// that sets a fresh cookie), then opens a new stream from its last id and closes the old
// one once the new one is open: no gap, no duplicate.
(function (root) {
  "use strict";
  const CONNECTING = 0, OPEN = 1, CLOSED = 2;
  const KEEP_IDS = 1000; // ids remembered to skip a repeat after a handover or a refresh
  const ALWAYS = ["message", "reset", "token-expiring"];

  /** The URL with its query sorted: the group's name. */
  function groupKey(href) {
    const u = new URL(href);
    const params = [...u.searchParams];
    params.sort((a, b) => (a[0] + "=" + a[1] < b[0] + "=" + b[1] ? -1 : 1));
    u.search = new URLSearchParams(params).toString();
    u.hash = "";
    return "ssehub:" + u.href;
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
      this.shared = options.shared !== false && !!(root.navigator && root.navigator.locks) &&
        typeof root.BroadcastChannel === "function";
      this._refresh = options.refresh;
      this._names = new Set(ALWAYS);
      this._seen = new Set();
      this._es = null;
      this._key = groupKey(this.url);
      if (!this.shared) { this._lead(); return; }
      this._channel = new root.BroadcastChannel(this._key);
      this._channel.onmessage = (m) => this._onPost(m.data);
      this._abort = new AbortController();
      root.navigator.locks.request(this._key, { signal: this._abort.signal }, () => {
        if (this._closed) return undefined;
        this._lead();
        return new Promise((release) => { this._release = release; });
      }).catch(() => { /* aborted by close() */ });
      this._post({ t: "hello", names: [...this._names] });
    }

    addEventListener(type, listener, options) {
      super.addEventListener(type, listener, options);
      if (type === "open" || type === "error" || this._names.has(type)) return;
      this._names.add(type);
      if (this._es) this._es.addEventListener(type, this._relay);
      if (this.shared) this._post({ t: "names", names: [type] });
    }

    close() {
      if (this._closed) return;
      this._closed = true;
      this.readyState = CLOSED;
      if (this._es) { this._es.close(); this._es = null; }
      if (this._old) { this._old.close(); this._old = null; }
      if (this.shared) {
        this._abort.abort();
        if (this._release) this._release();
        this._channel.close();
      }
      this.leader = false;
    }

    // ---- the leader's side ----

    _lead() {
      this.leader = true;
      this._relay = (e) => this._fromStream(e);
      this._open(this.lastEventId);
    }

    /** Opens a stream from `resume` (an id, or "" for none). */
    _open(resume) {
      const u = new URL(this.url);
      if (resume) u.searchParams.set("lastEventId", resume); else u.searchParams.delete("lastEventId");
      const es = new root.EventSource(u.href, { withCredentials: this.withCredentials });
      es._prevId = "";
      for (const name of this._names) es.addEventListener(name, this._relay);
      es.onopen = () => {
        if (es !== this._es) return;
        if (this._old) { this._old.close(); this._old = null; }
        this._state(OPEN, "open");
      };
      es.onerror = () => {
        if (es !== this._es) return;
        this._state(es.readyState === CLOSED ? CLOSED : CONNECTING, "error");
        if (es.readyState === CLOSED) this.close();
      };
      this._es = es;
      if (this.readyState !== OPEN) this._state(CONNECTING, null);
    }

    _fromStream(e) {
      const es = e.target;
      // EventSource repeats the last id on an event without one: an id is new when it moves.
      const fresh = e.lastEventId !== es._prevId;
      es._prevId = e.lastEventId;
      const msg = { t: "event", type: e.type, data: e.data, lastEventId: e.lastEventId, id: fresh ? e.lastEventId : null, origin: e.origin };
      if (!this._take(msg)) return;
      if (this.shared) this._post(msg);
      if (e.type === "token-expiring" && es === this._es) this._renew();
    }

    /** token-expiring: refresh, then a new stream from the last id; the old one closes once it is open. */
    async _renew() {
      if (typeof this._refresh !== "function" || this._renewing) return;
      this._renewing = true;
      try {
        await this._refresh();
        if (this._closed || !this.leader) return;
        this._old = this._es;
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

    /** Dispatches an event unless its id was seen; false when skipped. */
    _take(msg) {
      if (msg.id) {
        if (this._seen.has(msg.id)) return false;
        this._seen.add(msg.id);
        if (this._seen.size > KEEP_IDS) this._seen.delete(this._seen.values().next().value);
        this.lastEventId = msg.id;
      }
      this._emit(new MessageEvent(msg.type, { data: msg.data, lastEventId: msg.lastEventId, origin: msg.origin }));
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
      if (msg.t === "names" || msg.t === "hello") {
        // Every tab learns every name, so whichever leads next listens for them all.
        for (const n of msg.names) {
          if (this._names.has(n)) continue;
          this._names.add(n);
          if (this._es) this._es.addEventListener(n, this._relay);
        }
        if (msg.t === "hello" && this.leader) {
          this._post({ t: "names", names: [...this._names] });
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
  root.SsehubSource = SsehubSource;
})(typeof window !== "undefined" ? window : self);
