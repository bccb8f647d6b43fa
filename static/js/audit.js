// The audit log page: reads its filters from the URL (so a filtered view can be
// bookmarked), pages GET /api/audit newest first, and shows each entry's details with
// field changes as before → after. Every value reaches the page as text (util.el).
import { get } from "./api.js";
import { t } from "./i18n.js";
import { $, applyRole, clear, el, fmtTime, showError, toMs } from "./util.js";

const API_FILTERS = ["actor", "project", "action", "since", "until", "before", "limit"];
const params = new URLSearchParams(location.search);

const pad = (n) => String(n).padStart(2, "0");

/** An ISO time as a datetime-local input's value (the browser's local time). */
function localValue(iso) {
  const ms = toMs(iso);
  if (ms === null) return "";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T`
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A datetime-local value (local time) as an ISO time in UTC. */
function isoValue(local) {
  if (!local) return "";
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** The page's URL for these filters (empty ones left out). */
function pageUrl(filters) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
  const text = query.toString();
  return text ? `/audit?${text}` : "/audit";
}

function currentFilters() {
  const filters = {};
  for (const name of API_FILTERS) filters[name] = params.get(name) || "";
  return filters;
}

function setUpForm() {
  const form = $("#audit-filters");
  $("#audit-since").value = localValue(params.get("since"));
  $("#audit-until").value = localValue(params.get("until"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const field = (name) => form.elements.namedItem(name).value.trim();
    location.assign(pageUrl({
      actor: field("actor"), project: field("project"), action: field("action"),
      since: isoValue($("#audit-since").value), until: isoValue($("#audit-until").value),
      limit: params.get("limit") || "",
    }));
  });
}

function shown(value) {
  if (value === undefined) return t("(not set)");
  if (value === null || value === "") return t("(none)");
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** One side of a change: text in a <pre> when it spans lines, else inline. */
function side(value, kind) {
  const text = shown(value);
  const cls = `audit-${kind}`;
  return text.includes("\n")
    ? el("pre", { class: `${cls} mono`, title: t(kind) }, text)
    : el("span", { class: cls, title: t(kind) }, text);
}

/** Field changes as a table: field, before, after (a side no change has is left out:
 * a created document shows only "after", a deleted one only "before"). */
function changesTable(changes) {
  const entries = Object.entries(changes);
  const sides = ["before", "after"].filter((kind) =>
    entries.some(([, change]) => kind in change));
  const cell = (change, kind) => el("td", null, kind in change ? side(change[kind], kind)
    : el("span", { class: "muted" }, t(kind === "after" ? "(removed)" : "(not set)")));
  const rows = entries.map(([path, change]) => el("tr", null,
    el("th", { class: "mono" }, path), ...sides.map((kind) => cell(change, kind))));
  return el("table", { class: "list compact audit-changes" },
    el("thead", null, el("tr", null, el("th"), ...sides.map((kind) => el("th", null, t(kind))))),
    el("tbody", null, ...rows));
}

function detailsCell(details) {
  const cell = el("td", { class: "audit-details" });
  for (const [key, value] of Object.entries(details || {})) {
    if (key === "changes" && value && typeof value === "object") {
      if (Object.keys(value).length) cell.append(changesTable(value));
      continue;
    }
    cell.append(el("div", null, el("span", { class: "muted" }, `${key}: `), shown(value)));
  }
  return cell;
}

function entryRow(entry) {
  return el("tr", { dataset: { id: entry.id } },
    el("td", { title: String(entry.ts) }, fmtTime(entry.ts)),
    el("td", { class: "audit-actor" }, entry.actor),
    el("td", { class: "mono" }, entry.address || ""),
    el("td", null, entry.via || ""),
    el("td", { class: "mono audit-action" }, entry.action),
    el("td", null, String(entry.target ?? "")),
    el("td", null, entry.project
      ? el("a", { href: `/projects/${encodeURIComponent(entry.project)}` }, entry.project)
      : ""),
    detailsCell(entry.details));
}

async function load() {
  const filters = currentFilters();
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
  const body = $("#audit-entries");
  const paging = clear($("#audit-paging"));
  try {
    const page = await get(`/api/audit?${query}`);
    clear(body);
    for (const entry of page.entries) body.append(entryRow(entry));
    if (!page.entries.length) {
      body.append(el("tr", null, el("td", { colspan: 8, class: "muted" },
        t("No entries match."))));
    }
    if (filters.before) {
      paging.append(el("a", { href: pageUrl({ ...filters, before: "" }), id: "audit-newest" },
        t("Newest entries")), " ");
    }
    if (page.next_before) {
      paging.append(el("a", { href: pageUrl({ ...filters, before: String(page.next_before) }),
        id: "audit-older" }, t("Older entries")));
    }
  } catch (error) {
    showError(error.message);
  }
}

applyRole();
setUpForm();
load();
