// The one browser client for Ferry's event stream (release pages, chat, wall).
//
// Usage:
//   import { EventClient } from "./events.js";
//   const client = new EventClient({
//     onStatus: (status) => { badge.dataset.status = status; },  // see STATUS below
//     onError: (topic, message, reason) => { showError(message); },
//   });
//   const stop = client.subscribe("release:12", 0, (events, topic) => {
//     for (const event of events) apply(event);   // {topic, seq, type, ts, data}, in order
//   });
//   stop();            // unsubscribe this handler
//   client.close();    // when the page goes away
//
// What it guarantees: each handler gets every event of its topic after `after`, in seq
// order, each once, across reconnects and transport changes: it keeps the last seq it
// delivered per topic and resumes from it. It talks WebSocket (/ws) first; when the
// WebSocket cannot be opened (blocked by a proxy, refused) it falls back to
// long-polling GET /api/events, one request per topic, and tries WebSocket again later.
// Lost connections are retried with exponential backoff and jitter. No inline script,
// no eval: JSON.parse only.

export const STATUS = Object.freeze({
  CONNECTING: "connecting", // opening a transport
  LIVE: "live", // WebSocket open
  POLLING: "polling", // long-polling fallback
  OFFLINE: "offline", // lost; retrying after a backoff
  UNAUTHENTICATED: "unauthenticated", // the session ended: sign in again
  CLOSED: "closed", // close() was called
});

const LONG_POLL_WAIT_S = 25;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30000;
const WS_OPEN_TIMEOUT_MS = 10000;
const WS_FAILURES_BEFORE_POLLING = 2;
const WS_RETRY_WHILE_POLLING_MS = 5 * 60 * 1000;

function toSeq(value) {
  const number = Math.floor(Number(value));
  return Number.isFinite(number) && number > 0 ? number : 0;
}

// Exponential backoff with jitter: between half and all of base * 2^attempt, capped.
export function backoffDelay(attempt) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export class EventClient {
  // base: origin of the Ferry server (default: this page's). onStatus(status) is told
  // every change of STATUS; onError(topic, message, reason) when a topic is refused.
  // paths: the WebSocket and long-poll endpoints (the wall has its own, for wall links).
  constructor({ base = window.location.origin, onStatus = () => {}, onError = () => {},
                paths = {} } = {}) {
    this.base = base.replace(/\/$/, "");
    this.paths = { socket: paths.socket || "/ws", poll: paths.poll || "/api/events" };
    this.onStatus = onStatus;
    this.onError = onError;
    this.topics = new Map(); // topic -> {after, handlers: Set, poll: AbortController|null}
    this.mode = "ws"; // "ws" | "poll"
    this.status = null;
    this.socket = null;
    this.attempt = 0;
    this.wsFailures = 0;
    this.timer = null;
    this.closed = false;
    this.connect();
  }

  // Deliver every event of `topic` after seq `after` (0: from the start) to
  // onEvents(events, topic), then live ones. Returns a function that unsubscribes.
  // A topic already subscribed keeps its own cursor: a second handler joins from there.
  subscribe(topic, after, onEvents) {
    let state = this.topics.get(topic);
    const isNew = !state;
    if (isNew) {
      state = { after: toSeq(after), handlers: new Set(), poll: null };
      this.topics.set(topic, state);
    }
    state.handlers.add(onEvents);
    if (isNew) this.start(topic);
    return () => {
      state.handlers.delete(onEvents);
      if (state.handlers.size === 0 && this.topics.get(topic) === state) this.drop(topic);
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    for (const topic of [...this.topics.keys()]) this.drop(topic);
    if (this.socket) this.socket.close(1000, "page closed");
    this.setStatus(STATUS.CLOSED);
  }

  // -- shared ---------------------------------------------------------------------------

  setStatus(status) {
    if (status !== this.status) {
      this.status = status;
      this.onStatus(status);
    }
  }

  deliver(topic, events) {
    const state = this.topics.get(topic);
    if (!state || !Array.isArray(events)) return;
    const fresh = events.filter((event) => event.seq > state.after);
    if (fresh.length === 0) return;
    state.after = fresh[fresh.length - 1].seq;
    for (const handler of [...state.handlers]) {
      try {
        handler(fresh, topic);
      } catch (error) {
        console.error("event handler failed", error);
      }
    }
  }

  refuse(topic, message, reason) {
    if (!this.topics.has(topic)) return;
    this.drop(topic);
    this.onError(topic, message, reason);
  }

  start(topic) {
    if (this.closed) return;
    if (this.mode === "ws") this.send({ op: "subscribe", topic, after: this.topics.get(topic).after });
    else this.poll(topic);
  }

  drop(topic) {
    const state = this.topics.get(topic);
    if (!state) return;
    this.topics.delete(topic);
    if (state.poll) state.poll.abort();
    if (this.mode === "ws") this.send({ op: "unsubscribe", topic });
  }

  retryLater(reconnect) {
    if (this.closed) return;
    this.setStatus(STATUS.OFFLINE);
    clearTimeout(this.timer);
    this.timer = setTimeout(reconnect, backoffDelay(this.attempt++));
  }

  unauthenticated() {
    this.closed = true;
    clearTimeout(this.timer);
    for (const state of this.topics.values()) if (state.poll) state.poll.abort();
    this.setStatus(STATUS.UNAUTHENTICATED);
  }

  connect() {
    if (this.closed) return;
    if (this.mode === "ws") this.openSocket();
    else this.startPolling();
  }

  // -- WebSocket ------------------------------------------------------------------------

  openSocket() {
    this.setStatus(STATUS.CONNECTING);
    let socket;
    try {
      socket = new WebSocket(this.base.replace(/^http/, "ws") + this.paths.socket);
    } catch (error) {
      this.fallBackToPolling(); // blocked outright (policy, bad URL)
      return;
    }
    this.socket = socket;
    let opened = false;
    const openTimer = setTimeout(() => socket.close(), WS_OPEN_TIMEOUT_MS);
    socket.onopen = () => {
      opened = true;
      clearTimeout(openTimer);
      this.attempt = 0;
      this.wsFailures = 0;
      this.setStatus(STATUS.LIVE);
      for (const [topic, state] of this.topics) this.send({ op: "subscribe", topic, after: state.after });
    };
    socket.onmessage = (message) => this.onFrame(message.data);
    socket.onclose = (event) => {
      clearTimeout(openTimer);
      if (this.socket === socket) this.socket = null;
      if (this.closed || this.mode !== "ws") return;
      if (event.code === 4401) return this.unauthenticated();
      if (!opened && ++this.wsFailures >= WS_FAILURES_BEFORE_POLLING) return this.fallBackToPolling();
      this.retryLater(() => this.openSocket());
    };
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.error === undefined) return this.deliver(frame.topic, frame.events);
    switch (frame.reason) {
      case "cut_off": // fell behind: resume from what was delivered, after a pause
        setTimeout(() => this.topics.has(frame.topic) && this.start(frame.topic), backoffDelay(0));
        break;
      case "unauthenticated":
        this.unauthenticated();
        break;
      default:
        if (frame.topic) this.refuse(frame.topic, frame.error, frame.reason);
        else console.warn("event stream:", frame.error);
    }
  }

  // -- long-polling ---------------------------------------------------------------------

  fallBackToPolling() {
    this.mode = "poll";
    this.attempt = 0;
    this.startPolling();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tryWebSocketAgain(), WS_RETRY_WHILE_POLLING_MS);
  }

  tryWebSocketAgain() {
    if (this.closed) return;
    for (const state of this.topics.values()) if (state.poll) state.poll.abort();
    this.mode = "ws";
    this.wsFailures = WS_FAILURES_BEFORE_POLLING - 1; // one failure: back to polling
    this.openSocket();
  }

  startPolling() {
    this.setStatus(STATUS.POLLING);
    for (const topic of this.topics.keys()) this.poll(topic);
  }

  async poll(topic) {
    const state = this.topics.get(topic);
    if (!state || state.poll) return;
    const controller = new AbortController();
    state.poll = controller;
    while (!this.closed && this.mode === "poll" && this.topics.get(topic) === state) {
      const url = `${this.base}${this.paths.poll}?topic=${encodeURIComponent(topic)}` +
        `&after=${state.after}&wait=${LONG_POLL_WAIT_S}`;
      let response;
      let body = null;
      try {
        response = await fetch(url, { credentials: "same-origin", signal: controller.signal,
                                      headers: { Accept: "application/json" } });
        body = await response.json();
      } catch (error) {
        if (controller.signal.aborted) break;
        await this.pause(controller);
        continue;
      }
      if (response.status === 401) {
        this.unauthenticated();
        break;
      }
      if (response.status === 400 || response.status === 404) {
        this.refuse(topic, body && body.message, response.status === 404 ? "unknown_topic" : "bad_request");
        break;
      }
      if (!response.ok || !body) {
        await this.pause(controller);
        continue;
      }
      this.attempt = 0;
      this.setStatus(STATUS.POLLING);
      this.deliver(topic, body.events);
      state.after = Math.max(state.after, toSeq(body.next));
    }
    if (state.poll === controller) state.poll = null;
  }

  pause(controller) {
    this.setStatus(STATUS.OFFLINE);
    const delay = backoffDelay(this.attempt++);
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, delay);
      controller.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }
}
