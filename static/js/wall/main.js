// The wall page: snapshot (GET /api/wall), then the `wall` topic after its seq through
// the shared event client (its own endpoints, which a wall link may use). Changes are
// applied at once and drawn at most once per animation frame. The drawn model is
// `window.__wall` (tiles are on a canvas) for tests and benches.
import { EventClient, STATUS } from "../events.js";
import { t } from "../i18n.js";
import { $ } from "../util.js";
import { drawPage } from "./draw.js";
import { layout } from "./layout.js";
import { WallModel } from "./model.js";
import { drawRecent, drawRunning } from "./panels.js";

const STALE_GRACE_MS = 2000; // "connecting" this long (after load) greys the wall out

const body = document.body;
const options = {
  by: body.dataset.by || "group",
  only: body.dataset.only || "",
  group: body.dataset.group || "",
  paging: body.dataset.paging || "",
  every: Number(body.dataset.every) || 10,
};
const canvas = $("#wall-tiles");
const model = new WallModel();
const wall = { model, options, tiles: [], layout: null, page: 0, pages: 1, frames: 0,
  status: "connecting", revoked: false };
window.__wall = wall;
let frame = 0;
let drawnVersion = -1;
let staleTimer = null;
let client = null;

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  if (!wall.loaded) return; // nothing to draw before the snapshot
  const started = performance.now();
  if (drawnVersion !== model.version || wall.resized) {
    wall.layout = layout([...model.hosts.values()], options, canvas.clientWidth, canvas.clientHeight,
      model.nameOrder());
    wall.pages = wall.layout.pages.length;
    wall.resized = false;
    drawRunning($("#wall-running"), model, Date.now());
    drawRecent($("#wall-recent"), model);
  }
  if (wall.page >= wall.pages) wall.page = 0;
  wall.tiles = drawPage(canvas, wall.layout, wall.page, options.by,
    options.only === "problems" ? t("no problems") : t("no hosts"));
  wall.seq = model.seq;
  drawnVersion = model.version;
  wall.frames++;
  canvas.dataset.tiles = String(wall.tiles.length);
  canvas.dataset.seq = String(model.seq);
  const pageLabel = $("#wall-page");
  pageLabel.hidden = wall.pages <= 1;
  pageLabel.textContent = options.paging === "auto"
    ? t("page {n} of {of}", { n: wall.page + 1, of: wall.pages })
    : t("{n} more", { n: wall.layout.pages.slice(1).reduce((n, p) => n + p.reduce((k, b) => k + b.items.length, 0), 0) });
  if (body.dataset.rendered !== "true") {
    body.dataset.rendered = "true";
    performance.mark("ferry:first-render");
  }
  wall.lastRenderMs = performance.now() - started;
}

function showOverlay(text) {
  const overlay = $("#wall-overlay");
  overlay.hidden = !text;
  $("#wall-overlay-text").textContent = text || "";
}

function setStale(stale) {
  body.classList.toggle("stale", stale);
  if (!wall.revoked) showOverlay(stale ? t("reconnecting…") : "");
}

async function revokedOrSignedOut() {
  let status = 0;
  try {
    status = (await fetch("/api/wall", { credentials: "same-origin" })).status;
  } catch {
    return setStale(true);
  }
  wall.revoked = true;
  body.classList.add("stale", "revoked");
  const text = status === 410 ? t("this link was revoked") : t("signed out: sign in again");
  $("#wall-status").dataset.status = "revoked";
  $("#wall-status").textContent = text;
  showOverlay(text);
  if (client) client.close();
}

function onStatus(status) {
  wall.status = status;
  const badge = $("#wall-status");
  if (wall.revoked) return;
  badge.dataset.status = status;
  badge.textContent = {
    [STATUS.LIVE]: t("live"), [STATUS.POLLING]: t("live (long-polling)"),
    [STATUS.CONNECTING]: t("connecting…"), [STATUS.OFFLINE]: t("reconnecting…"),
  }[status] || status;
  clearTimeout(staleTimer);
  if (status === STATUS.LIVE || status === STATUS.POLLING) setStale(false);
  else if (status === STATUS.OFFLINE) setStale(true);
  else if (status === STATUS.CONNECTING) staleTimer = setTimeout(() => setStale(true), STALE_GRACE_MS);
  else if (status === STATUS.UNAUTHENTICATED) revokedOrSignedOut();
}

function tick() {
  const clock = $("#wall-clock");
  const now = new Date();
  clock.textContent = now.toLocaleTimeString(document.documentElement.lang || undefined,
    { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  clock.dateTime = now.toISOString();
  if (model.running().length) drawRunning($("#wall-running"), model, now.getTime());
}

function describeMode() {
  const parts = [];
  if (options.group) parts.push(options.group);
  if (options.only === "problems") parts.push(t("failed") + " / " + t("running"));
  $("#wall-mode").textContent = parts.join(" · ");
}

async function start() {
  tick();
  setInterval(tick, 1000);
  describeMode();
  new ResizeObserver(() => {
    wall.resized = true;
    schedule();
  }).observe(canvas);
  let response;
  try {
    // As the page's preload asked for it (same URL, mode and credentials), so the
    // snapshot already on its way is used, not fetched again.
    response = await fetch("/api/wall", { credentials: "same-origin" });
  } catch {
    setStale(true);
    setTimeout(start, 3000);
    return;
  }
  if (response.status === 401 || response.status === 410) return revokedOrSignedOut();
  if (!response.ok) {
    setStale(true);
    setTimeout(start, 3000);
    return;
  }
  model.load(await response.json());
  wall.loaded = true;
  schedule(); // drawn in the next frame: parsing and drawing are two tasks, not one
  client = new EventClient({ onStatus, paths: { socket: "/wall/ws", poll: "/api/wall/events" } });
  wall.client = client;
  client.subscribe("wall", model.seq, (events) => {
    model.apply(events);
    schedule();
  });
  if (options.paging === "auto") {
    setInterval(() => {
      if (wall.pages > 1) {
        wall.page = (wall.page + 1) % wall.pages;
        schedule();
      }
    }, options.every * 1000);
  }
}

start();
