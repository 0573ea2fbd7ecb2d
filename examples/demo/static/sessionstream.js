// sessionstream browser client: EventSource and WebSocket with reconnect, backoff and
// resume. No build step; load it with <script src="/static/sessionstream.js"></script>.
//
//   const client = new SessionStream({ prefix: "/stream" });
//   const sse = client.sse({ channels: ["news"], events: ["announcement"] });
//   sse.on("announcement", (data, meta) => console.log(meta.id, data));
//   sse.on("state", (state, info) => ...);   // connecting, open, standby, busy,
//                                            // reconnecting, offline, replaced, closed,
//                                            // failed
//   sse.on("reset", (info) => ...);          // the server could not resume: reload state
//   sse.on("gap", (info) => ...);            // some events were no longer held
//
//   const ws = client.websocket({ channels: [] });
//   ws.on("chat.token", (data, meta) => ...);
//   ws.send({ type: "chat", text: "hello" });
//
// Protocol: docs/protocol.md. Every stream is resumed with the id of the last event it
// received, so a reconnect delivers exactly the missed events (or an explicit gap/reset).
//
// The session id is a bearer secret and never goes into a URL (URLs end up in access
// logs): EventSource, WebSocket, beacons and fetch send the server's HttpOnly session
// cookie by themselves (same origin), and client.fetch() adds the X-Session-ID header.
(function (global) {
  "use strict";

  class Emitter {
    constructor() { this._handlers = new Map(); }
    on(name, fn) {
      if (!this._handlers.has(name)) this._handlers.set(name, new Set());
      this._handlers.get(name).add(fn);
      return () => this._handlers.get(name).delete(fn);
    }
    emit(name, ...args) {
      for (const fn of this._handlers.get(name) || []) {
        try { fn(...args); } catch (err) { console.error("sessionstream handler failed", err); }
      }
      if (name !== "*" && name !== "state") {
        for (const fn of this._handlers.get("*") || []) {
          try { fn(name, ...args); } catch (err) { console.error(err); }
        }
      }
    }
  }

  class Backoff {
    constructor(base = 500, max = 30000) { this.base = base; this.max = max; this.attempt = 0; }
    next(minimum = 0) {
      const raw = Math.min(this.max, this.base * 2 ** this.attempt);
      this.attempt += 1;
      const jittered = raw * (0.8 + Math.random() * 0.4);
      return Math.max(minimum, Math.round(jittered));
    }
    reset() { this.attempt = 0; }
  }

  function parseData(text) {
    try { return JSON.parse(text); } catch (_) { return text; }
  }

  class SessionStream {
    constructor(options = {}) {
      this.prefix = options.prefix || "/stream";
      this.streams = new Set();
      this.sessionHeader = options.sessionHeader || "X-Session-ID";
      this.sessionId = null;
      this.ready = this._fetchSession();
      global.addEventListener("pagehide", () => this._onPageHide());
      global.addEventListener("pageshow", (e) => { if (e.persisted) this._onPageShow(); });
      // When the browser loses the network the streams' sockets are dead or about to be:
      // close them at once and reconnect, resuming, as soon as the network is back.
      global.addEventListener("offline", () => { for (const s of this.streams) s.goOffline(); });
      global.addEventListener("online", () => { for (const s of this.streams) s.goOnline(); });
    }

    async _fetchSession() {
      // The server generates the id (secure random) and sets it as an HttpOnly cookie,
      // which every later request of this page carries; the id itself is only shown.
      const response = await fetch(this.prefix + "/session", { credentials: "same-origin" });
      const body = await response.json();
      this.sessionId = body.session_id;
      return this.sessionId;
    }

    // fetch() with the session header (for the app's own routes; the cookie would do on
    // the same origin, the header also works where cookies are blocked).
    async fetch(input, init = {}) {
      await this.ready;
      const headers = new Headers(init.headers || {});
      if (this.sessionId) headers.set(this.sessionHeader, this.sessionId);
      return fetch(input, { credentials: "same-origin", ...init, headers });
    }

    url(path, params = {}) {
      const url = new URL(this.prefix + path, global.location.href);
      for (const [key, value] of Object.entries(params)) {
        if (Array.isArray(value)) value.forEach((v) => url.searchParams.append(key, v));
        else if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
      }
      return url;
    }

    sse(options = {}) { const s = new SSEStream(this, options); this.streams.add(s); s.start(); return s; }
    websocket(options = {}) { const s = new WSStream(this, options); this.streams.add(s); s.start(); return s; }

    // Clean up everything of this browser session on the server (all tabs).
    async cleanupSession(path) {
      await this.ready;
      const url = path ? new URL(path, global.location.href) : this.url("/session/cleanup");
      const response = await this.fetch(url, { method: "POST" });
      return response.json();
    }

    _onPageHide() {
      // Tell the server at once which connections of this tab are gone, even where a
      // proxy would keep the upstream open; then close them locally.
      for (const stream of this.streams) {
        if (stream.connectionId && navigator.sendBeacon) {
          // Same origin: the beacon carries the session cookie.
          navigator.sendBeacon(this.url(`/connections/${stream.connectionId}/close`));
        }
        stream.suspend();
      }
    }

    _onPageShow() { for (const stream of this.streams) stream.resume(); }
  }

  class BaseStream extends Emitter {
    constructor(client, options) {
      super();
      this.client = client;
      this.channels = [...(options.channels || [])];
      this.lastEventId = options.lastEventId || null;
      this.state = "idle";
      this.connectionId = null;
      this.backoff = new Backoff(options.backoffBase || 500, options.backoffMax || 30000);
      this._timer = null;
      this._stopped = false;
      this._suspended = false;
    }

    _setState(state, info = {}) {
      this.state = state;
      this.emit("state", state, info);
    }

    _schedule(delay, state, info = {}) {
      clearTimeout(this._timer);
      if (this._stopped || this._suspended) return;
      if (global.navigator.onLine === false) {
        // No point in retrying without a network: the "online" event reconnects.
        this._setState("offline", { ...info, reason: "offline" });
        return;
      }
      this._setState(state, { ...info, retryInMs: delay });
      this._timer = setTimeout(() => this._connect(), delay);
    }

    goOffline() {
      // Only streams that are live or trying to be; a replaced or refused one stays put.
      if (this._stopped || this._suspended) return;
      if (!["open", "standby", "connecting", "reconnecting", "busy"].includes(this.state)) return;
      clearTimeout(this._timer);
      this._teardown();
      this.connectionId = null;
      this._setState("offline", { reason: "offline" });
    }

    goOnline() {
      if (this._stopped || this._suspended || this.state !== "offline") return;
      this.backoff.reset();
      this._connect();
    }

    _event(name, dataText, id, channel) {
      if (id) this.lastEventId = id;
      const data = typeof dataText === "string" ? parseData(dataText) : dataText;
      this.emit(name, data, { id, channel, event: name });
    }

    _control(kind, info) {
      // gap: some events were no longer held (the held ones follow); reset: the server
      // could not resume at all (restarted, garbage id) and the stream continues from its
      // head. Either way the page should reload its state.
      if (kind === "reset" && info && info.head) this.lastEventId = info.head;
      this.emit(kind, info);
    }

    _failover(kind, info) {
      // Policy failover: a standby stays open and receives nothing until the active tab of
      // this session closes; then "active" arrives, followed by exactly the events the
      // closed tab had not taken.
      if (kind === "standby") {
        this._setState("standby", { ...info, connection_id: this.connectionId,
          detail: "another tab of this browser receives; this one takes over when it closes" });
      } else {
        this._setState("open", { ...info, connection_id: this.connectionId, resume: "failover" });
      }
      this.emit(kind, info);
    }

    _handleClose(reason, extra = {}) {
      this.connectionId = null;
      const info = { ...extra, reason };
      if (reason === "replaced") {
        this._setState("replaced", { ...info, detail: "another tab of this browser took over" });
      } else if (reason === "session_cleanup" || reason === "client_gone") {
        this._setState("closed", info);
      } else if (reason === "slow_consumer") {
        this._schedule(0, "reconnecting", info);
      } else if (reason === "shutdown") {
        this._schedule(this.backoff.next(2000), "reconnecting", { ...info, detail: "server restarting" });
      } else {
        this._schedule(this.backoff.next(), "reconnecting", info);
      }
    }

    start() { this.client.ready.then(() => this._connect()); }

    reconnect() {
      // Explicit user action (e.g. after "replaced"): connect now, resuming. A new
      // EventSource sends no Last-Event-ID, so this is never mistaken for the replaced
      // stream's own reconnect (which the server answers 204).
      this._stopped = false;
      this.backoff.reset();
      this._teardown();
      this._connect();
    }

    suspend() { this._suspended = true; clearTimeout(this._timer); this._teardown(); }
    resume() { if (this._suspended) { this._suspended = false; this._connect(); } }

    close() {
      this._stopped = true;
      clearTimeout(this._timer);
      this._teardown();
      this.client.streams.delete(this);
      this._setState("closed", { reason: "closed_by_page" });
    }
  }

  class SSEStream extends BaseStream {
    constructor(client, options) {
      super(client, options);
      this.events = new Set(["message", ...(options.events || [])]);
      this.source = null;
    }

    on(name, fn) {
      // Named SSE events need their own listener on the EventSource.
      if (!["state", "gap", "reset", "standby", "active", "error", "welcome", "*"].includes(name) &&
          !this.events.has(name)) {
        this.events.add(name);
        if (this.source) this._listen(this.source, name);
      }
      return super.on(name, fn);
    }

    setChannels(channels) {
      const same = channels.length === this.channels.length && channels.every((c) => this.channels.includes(c));
      this.channels = [...channels];
      if (same && (this.state === "open" || this.state === "connecting")) return;
      if (!this._stopped) { this._teardown(); this._connect(); }
    }

    _listen(source, name) {
      source.addEventListener(name, (e) => {
        if (source !== this.source) return;
        this._event(name, e.data, e.lastEventId || null);
      });
    }

    _connect() {
      if (this._stopped || this._suspended) return;
      clearTimeout(this._timer);
      const url = this.client.url("/sse", {
        channel: this.channels,
        last_event_id: this.lastEventId,
      });
      this._setState("connecting");
      let opened = false;
      const source = new EventSource(url);
      this.source = source;
      source.addEventListener("welcome", (e) => {
        if (source !== this.source) return;
        opened = true;
        // On a fresh stream the server sends its position first: resume from there.
        if (e.lastEventId && !this.lastEventId) this.lastEventId = e.lastEventId;
        const info = parseData(e.data);
        this.connectionId = info.connection_id;
        this.backoff.reset();
        this._setState("open", info);
        this.emit("welcome", info);
      });
      for (const name of this.events) this._listen(source, name);
      for (const kind of ["gap", "reset"]) {
        source.addEventListener(kind, (e) => {
          if (source !== this.source) return;
          this._control(kind, parseData(e.data));
        });
      }
      for (const kind of ["standby", "active"]) {
        source.addEventListener(kind, (e) => {
          if (source !== this.source) return;
          // "active" follows the hand-over position: resume from there from now on.
          if (kind === "active" && e.lastEventId) this.lastEventId = e.lastEventId;
          this._failover(kind, parseData(e.data));
        });
      }
      source.addEventListener("close", (e) => {
        if (source !== this.source) return;
        // Closed here before EventSource can reconnect by itself (after "replaced" that
        // reconnect would carry Last-Event-ID "replaced" and get 204 anyway).
        this._teardown();
        this._handleClose(parseData(e.data).reason);
      });
      source.onerror = () => {
        if (source !== this.source) return;
        this._teardown();
        if (opened) {
          this._schedule(this.backoff.next(), "reconnecting", { reason: "network" });
        } else {
          this._probe(url);
        }
      };
    }

    async _probe(url) {
      // EventSource hides HTTP statuses: ask once with fetch to tell "busy" (503/429,
      // retry after Retry-After) from a refusal (4xx, do not retry) or a network error.
      const controller = new AbortController();
      try {
        const response = await fetch(url, { signal: controller.signal, headers: { Accept: "text/event-stream" } });
        if (response.status === 204) {
          // The server's "do not reconnect" (a replaced stream's own reconnect).
          this._setState("replaced", { status: 204, reason: "replaced",
            detail: "another tab of this browser took over" });
          return;
        }
        if (response.ok) {
          controller.abort(); // the stream opened after all: do not keep it
        } else {
          let body = {};
          try { body = await response.json(); } catch (_) { /* not JSON */ }
          if (response.status === 503 || response.status === 429) {
            const seconds = Number(response.headers.get("Retry-After") || "0");
            this._schedule(this.backoff.next(seconds * 1000), "busy",
              { status: response.status, reason: body.error || "busy", detail: body.detail });
            return;
          }
          if (response.status >= 400 && response.status < 500) {
            this._setState("failed", { status: response.status, reason: body.error, detail: body.detail });
            return;
          }
        }
      } catch (_) { /* network error or aborted */ }
      this._schedule(this.backoff.next(), "reconnecting", { reason: "network" });
    }

    _teardown() {
      if (this.source) { this.source.close(); this.source = null; }
    }
  }

  // 1012 (service restart) is what some servers (uvicorn) send when they stop before the
  // hub's own 1001 went out: the same thing for the client.
  const WS_CLOSE = { 1000: "normal", 1001: "shutdown", 1008: "policy", 1012: "shutdown", 1013: "busy",
    4000: "replaced", 4001: "slow_consumer", 4002: "session_cleanup", 4003: "client_gone" };

  class WSStream extends BaseStream {
    constructor(client, options) {
      super(client, options);
      this.socket = null;
      this.pingInterval = options.pingInterval || 30000;
      this._ping = null;
      this._queue = [];
    }

    send(message) {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify(message));
        return true;
      }
      this._queue.push(message);
      return false;
    }

    subscribe(channels) {
      for (const c of channels) if (!this.channels.includes(c)) this.channels.push(c);
      return this.send({ type: "subscribe", channels });
    }

    unsubscribe(channels) {
      this.channels = this.channels.filter((c) => !channels.includes(c));
      return this.send({ type: "unsubscribe", channels });
    }

    _connect() {
      if (this._stopped || this._suspended) return;
      clearTimeout(this._timer);
      const url = this.client.url("/ws", {
        channel: this.channels,
        last_event_id: this.lastEventId,
      });
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      this._setState("connecting");
      const socket = new WebSocket(url);
      this.socket = socket;
      socket.onmessage = (e) => {
        if (socket !== this.socket) return;
        let frames;
        try { frames = JSON.parse(e.data); } catch (_) { return; }
        for (const m of Array.isArray(frames) ? frames : [frames]) this._dispatch(m);
      };
      socket.onclose = (e) => {
        if (socket !== this.socket) return;
        this._stopPing();
        this.socket = null;
        this.connectionId = null;
        const reason = WS_CLOSE[e.code] || "network";
        if (e.code === 1013) {
          this._schedule(this.backoff.next(2000), "busy", { code: e.code, reason: e.reason || "busy" });
        } else if (e.code === 1008) {
          this._setState("failed", { code: e.code, reason: e.reason });
        } else if (e.code === 4000) {
          // Replaced by another tab: never back by itself (that would push the other tab
          // out in turn); reconnect() is the explicit way back.
          this._handleClose("replaced", { code: e.code });
        } else {
          this._handleClose(reason, { code: e.code });
        }
      };
    }

    _dispatch(m) {
      switch (m.type) {
        case "welcome":
          this.connectionId = m.connection_id;
          this.backoff.reset();
          this._setState("open", m);
          this.emit("welcome", m);
          this._startPing();
          for (const queued of this._queue.splice(0)) this.send(queued);
          break;
        case "event":
          this._event(m.event, m.data, m.id, m.channel);
          break;
        case "gap":
        case "reset":
          this._control(m.type, m);
          break;
        case "standby":
        case "active":
          this._failover(m.type, m);
          break;
        default:
          this.emit(m.type, m);  // pong, subscribed, error, and application replies
      }
    }

    _startPing() {
      this._stopPing();
      this._ping = setInterval(() => this.send({ type: "ping", ts: Date.now() }), this.pingInterval);
    }

    _stopPing() { clearInterval(this._ping); this._ping = null; }

    _teardown() {
      this._stopPing();
      if (this.socket) { const s = this.socket; this.socket = null; s.close(1000, "closed by page"); }
    }
  }

  global.SessionStream = SessionStream;
})(window);
