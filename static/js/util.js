// Small DOM and formatting helpers. Data only ever reaches the page as text
// (textContent, attributes set one by one): never through innerHTML.
import { lang, t } from "./i18n.js";

/** A new element: el("a", {href: "/x", class: "y"}, "text", child, ...). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $$(selector, root = document) {
  return Array.from(root.querySelectorAll(selector));
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** A timestamp (epoch seconds or ms, or an ISO string) as epoch milliseconds, or null. */
export function toMs(value) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  let text = String(value);
  // Dates from the API are UTC; an ISO string without a zone is UTC too.
  if (/T\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(text)) text += "Z";
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

/** 1234 ms → "1.2 s", 75000 → "1 min 15 s". */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const dateFormats = new Map();

/** A date as local date and time in the page's language. */
export function fmtTime(value) {
  const ms = toMs(value);
  if (ms === null) return "";
  const key = lang();
  if (!dateFormats.has(key)) {
    dateFormats.set(key, new Intl.DateTimeFormat(key, {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }));
  }
  return dateFormats.get(key).format(new Date(ms));
}

export function shortSha(sha) {
  return sha ? String(sha).slice(0, 10) : "";
}

/** A state word shown to the user, translated ("rolled_back" → "rolled back"). */
export function stateLabel(state) {
  return state ? t(state).replace(/_/g, " ") : "";
}

/** A badge for a state: <span class="state-badge" data-state="ok">ok</span>. */
export function stateBadge(state) {
  return el("span", { class: "state-badge", dataset: { state: state || "pending" } },
    stateLabel(state || "pending"));
}

/** Show `message` in the page's error box (or hide it when empty). */
export function showError(message, box = $("#page-error")) {
  if (!box) return;
  box.textContent = message ? String(message) : "";
  box.hidden = !message;
  if (message) box.scrollIntoView({ block: "nearest" });
}

/** Show a short notice that goes away by itself. */
export function showNotice(message, box = $("#page-notice")) {
  if (!box) return;
  box.textContent = message;
  box.hidden = false;
  clearTimeout(box._timer);
  box._timer = setTimeout(() => { box.hidden = true; }, 5000);
}

/** Hide elements meant for a higher role than the signed-in user has: the page's role is
 * the user's role on its project (viewer, deployer, maintainer; admin) or, on pages about
 * no single project, their global role (member, viewer, deployer, admin). */
export function applyRole() {
  const roles = ["member", "viewer", "deployer", "maintainer", "admin"];
  const rank = roles.indexOf(document.body.dataset.role || "viewer");
  for (const node of $$(".deployer-only")) node.hidden = rank < 2;
  for (const node of $$(".maintainer-only")) node.hidden = rank < 3;
  for (const node of $$(".admin-only")) node.hidden = rank < 4;
  keepHashOnLanguageSwitch();
}

/** The language switch posts the page's URL, which the server sees without its #hash
 * (e.g. the host whose log is open); add it as the form is sent. */
function keepHashOnLanguageSwitch() {
  for (const form of $$("form.langswitch")) {
    if (form.dataset.keepsHash) continue;
    form.dataset.keepsHash = "true";
    form.addEventListener("submit", () => {
      const next = form.elements.namedItem("next");
      if (next && location.hash) next.value = `${next.value.split("#")[0]}${location.hash}`;
    });
  }
}

/** Runs `fn` and shows any error it throws in the page's error box. */
export async function guarded(fn, box) {
  try {
    showError("", box);
    return await fn();
  } catch (error) {
    showError(error.message || String(error), box);
    return undefined;
  }
}

/** "web db" → ["web", "db"]. */
export function words(text) {
  return String(text || "").split(/[\s,]+/).filter(Boolean);
}

/** A link to a release page. */
export function releaseLink(id, text) {
  return el("a", { href: `/releases/${encodeURIComponent(id)}` }, text ?? `#${id}`);
}

/** Ask in a <dialog> (the page's #confirm, or one made here); true when confirmed. */
export function confirmDialog(question) {
  let dialog = document.getElementById("confirm");
  if (!dialog) {
    dialog = el("dialog", { id: "confirm", class: "confirm" },
      el("form", { method: "dialog" },
        el("p", { id: "confirm-text" }),
        el("div", { class: "buttons" },
          el("button", { type: "submit", value: "cancel" }, t("No")),
          el("button", { type: "submit", value: "ok", class: "primary", id: "confirm-ok" },
            t("Yes")))));
    document.body.append(dialog);
  }
  document.getElementById("confirm-text").textContent = question;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-ok").focus();
  });
}

/** The event client's connection status (events.js STATUS) in words. */
export function statusLabel(status) {
  return {
    connecting: t("connecting…"), live: t("live"), polling: t("live (long-polling)"),
    offline: t("reconnecting…"), unauthenticated: t("signed out: sign in again"),
    closed: t("offline"),
  }[status] || String(status || "");
}

/** Fill a table body with commits (sha, subject, author, date), or say there are none. */
export function commitRows(body, commits) {
  clear(body);
  for (const commit of commits) {
    body.append(el("tr", null,
      el("td", { class: "mono", title: commit.sha }, shortSha(commit.sha)),
      el("td", null, commit.subject || ""),
      el("td", null, commit.author || ""),
      el("td", null, fmtTime(commit.date))));
  }
  if (!commits.length) body.append(el("tr", null, el("td", { colspan: 4, class: "muted" },
    t("No commits."))));
}
