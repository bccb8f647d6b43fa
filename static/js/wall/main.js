// The wall page: snapshot (sent with the page, as GET /api/wall gives it; fetched when
// the page has none), then the `wall` topic after its seq through
// the shared event client (its own endpoints, which a wall link may use). Changes are
// applied at once and drawn at most once per animation frame. The drawn model is
// `window.__wall` (tiles are on a canvas) for tests and benches: `page` and `tiles` are
// those on the screen.
//
// No step may hold the main thread long (a TV's browser is often a slow one): parsing,
// applying the snapshot, the layout and the panels are separate tasks, the tiles are
// drawn in a worker (or in slices, see painter.js), and a draw asked for while one is
// under way is done once, after it, with the newest model.
import { EventClient } from "../events.js";
import { t } from "../i18n.js";
import { screenStatus } from "../screen_status.js";
import { $ } from "../util.js";
import { layout } from "./layout.js";
import { WallModel } from "./model.js";
import { painter } from "./painter.js";
import { drawRecent, drawRunning } from "./panels.js";

const body = document.body;
const options = {
  by: body.dataset.by || "group",
  only: body.dataset.only || "",
  group: body.dataset.group || "",
  paging: body.dataset.paging || "",
  every: Number(body.dataset.every) || 10,
};
let canvas = $("#wall-tiles");
const model = new WallModel();
const wall = { model, options, tiles: [], layout: null, page: 0, pages: 1, frames: 0,
  status: "connecting", revoked: false };
window.__wall = wall;
let frame = 0;
let drawing = null; // the draw under way (a promise), if any
let drawAgain = false;
let drawnVersion = -1;
let pageWanted = 0; // the page to draw next (page=auto moves it on)
let client = null;
const { setStale, revokedOrSignedOut, onStatus } = screenStatus({
  prefix: "wall", probe: "/api/wall", screen: wall, client: () => client });

// The main thread back to the browser (input, frames, network) before going on.
function pause() {
  if (globalThis.scheduler && scheduler.yield) return scheduler.yield();
  return new Promise((resolve) => setTimeout(resolve, 0));
}

// A new size for the board (the window's, or the panels' as they change) lays it out anew.
const resized = new ResizeObserver((entries) => {
  const box = entries[entries.length - 1].contentRect;
  const laidOut = wall.layout;
  if (laidOut && laidOut.width === box.width && laidOut.height === box.height) return;
  wall.resized = true;
  schedule();
});
resized.observe(canvas);
const tilePainter = painter(canvas, pause, (fresh) => {
  resized.unobserve(canvas);
  canvas = fresh;
  resized.observe(canvas);
});
wall.painter = tilePainter;

function schedule() {
  if (!frame) frame = requestAnimationFrame(startDraw);
}

function startDraw() {
  frame = 0;
  if (!wall.loaded) return; // nothing to draw before the snapshot
  if (drawing) {
    drawAgain = true; // once more when this one is done, with whatever changed meanwhile
    return;
  }
  drawing = render().catch((error) => console.error(error)).finally(() => {
    drawing = null;
    if (drawAgain) {
      drawAgain = false;
      schedule();
    }
  });
}

// The releases and votes as they are now, for the panels: drawn from the same moment as
// the tiles, though the model may change while those are being drawn.
function panelView() {
  const running = model.running();
  const recent = model.recent();
  return { running: () => running, recent: () => recent, votes: new Map(model.votes) };
}

async function render() {
  const started = performance.now();
  const version = model.version;
  const seq = model.seq; // what the drawing shows: the model as it is now
  let result = wall.layout;
  let view = null;
  if (drawnVersion !== version || wall.resized || !result) {
    view = panelView();
    wall.resized = false;
    // The panels first: they take their room from the board, whose size the tiles are
    // laid out for (measured once they are in place, a layout of a handful of elements).
    wall.view = view;
    drawRunning($("#wall-running"), view, Date.now());
    drawRecent($("#wall-recent"), view);
    await pause();
    const board = canvas.getBoundingClientRect();
    result = await layout([...model.hosts.values()], options, board.width, board.height,
      model.nameOrder(), pause);
    await pause();
  }
  const pages = result.pages.length;
  const pageIndex = pageWanted < pages ? pageWanted : 0;
  const tiles = await tilePainter.draw(result, pageIndex, options.by,
    options.only === "problems" ? t("no problems") : t("no hosts"));
  wall.layout = result;
  wall.pages = pages;
  wall.page = pageIndex;
  pageWanted = pageIndex;
  wall.tiles = tiles;
  wall.seq = seq;
  drawnVersion = version;
  wall.frames++;
  canvas.dataset.tiles = String(tiles.length);
  canvas.dataset.seq = String(seq);
  const pageLabel = $("#wall-page");
  pageLabel.hidden = pages <= 1;
  pageLabel.textContent = options.paging === "auto"
    ? t("page {n} of {of}", { n: pageIndex + 1, of: pages })
    : t("{n} more", { n: result.pages.slice(1).reduce((n, p) => n + p.reduce((k, b) => k + b.items.length, 0), 0) });
  if (body.dataset.rendered !== "true") {
    body.dataset.rendered = "true";
    performance.mark("ferry:first-render");
  }
  wall.lastRenderMs = performance.now() - started;
}

function tick() {
  const clock = $("#wall-clock");
  const now = new Date();
  // 24-hour HH:MM:SS, as both languages write it; not toLocaleTimeString (see model.js).
  clock.textContent = [now.getHours(), now.getMinutes(), now.getSeconds()]
    .map((n) => String(n).padStart(2, "0")).join(":");
  clock.dateTime = now.toISOString();
  // The ETAs move on; the releases are those drawn with the tiles (see panelView).
  if (wall.view && wall.view.running().length) {
    drawRunning($("#wall-running"), wall.view, now.getTime());
  }
}

function describeMode() {
  const parts = [];
  if (options.group) parts.push(options.group);
  if (options.only === "problems") parts.push(t("failed") + " / " + t("running"));
  $("#wall-mode").textContent = parts.join(" · ");
}

// What the first draw would otherwise pay for on its own (the fonts' first measures),
// done in a slice of its own.
async function warmUp() {
  await pause();
  tilePainter.warmUp();
}

// The snapshot the page came with (read once), or null.
function inlineSnapshot() {
  const element = document.getElementById("wall-snapshot");
  if (!element) return null;
  element.remove();
  try {
    return JSON.parse(element.textContent);
  } catch {
    return null;
  }
}

// The snapshot from GET /api/wall (on a retry, or when the page came without one); null
// when the wall cannot be shown now (it says why, and tries again when that may help).
async function fetchSnapshot() {
  let response;
  try {
    response = await fetch("/api/wall", { credentials: "same-origin" });
  } catch {
    response = null;
  }
  if (response && (response.status === 401 || response.status === 410)) {
    revokedOrSignedOut();
    return null;
  }
  if (!response || !response.ok) {
    setStale(true);
    setTimeout(start, 3000);
    return null;
  }
  return response.json();
}

async function start() {
  await warmUp();
  await pause();
  let snapshot = inlineSnapshot();
  if (snapshot === null) snapshot = await fetchSnapshot();
  if (snapshot === null) return;
  await pause();
  model.load(snapshot);
  wall.loaded = true;
  schedule(); // drawn from the next frame on: parsing and drawing are separate tasks
  client = new EventClient({ onStatus, paths: { socket: "/wall/ws", poll: "/api/wall/events" } });
  wall.client = client;
  client.subscribe("wall", model.seq, (events) => {
    model.apply(events);
    schedule();
  });
  if (options.paging === "auto") {
    setInterval(() => {
      if (wall.pages > 1) {
        pageWanted = (wall.page + 1) % wall.pages;
        schedule();
      }
    }, options.every * 1000);
  }
}

describeMode();
setTimeout(() => {
  tick();
  setInterval(tick, 1000);
}, 0);
start();
