// Small UI helpers shared by the demo pages: connection state badge, event log with
// event ids, and notices for reset/gap frames. Elements have stable ids and data-*
// attributes so browser tests can read them.
(function (global) {
  "use strict";

  const STATE_TEXT = {
    idle: () => "idle",
    connecting: () => "connecting…",
    open: () => "live",
    reconnecting: (i) => `connection lost, reconnecting in ${Math.ceil((i.retryInMs || 0) / 1000)} s`,
    busy: (i) => `server busy, retrying in ${Math.ceil((i.retryInMs || 0) / 1000)} s`,
    replaced: () => "replaced by another tab of this browser",
    failed: (i) => `refused by the server: ${i.reason || i.status || "error"}${i.detail ? " (" + i.detail + ")" : ""}`,
    closed: (i) => `closed${i.reason ? " (" + i.reason + ")" : ""}`,
  };

  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k.startsWith("data-") || k === "class" || k === "id" || k === "title") node.setAttribute(k, v);
      else node[k] = v;
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bindState(stream, badge, onReconnect) {
    stream.on("state", (state, info) => {
      badge.dataset.state = state;
      badge.textContent = (STATE_TEXT[state] || (() => state))(info || {});
      if (state === "replaced" && onReconnect !== false) {
        const button = el("button", { class: "link", id: "reconnect-here" }, "use this tab");
        button.onclick = () => stream.reconnect();
        badge.append(" ", button);
      }
    });
  }

  function bindLog(stream, list, limit = 60) {
    stream.on("*", (name, data, meta) => {
      if (!meta || !meta.id) return;  // only events with ids: what a resume replays
      const item = el("li", { "data-event-id": meta.id, "data-event": name });
      item.append(el("code", {}, meta.id), " ", el("span", { class: "event-name" }, name));
      if (meta.channel) item.append(" ", el("span", { class: "muted" }, meta.channel));
      list.prepend(item);
      while (list.children.length > limit) list.lastChild.remove();
    });
  }

  function bindNotices(stream, box) {
    stream.on("reset", (info) => {
      box.hidden = false;
      box.dataset.kind = "reset";
      box.textContent = `stream reset (${info.reason || "unknown"}): the server could not resume` +
        " from the last event id; the page reloaded its state and continues live.";
      stream.emit("resync", info);
    });
    stream.on("gap", (info) => {
      box.hidden = false;
      box.dataset.kind = "gap";
      box.textContent = `gap (${info.reason || "unknown"}): ${info.missed ? info.missed + " events" : "some events"}` +
        " were no longer held; the page reloaded its state.";
      stream.emit("resync", info);
    });
  }

  global.DemoUI = { el, bindState, bindLog, bindNotices };
})(window);
