// The log console of one host: the stored log from the API merged with live "log"
// events (de-duplicated by line number n), ANSI colours rendered safely, autoscroll that
// pauses while the user reads further up, and search. At most MAX_DOM lines are in the
// DOM; at most MAX_LINES are kept in memory.
import { get } from "../api.js";
import { t, tn } from "../i18n.js";
import { clear, el } from "../util.js";
import { renderAnsi, stripAnsi } from "../ansi.js";
import { LOCAL } from "./model.js";

const MAX_DOM = 2000;
const MAX_LINES = 50000;
const MAX_MATCHES = 2000;

export class LogConsole {
  constructor(root, { releaseId, title, search, matches, follow }) {
    this.root = root;
    this.releaseId = releaseId;
    this.titleNode = title;
    this.searchInput = search;
    this.matchesNode = matches;
    this.followButton = follow;
    this.host = null;
    this.lines = [];        // {n, ts, stage, line}, in n order
    this.seen = new Set();
    this.pending = [];      // lines to draw at the next frame
    this.stick = true;
    this.unseen = 0;
    this.query = "";
    this.hiddenBefore = 0;
    this.generation = 0;
    this.placeholder();
    root.addEventListener("scroll", () => {
      const atBottom = root.scrollTop + root.clientHeight >= root.scrollHeight - 8;
      if (atBottom !== this.stick) {
        this.stick = atBottom;
        if (atBottom) this.unseen = 0;
        this.updateFollow();
      }
    }, { passive: true });
    follow.addEventListener("click", () => {
      this.stick = true;
      this.unseen = 0;
      this.scrollToEnd();
      this.updateFollow();
    });
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.setQuery(search.value), 150);
    });
  }

  placeholder() {
    clear(this.root);
    this.root.append(el("p", { class: "muted log-empty" },
      t("Click a host to see its log, or a local stage for the build log.")));
  }

  /** Show `host`'s log: what is stored, then live lines. */
  async open(host) {
    if (host === this.host) return;
    this.host = host;
    this.lines = [];
    this.seen = new Set();
    this.pending = [];
    this.hiddenBefore = 0;
    this.stick = true;
    this.unseen = 0;
    const generation = ++this.generation;
    this.titleNode.textContent = host === LOCAL ? t("Build log")
      : t("Log of {host}", { host });
    if (this.onOpen) this.onOpen(host);
    clear(this.root);
    this.root.append(el("p", { class: "muted log-empty" }, t("Loading…")));
    const path = `/api/releases/${this.releaseId}/hosts/${encodeURIComponent(host)}/log`;
    let stored;
    try {
      stored = await get(path);
    } catch (error) {
      if (generation !== this.generation) return;
      clear(this.root);
      this.root.append(el("p", { class: "error-message" }, error.message));
      return;
    }
    if (generation !== this.generation) return;
    const live = this.lines;
    this.lines = [];
    this.seen = new Set();
    this.addMany(stored.lines || []);
    this.addMany(live);
    this.pending = [];
    this.redraw();
  }

  addMany(lines) {
    for (const line of lines) this.add(line, false);
  }

  /** A live "log" event's data; drawn at the next frame. */
  append(data) {
    if (data.host !== this.host) return;
    this.add(data, true);
  }

  add(line, live) {
    if (this.seen.has(line.n)) return;
    this.seen.add(line.n);
    const last = this.lines[this.lines.length - 1];
    if (!last || line.n > last.n) this.lines.push(line);
    else {
      // An older line arriving late: keep n order (rare).
      let i = this.lines.length - 1;
      while (i > 0 && this.lines[i - 1].n > line.n) i--;
      this.lines.splice(i, 0, line);
      if (live) {
        this.needsRedraw = true;
        return;
      }
    }
    if (this.lines.length > MAX_LINES) {
      const drop = this.lines.length - MAX_LINES;
      for (const old of this.lines.splice(0, drop)) this.seen.delete(old.n);
    }
    if (live) {
      this.pending.push(line);
      // A hidden tab gets no animation frames: past a screenful, redraw from `lines`.
      if (this.pending.length > MAX_DOM) {
        this.pending = [];
        this.needsRedraw = true;
      }
    }
  }

  /** Draw what arrived since the last frame. */
  flush() {
    if (this.needsRedraw) {
      this.needsRedraw = false;
      this.pending = [];
      this.redraw();
      return;
    }
    if (!this.pending.length || this.host === null) return;
    const lines = this.pending;
    this.pending = [];
    if (this.root.querySelector(".log-empty")) clear(this.root);
    if (this.query) {
      const shown = lines.filter((line) => this.match(line));
      if (!shown.length) return;
      this.appendNodes(shown);
      this.updateMatches();
    } else {
      this.appendNodes(lines);
    }
    if (this.stick) this.scrollToEnd();
    else {
      this.unseen += lines.length;
      this.updateFollow();
    }
  }

  appendNodes(lines) {
    const fragment = document.createDocumentFragment();
    for (const line of lines) fragment.append(this.lineNode(line));
    this.root.append(fragment);
    this.trim();
  }

  trim() {
    let extra = this.root.childElementCount - MAX_DOM - (this.noteNode ? 1 : 0);
    if (extra <= 0) return;
    if (!this.noteNode) {
      this.noteNode = el("p", { class: "muted log-note" });
      this.root.prepend(this.noteNode);
    }
    while (extra-- > 0 && this.noteNode.nextSibling) {
      this.noteNode.nextSibling.remove();
      this.hiddenBefore += 1;
    }
    this.noteNode.textContent = t("{n} earlier lines not shown", { n: this.hiddenBefore });
  }

  redraw() {
    clear(this.root);
    this.noteNode = null;
    this.hiddenBefore = 0;
    const lines = this.query ? this.lines.filter((line) => this.match(line)) : this.lines;
    if (!lines.length) {
      this.root.append(el("p", { class: "muted log-empty" },
        this.query ? t("no matches") : t("Nothing yet.")));
    } else {
      const limit = this.query ? MAX_MATCHES : MAX_DOM;
      const start = Math.max(0, lines.length - limit);
      if (start) {
        this.hiddenBefore = start;
        this.noteNode = el("p", { class: "muted log-note" },
          t("{n} earlier lines not shown", { n: start }));
        this.root.append(this.noteNode);
      }
      this.appendNodes(lines.slice(start));
    }
    this.updateMatches();
    this.stick = true;
    this.unseen = 0;
    this.updateFollow();
    this.scrollToEnd();
  }

  lineNode(line) {
    const text = el("span", { class: "log-text" });
    if (this.query) highlight(stripAnsi(line.line), this.query, text);
    else renderAnsi(line.line, text);
    return el("div", { class: "log-line", dataset: { n: line.n } },
      el("span", { class: "log-n" }, String(line.n)),
      el("span", { class: "log-time", title: logTime(line.ts, true) }, logTime(line.ts)),
      el("span", { class: "log-stage" }, line.stage ? t(line.stage) : ""),
      text);
  }

  match(line) {
    return stripAnsi(line.line).toLowerCase().includes(this.query);
  }

  setQuery(value) {
    this.query = value.trim().toLowerCase();
    if (this.host !== null) this.redraw();
  }

  updateMatches() {
    if (!this.query || this.host === null) {
      this.matchesNode.textContent = "";
      return;
    }
    let count = 0;
    for (const line of this.lines) if (this.match(line)) count += 1;
    this.matchesNode.textContent = count ? tn("{n} match", "{n} matches", count) : t("no matches");
  }

  updateFollow() {
    this.followButton.hidden = this.stick;
    this.followButton.textContent = t("Follow ({n} new)", { n: this.unseen });
  }

  scrollToEnd() {
    this.root.scrollTop = this.root.scrollHeight;
  }
}

/** A line's time (epoch seconds) as local HH:MM:SS.mmm, or the full ISO time in UTC. */
function logTime(ts, full = false) {
  if (typeof ts !== "number") return "";
  const date = new Date(ts * 1000);
  if (full) return date.toISOString();
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.`
    + pad(date.getMilliseconds(), 3);
}

function highlight(text, query, parent) {
  const lower = text.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(query); i >= 0 && query; i = lower.indexOf(query, at)) {
    if (i > at) parent.append(text.slice(at, i));
    parent.append(el("mark", null, text.slice(i, i + query.length)));
    at = i + query.length;
  }
  if (at < text.length) parent.append(text.slice(at));
}

