// The release's chat room beside the flowchart: the newest page of history, then live
// messages of `chat:release-<id>` on the page's one event client (same connection and
// cursor machinery as the release topic), older pages when the user scrolls up, an
// unread count while the panel is collapsed, and a box that posts (Enter sends).
//
// Every value reaches the page as text (textContent); only http(s) links become <a>
// elements, their href checked by URL parsing. A refused command or an over-long or
// rate-limited message is the POST's answer, so only its sender sees it, inline.
import { get, post } from "../api.js";
import { t, tn } from "../i18n.js";
import { clear, el, fmtTime, toMs } from "../util.js";

const PAGE = 50;
const NEAR_TOP_PX = 60;
const NEAR_BOTTOM_PX = 24;
const MAX_KEPT = 2000;        // messages kept in the DOM; older ones are dropped (bounded)
const SYSTEM_USER = "ferry";
const COLLAPSED_KEY = "ferry.chat.collapsed";
// A link: http:// or https:// up to whitespace or a character that ends prose.
const LINK = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?)\]}]+$/;

export class ChatPanel {
  constructor(root, { releaseId, client, user }) {
    this.root = root;
    this.room = `release-${releaseId}`;
    this.client = client;
    this.user = user || "";
    this.log = root.querySelector("#chat-log");
    this.form = root.querySelector("#chat-form");
    this.input = root.querySelector("#chat-input");
    this.errorNode = root.querySelector("#chat-error");
    this.toggleButton = root.querySelector("#chat-toggle");
    this.unreadNode = root.querySelector("#chat-unread");
    this.ids = new Set();
    this.before = null;       // id to ask with for the page before what is shown
    this.loadingOlder = false;
    this.unread = 0;
    this.collapsed = false;
    this.stopLive = null;
    this.sending = false;
  }

  /** Load the newest page, then follow the room live from where that page ends. */
  async start() {
    this.bind();
    this.setCollapsed(readCollapsed(), false);
    this.placeholder(t("Loading…"));
    let page;
    try {
      page = await get(this.historyPath(null));
    } catch (error) {
      this.placeholder(error.message, "error-message");
      return;
    }
    clear(this.log);
    this.before = page.before ?? null;
    this.add(page.messages || [], { live: false });
    if (!this.ids.size) this.placeholder(t("No messages yet."));
    this.scrollToEnd();
    const head = typeof page.head === "number" ? page.head : 0;
    this.stopLive = this.client.subscribe(`chat:${this.room}`, head, (events) => {
      const messages = events.filter((event) => event.type === "message")
        .map((event) => ({ id: event.seq, ts: event.ts, ...event.data }));
      this.add(messages, { live: true });
    });
    this.root.dataset.ready = "true";
  }

  historyPath(before) {
    const query = before ? `before=${before}&limit=${PAGE}` : `limit=${PAGE}`;
    return `/api/chat/${encodeURIComponent(this.room)}/messages?${query}`;
  }

  bind() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener("input", () => this.showError(""));
    this.log.addEventListener("scroll", () => {
      if (this.log.scrollTop < NEAR_TOP_PX) this.loadOlder();
    }, { passive: true });
    this.toggleButton.addEventListener("click", () => this.setCollapsed(!this.collapsed, true));
  }

  placeholder(text, cls = "muted") {
    clear(this.log);
    this.log.append(el("p", { class: `${cls} chat-empty` }, text));
  }

  /** Messages (oldest first) from a history page or the live stream, each shown once. */
  add(messages, { live }) {
    const fresh = messages.filter((message) => Number.isInteger(message.id)
      && !this.ids.has(message.id));
    if (!fresh.length) return;
    const stick = this.atBottom();
    const empty = this.log.querySelector(".chat-empty");
    if (empty) empty.remove();
    for (const message of fresh) {
      this.ids.add(message.id);
      this.insert(this.messageNode(message));
    }
    if (live) {
      this.trim();
      const others = fresh.filter((message) => message.user !== this.user).length;
      if (this.collapsed && others) this.setUnread(this.unread + others);
      if (stick) this.scrollToEnd();
    }
  }

  /** Put a message node in id order (live ones are nearly always last). */
  insert(node) {
    const id = Number(node.dataset.id);
    let after = this.log.lastElementChild;
    while (after && Number(after.dataset.id) > id) after = after.previousElementSibling;
    if (after) after.after(node);
    else this.log.prepend(node);
  }

  /** Live messages past MAX_KEPT push the oldest out (scrolling up brings them back). */
  trim() {
    while (this.log.childElementCount > MAX_KEPT) {
      const first = this.log.firstElementChild;
      this.ids.delete(Number(first.dataset.id));
      first.remove();
      const next = Number(this.log.firstElementChild.dataset.id);
      if (next > 0) this.before = next;
    }
  }

  messageNode(message) {
    const system = message.kind === "system";
    const ms = toMs(message.ts);
    return el("div", {
      class: "chat-msg", dataset: { id: message.id, kind: system ? "system" : "message",
        own: String(!system && message.user === this.user) },
    },
    el("div", { class: "chat-meta" },
      el("span", { class: "chat-user" }, system ? "Ferry" : String(message.user ?? "")),
      el("time", { class: "chat-time", datetime: ms === null ? null : new Date(ms).toISOString(),
        title: fmtTime(ms) }, shortTime(ms))),
    linkify(String(message.text ?? ""), el("div", { class: "chat-text" })));
  }

  /** The page before the first message shown, kept in view where the user was. */
  async loadOlder() {
    if (this.loadingOlder || !this.before || this.log.childElementCount >= MAX_KEPT) return;
    this.loadingOlder = true;
    const spinner = el("p", { class: "muted chat-loading" }, t("Loading older messages…"));
    this.log.prepend(spinner);
    try {
      const page = await get(this.historyPath(this.before));
      spinner.remove();
      const height = this.log.scrollHeight;
      const top = this.log.scrollTop;
      this.add(page.messages || [], { live: false });
      this.before = page.before ?? null;
      this.log.scrollTop = top + (this.log.scrollHeight - height);
    } catch (error) {
      spinner.remove();
      this.showError(error.message);
    } finally {
      this.loadingOlder = false;
    }
    if (!this.before && !this.log.querySelector(".chat-start")) {
      this.log.prepend(el("p", { class: "muted chat-start", dataset: { id: 0 } },
        t("Start of the conversation")));
    }
  }

  async send() {
    const text = this.input.value;
    if (!text.trim() || this.sending) return;
    this.sending = true;
    this.showError("");
    try {
      const message = await post(`/api/chat/${encodeURIComponent(this.room)}/messages`,
        { text });
      this.input.value = "";
      const shown = [message];
      if (message && message.reply) shown.push(message.reply);
      this.add(shown, { live: false });
      this.scrollToEnd();
    } catch (error) {
      this.showError(error.status === 429
        ? t("Slow down: {message}", { message: error.message }) : error.message);
    } finally {
      this.sending = false;
    }
  }

  showError(message) {
    this.errorNode.textContent = message || "";
    this.errorNode.hidden = !message;
  }

  setCollapsed(collapsed, remember) {
    this.collapsed = collapsed;
    this.root.dataset.collapsed = String(collapsed);
    this.root.closest(".flow-chat")?.classList.toggle("chat-collapsed", collapsed);
    this.toggleButton.setAttribute("aria-expanded", String(!collapsed));
    this.toggleButton.title = collapsed ? t("Show the chat") : t("Hide the chat");
    if (!collapsed) {
      this.setUnread(0);
      this.scrollToEnd();
    }
    if (remember) {
      try {
        localStorage.setItem(COLLAPSED_KEY, collapsed ? "1" : "");
      } catch {
        // storage refused (private mode): the choice lasts for this page only
      }
      // The flowchart beside the chat listens for resizes to fit its new width.
      window.dispatchEvent(new Event("resize"));
    }
  }

  setUnread(n) {
    this.unread = n;
    this.unreadNode.hidden = n === 0;
    this.unreadNode.textContent = n > 99 ? "99+" : String(n);
    this.unreadNode.title = tn("{n} unread message", "{n} unread messages", n);
  }

  atBottom() {
    return this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - NEAR_BOTTOM_PX;
  }

  scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
  }
}

function readCollapsed() {
  try {
    return localStorage.getItem(COLLAPSED_KEY) === "1";
  } catch {
    return false;
  }
}

/** `text` appended to `parent` as text, with its http(s) links as safe <a> elements. */
export function linkify(text, parent) {
  let at = 0;
  for (const match of text.matchAll(LINK)) {
    const url = match[0].replace(TRAILING, "");
    const href = safeHref(url);
    if (!href) continue;
    if (match.index > at) parent.append(text.slice(at, match.index));
    parent.append(el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, url));
    at = match.index + url.length;
  }
  if (at < text.length) parent.append(text.slice(at));
  return parent;
}

function safeHref(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

const timeFormats = new Map();

/** "14:05:09" for today, "2026-12-01 14:05" for another day, in the page's language. */
function shortTime(ms) {
  if (ms === null) return "";
  const date = new Date(ms);
  const today = date.toDateString() === new Date().toDateString();
  const key = `${document.documentElement.lang || "en"}:${today}`;
  if (!timeFormats.has(key)) {
    timeFormats.set(key, new Intl.DateTimeFormat(document.documentElement.lang || "en",
      today ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
        : { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }));
  }
  return timeFormats.get(key).format(date);
}
