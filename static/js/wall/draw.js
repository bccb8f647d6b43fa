// Draws a layout page on the canvas: group headers (worst state, counts) and one
// rectangle per tile. Names are drawn with fillText, as text: markup in a host name is
// just characters. Every drawn tile is also recorded (`drawn`) for tests and benches.
import { t } from "../i18n.js";

export const COLORS = {
  ok: "#23a55a", failed: "#e5484d", running: "#3b82f6", pending: "#4b5563",
  skipped: "#d4a72c", cancelled: "#8b949e", rolled_back: "#a371f7", interrupted: "#f0883e",
  none: "#30363d",
};
const INK = { skipped: "#1c1500", none: "#c9d1d9", pending: "#e6edf3" };
const FONT = 'system-ui, -apple-system, "Segoe UI", "PingFang SC", "Noto Sans CJK SC", sans-serif';
// One string per weight and size, shared by every cache entry and tile that uses it
// (a template literal per label would keep a copy of the whole font list in each).
// The caches below key on the number (`fontKeys`), not on the font's text.
const fonts = new Map();
const fontKeys = new Map();
function fontOf(weight, px) {
  const key = weight * 1000 + px;
  let font = fonts.get(key);
  if (font === undefined) {
    font = `${weight} ${px}px ${FONT}`;
    if (fonts.size >= 1024) {
      fonts.clear();
      fontKeys.clear();
    }
    fonts.set(key, font);
    fontKeys.set(font, key);
  }
  return font;
}
// 12345 → "12,345" (as English and Chinese both write it), without Intl (see model.js).
function grouped(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

// The page's text caches hold only texts that last: group names, host names, stages.
// Texts with a count in them (a header's counts, a collapsed tile's "1,234 ok") change
// with every redraw during a release, so they are measured when drawn and never kept: a
// cache of them would only fill up over the hours a wall stays open. The bound is for a
// fleet bigger than the screen shows, not for time.
const CACHE_MAX = 8192;

// Text that fits `width` in the current font: whole, or cut in the middle with an
// ellipsis (host names differ at their ends: "web-eu-…-0142").
// Measured afresh: a text with a count in it (a header's counts) is drawn this way.
function cut(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  for (let keep = text.length - 1; keep > 0; keep--) {
    const head = Math.ceil(keep / 2);
    const candidate = text.slice(0, head) + "…" + text.slice(text.length - (keep - head));
    if (ctx.measureText(candidate).width <= width) return candidate;
  }
  return "";
}

// `cut` of a lasting text, kept per font and whole pixel of width (a group's width moves
// by fractions of a pixel as its tiles come and go).
const fitted = new Map();
function fit(ctx, text, room) {
  const width = Math.floor(room);
  const key = `${ctx.__fontKey}|${width}|${text}`;
  let result = fitted.get(key);
  if (result === undefined) {
    result = cut(ctx, text, width);
    if (fitted.size >= CACHE_MAX) fitted.clear();
    fitted.set(key, result);
  }
  return result;
}

// The context's font is set only when it changes (parsing a font string for each of
// 2,000 tiles costs more than drawing them).
function setFont(ctx, font) {
  if (ctx.__font !== font) {
    ctx.font = font;
    ctx.__font = font;
    ctx.__fontKey = fontKeys.get(font) ?? font;
  }
}

function groupLabel(block, by) {
  if (block.group.key) return block.group.key;
  return by === "project" ? t("no project") : t("ungrouped");
}

// A tile's state in words ("none": no release has reached the host yet).
export function stateText(state) {
  return state === "none" ? t("never deployed") : t(state);
}

function countsText(counts) {
  return Object.entries(counts).sort((a, b) => b[1] - a[1])
    .map(([state, n]) => `${grouped(n)} ${stateText(state)}`).join(" · ");
}

// Work is cut into slices of about SLICE_MS, with the main thread given back between them
// (`pause`), so a big board never makes one long task.
const SLICE_MS = 8;

// `flush()` first makes the canvas draw what it was told (a canvas otherwise keeps its
// drawing to the end of the frame, and does it all in one go, on the main thread).
// With no `pause` (in a worker, where nothing else waits for the thread) it does nothing.
function slicer(pause, flush) {
  if (!pause) return async () => {};
  let deadline = performance.now() + SLICE_MS;
  return async () => {
    if (flush) flush();
    if (performance.now() > deadline) {
      await pause();
      deadline = performance.now() + SLICE_MS;
    }
  };
}

// Draw `board` ({page: blocks of a layout page, metrics, width, height}, see layout.js)
// on `canvas` (an element, or an OffscreenCanvas a worker was handed) at `ratio` device
// pixels per CSS pixel; resolves to the tiles drawn, in drawing order. Tiles are drawn
// into a back buffer (their labels worked out first, in one pass, so fonts change once
// per kind of line, not per tile), then handed to the canvas at once: a screen never shows
// a half-drawn board. On the main thread (`pause` given) the back buffer is drawn by the
// CPU (`willReadFrequently`), over as many slices as it takes (see slicer).
export async function drawPage(canvas, board, by, empty, { ratio = 1, pause = null } = {}) {
  const { width, height } = board; // as laid out (asking the canvas could force a layout)
  const pixelsW = Math.max(1, Math.round(width * ratio)); // a bitmap is never empty
  const pixelsH = Math.max(1, Math.round(height * ratio));
  if (!canvas.__back) canvas.__back = new OffscreenCanvas(pixelsW, pixelsH);
  const back = canvas.__back;
  if (back.width !== pixelsW || back.height !== pixelsH) {
    back.width = pixelsW;
    back.height = pixelsH;
  }
  const ctx = back.getContext("2d", { willReadFrequently: true });
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.__font = null; // a new bitmap forgets its font: set it again
  ctx.clearRect(0, 0, width, height);
  ctx.textBaseline = "middle";
  if (pause) await pause(); // a new bitmap is a few megabytes to clear: a slice of its own
  const m = board.metrics;
  const page = board.page;
  const breathe = slicer(pause);
  const tiles = [];
  for (const block of page) {
    const top = block.y + m.headH;
    for (let index = 0; index < block.items.length; index++) {
      const x = block.x + (index % block.cols) * (m.tileW + m.gap);
      const y = top + Math.floor(index / block.cols) * (m.tileH + m.gap);
      tiles.push(tileOf(ctx, block.items[index], x, y, m, block.group.key));
      if ((index & 31) === 31) await breathe();
    }
  }
  const painted = slicer(pause, () => ctx.getImageData(0, 0, 1, 1));
  for (const block of page) drawHeader(ctx, block, m, by);
  await painted();
  for (let i = 0; i < tiles.length; i++) {
    paintTile(ctx, tiles[i], m);
    if ((i & 3) === 3) await painted();
  }
  await painted();
  const drawn = tiles.map((tile) => tile.record);
  if (drawn.length === 0) {
    setFont(ctx, fontOf(600, Math.round(Math.min(width, height) / 12)));
    ctx.fillStyle = "#8b949e";
    ctx.textAlign = "center";
    ctx.fillText(empty, width / 2, height / 2);
    ctx.textAlign = "start";
  }
  await breathe();
  // The drawn bitmap is handed to the canvas, not copied (the back buffer starts afresh).
  // A canvas a worker holds has no layout to size its bitmap by: it is given the size.
  if (canvas instanceof OffscreenCanvas && (canvas.width !== pixelsW || canvas.height !== pixelsH)) {
    canvas.width = pixelsW;
    canvas.height = pixelsH;
  }
  canvas.getContext("bitmaprenderer").transferFromImageBitmap(back.transferToImageBitmap());
  return drawn;
}

// The fonts' first look-up and measures, done before the first draw needs them.
export function warmUp() {
  const ctx = new OffscreenCanvas(1, 1).getContext("2d");
  for (const weight of [400, 600]) refWidth(ctx, "host-0", weight);
  setFont(ctx, fontOf(700, 20));
  ctx.measureText("rack-0");
  countsText({ ok: 1000, none: 2 });
}

function drawHeader(ctx, block, m, by) {
  const size = Math.round(m.headH * 0.62);
  const chip = Math.round(m.headH * 0.5);
  const midY = block.y + m.headH / 2 - m.gap / 2;
  ctx.fillStyle = COLORS[block.group.worst] || COLORS.none;
  ctx.fillRect(block.x, midY - chip / 2, chip, chip);
  setFont(ctx, fontOf(700, size));
  ctx.fillStyle = "#e6edf3";
  const label = fit(ctx, groupLabel(block, by), Math.max(0, block.w * 0.45));
  const labelX = block.x + chip + size * 0.4;
  ctx.fillText(label, labelX, midY);
  const after = labelX + ctx.measureText(label).width + size * 0.6;
  setFont(ctx, fontOf(400, Math.round(size * 0.85)));
  ctx.fillStyle = "#8b949e";
  ctx.fillText(cut(ctx, countsText(block.group.counts), Math.max(0, block.x + block.w - after)),
    after, midY);
}

// A tile's record (for tests and benches) and its lines' fonts and text.
function tileOf(ctx, item, x, y, m, group) {
  const state = item.host ? item.host.state || "none" : item.collapsed;
  const record = { x, y, w: m.tileW, h: m.tileH, state, group };
  let shown = [];
  if (item.host) {
    record.name = item.host.name;
    record.stage = state === "running" ? item.host.stage || null : null;
    const lines = record.stage && m.tileH >= 34 ? [item.host.name, t(record.stage)] : [item.host.name];
    if (m.tileW >= 36) shown = lines.map((line, i) => tileLabel(ctx, m, lines.length, i, line));
  } else {
    record.collapsed = true;
    record.count = item.count;
    const line = `${grouped(item.count)} ${stateText(state)}`;
    if (m.tileW >= 36) shown = [labelOf(m, 1, 0, line, measureAtRef(ctx, line, 600))];
  }
  if (shown.length) record.label = shown[0].shown;
  return { record, state, labels: shown };
}

function paintTile(ctx, tile, m) {
  const { x, y } = tile.record;
  ctx.fillStyle = COLORS[tile.state] || COLORS.none;
  ctx.fillRect(x, y, m.tileW, m.tileH);
  if (!tile.labels.length) return;
  ctx.fillStyle = INK[tile.state] || "#ffffff";
  const pad = Math.max(3, Math.round(m.tileW * 0.05));
  const two = tile.labels.length === 2;
  for (let i = 0; i < tile.labels.length; i++) {
    setFont(ctx, tile.labels[i].font);
    ctx.fillText(tile.labels[i].shown, x + pad, y + m.tileH * (two ? (i === 0 ? 0.34 : 0.72) : 0.5));
  }
}

// A tile line's font and fitted text, with no measuring beyond one measureText per name
// or stage ever (at a reference size: widths scale with the font size). A first draw of
// 2,000 names is then arithmetic, not thousands of measureText calls and font changes.
// Labels are kept for the current tile size only (it changes as tiles come and go); a
// redraw at that size is one short look-up per line.
const REF_PX = 100;
const refWidths = new Map();
let labels = { tileSize: "", byLine: new Map() };

function measureAtRef(ctx, text, weight) {
  setFont(ctx, fontOf(weight, REF_PX));
  return ctx.measureText(text).width;
}

function refWidth(ctx, text, weight) {
  const key = `${weight}|${text}`;
  let width = refWidths.get(key);
  if (width === undefined) {
    width = measureAtRef(ctx, text, weight);
    if (refWidths.size >= CACHE_MAX) refWidths.clear();
    refWidths.set(key, width);
  }
  return width;
}

function tileLabel(ctx, m, count, i, line) {
  const tileSize = `${m.tileW}|${m.tileH}`;
  if (labels.tileSize !== tileSize) labels = { tileSize, byLine: new Map() };
  const key = `${count}|${i}|${line}`;
  let label = labels.byLine.get(key);
  if (label === undefined) {
    label = labelOf(m, count, i, line, refWidth(ctx, line, i === 0 ? 600 : 400));
    if (labels.byLine.size >= CACHE_MAX) labels.byLine.clear();
    labels.byLine.set(key, label);
  }
  return label;
}

// The font and shown text of line `i` of `count` on a tile of `m`'s size, from the
// line's width at REF_PX.
function labelOf(m, count, i, line, widthAtRef) {
  const size = Math.max(9, Math.min(40, Math.round(m.tileH / (count === 2 ? 2.6 : 2.2))));
  const pad = Math.max(3, Math.round(m.tileW * 0.05));
  const room = m.tileW - 2 * pad;
  const wanted = i === 0 ? size : Math.round(size * 0.8);
  const weight = i === 0 ? 600 : 400;
  const perPx = widthAtRef / REF_PX;                          // width at 1px
  const fitting = Math.max(Math.max(9, Math.round(wanted * 0.6)),
    Math.min(wanted, Math.floor(room / Math.max(perPx, 1e-6))));
  let shown = line;
  if (perPx * fitting > room && line.length > 1) {          // cut in the middle: "web-…-0142"
    const keep = Math.max(1, Math.floor((room / (perPx * fitting)) * line.length) - 1);
    const head = Math.ceil(keep / 2);
    shown = line.slice(0, head) + "…" + line.slice(line.length - (keep - head));
  }
  return { font: fontOf(weight, fitting), shown };
}
