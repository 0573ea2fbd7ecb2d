// Small UI helpers shared by the demo pages: the connection badge, the event log (with
// event ids), and notices for reset/gap frames. Elements carry stable ids and data-*
// attributes, and every event a page receives is recorded in DemoUI.received, so that
// browser tests can check what the page got and showed.
(function (global) {
  "use strict";

  const seconds = (ms) => Math.max(1, Math.ceil((ms || 0) / 1000));

  const STATE_TEXT = {
    idle: () => "idle",
    connecting: () => "connecting…",
    open: () => "live",
    standby: () => "standby: another tab of this browser receives; this one takes over when it closes",
    reconnecting: (i) =>
      i.reason === "shutdown"
        ? `server restarting, reconnecting in ${seconds(i.retryInMs)} s`
        : `connection lost, reconnecting in ${seconds(i.retryInMs)} s`,
    busy: (i) => `server busy, retrying in ${seconds(i.retryInMs)} s`,
    offline: () => "offline, waiting for the network",
    replaced: () => "another tab of this browser took over",
    failed: (i) => `refused by the server: ${i.reason || i.status || "error"}`,
    closed: (i) => `closed${i.reason ? " (" + i.reason + ")" : ""}`,
  };

  const STATE_TITLE = {
    busy: "The server is at its connection limit. This page retries by itself and connects as soon as a place frees up.",
    reconnecting: "The page reconnects by itself and resumes from the last event it received.",
    offline: "The page reconnects and resumes as soon as the browser is back online.",
    replaced: "This browser session's connection moved to another tab.",
    standby: "Only one tab of this browser receives at a time. This tab stays connected and continues exactly where the other left off when that tab closes.",
  };

  // Every event with an id that any stream of this page received, in arrival order, and
  // every state change of the page's streams.
  const received = [];
  const states = [];
  const RECEIVED_LIMIT = 20000;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("data-") || k.startsWith("aria-") || ["class", "id", "title", "role", "href", "type"].includes(k)) {
        node.setAttribute(k, v);
      } else {
        node[k] = v;
      }
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function bindState(stream, badge, onReconnect) {
    const text = el("span", { class: "state-text" }, "idle");
    badge.replaceChildren(el("span", { class: "dot", "aria-hidden": "true" }), text);
    badge.setAttribute("role", "status");
    stream.on("state", (state, info) => {
      info = info || {};
      if (states.length < RECEIVED_LIMIT) {
        states.push({ state, reason: info.reason || null, resume: info.resume || null, code: info.code ?? null, at: Date.now() });
      }
      badge.dataset.state = state;
      badge.title = STATE_TITLE[state] || "";
      if (state === "open") {
        badge.dataset.resume = info.resume || "";
        badge.dataset.connectionId = info.connection_id ?? "";
      }
      text.textContent = (STATE_TEXT[state] || (() => state))(info);
      badge.querySelector("#reconnect-here")?.remove();
      if (state === "replaced" && onReconnect !== false) {
        const button = el("button", { class: "chip", id: "reconnect-here", type: "button" }, "use this tab");
        button.onclick = () => stream.reconnect();
        badge.append(button);
      }
    });
  }

  // A few words about a demo event for the log.
  function describe(name, data) {
    if (!data || typeof data !== "object") return typeof data === "string" ? data.slice(0, 40) : "";
    if (name === "progress" || name === "done") return `${data.pages_done}/${data.pages} pages`;
    if (name === "chat.token") return JSON.stringify(data.token);
    if (name === "chat.status") return data.processing ? "processing" : "idle";
    if (name === "chat.user" || name === "chat.done") return JSON.stringify((data.text || "").slice(0, 28));
    if (name === "stats") return `${data.active_connections} conn · ${Math.round(data.delivered_per_second)}/s`;
    return "";
  }

  function bindLog(stream, list, limit = 60) {
    const card = list.closest(".card");
    const counter = card && card.querySelector("[data-role=event-count]");
    let count = 0;
    stream.on("*", (name, data, meta) => {
      if (!meta || !meta.id) return; // only events with ids: what a resume replays
      if (received.length < RECEIVED_LIMIT) {
        received.push({ id: meta.id, event: name, channel: meta.channel || null, data });
      }
      count += 1;
      if (counter) counter.textContent = String(count);
      const detail = describe(name, data);
      // The session's private channel goes without saying; other channels are named.
      const channel = meta.channel && !meta.channel.startsWith("session:") ? meta.channel : null;
      const item = el("li", { "data-event-id": meta.id, "data-event": name },
        el("span", { class: "event-what" }, el("span", { class: "event-name" }, name),
          detail ? el("span", { class: "event-detail" }, detail) : null),
        el("code", { class: "event-id" }, meta.id),
        channel ? el("span", { class: "event-channel" }, channel) : null);
      list.prepend(item);
      while (list.children.length > limit) list.lastChild.remove();
    });
    // Where the stream could not be resumed, the log says so between the events.
    for (const kind of ["reset", "gap"]) {
      stream.on(kind, (info) => {
        list.prepend(el("li", { class: "log-marker", "data-marker": kind }, `${kind} · ${info.reason || ""}`));
      });
    }
  }

  function showNotice(box, kind, title, body) {
    const dismiss = el("button", { class: "chip", type: "button", "aria-label": "dismiss" }, "dismiss");
    dismiss.onclick = () => { box.hidden = true; };
    box.replaceChildren(el("strong", {}, title), el("span", {}, body), dismiss);
    box.dataset.kind = kind;
    box.hidden = false;
  }

  const RESET_TEXT = {
    unknown_epoch: "the server restarted and its event history is gone",
    malformed_id: "the last event id was not understood",
    future_id: "the last event id is ahead of the server",
  };

  function bindNotices(stream, box) {
    stream.on("reset", (info) => {
      const why = RESET_TEXT[info.reason] || info.reason || "unknown reason";
      showNotice(box, "reset", "Stream reset.",
        ` The server could not resume from the last event this page received (${why}).` +
        " The page reloaded its state and continues live; events from before the reset are not replayed.");
      box.dataset.reason = info.reason || "";
      stream.emit("resync", info);
    });
    stream.on("gap", (info) => {
      const what = info.missed ? `${info.missed} events were` : "some events were";
      showNotice(box, "gap", "Gap in the stream.",
        ` ${what} no longer held by the server (${info.reason || "unknown"}); the page reloaded its state.`);
      box.dataset.reason = info.reason || "";
      stream.emit("resync", info);
    });
  }

  function formatDuration(totalSeconds) {
    const s = Math.floor(totalSeconds || 0);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function formatNumber(value) {
    if (typeof value !== "number") return String(value ?? "–");
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return value.toLocaleString("en-US", { maximumFractionDigits: 1 });
  }

  // The current page's nav link is highlighted.
  document.addEventListener("DOMContentLoaded", () => {
    for (const a of document.querySelectorAll("header nav a")) {
      if (a.getAttribute("href") === global.location.pathname) a.setAttribute("aria-current", "page");
    }
  });

  global.DemoUI = { el, bindState, bindLog, bindNotices, showNotice, formatDuration, formatNumber, received, states };
})(window);
