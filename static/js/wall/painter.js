// Where the wall's tiles are drawn. In a worker, on the canvas handed over to it, where
// the browser can do that (OffscreenCanvas, module workers): drawing 2,000 tiles then
// never holds the page's main thread, however slow or busy the machine (on a loaded one
// a slice of main-thread work waits in the CPU's run queue far longer than it runs).
// Elsewhere, and if the worker cannot start, on the main thread in slices (draw.js).
// Either way `draw` resolves to the tiles drawn.
import { allStrings } from "../i18n.js";
import { drawPage, warmUp as warmDraw } from "./draw.js";

// A layout page as plain data, just what drawing needs (a layout's blocks refer to every
// host's whole record, which is not worth copying to a worker).
function boardOf(result, pageIndex) {
  const page = (result.pages[pageIndex] || []).map((block) => ({
    x: block.x, y: block.y, w: block.w, cols: block.cols,
    group: { key: block.group.key, worst: block.group.worst, counts: block.group.counts },
    items: block.items.map((item) => (item.host
      ? { host: { name: item.host.name, state: item.host.state, stage: item.host.stage } }
      : { collapsed: item.collapsed, count: item.count })),
  }));
  return { page, metrics: result.metrics, width: result.width, height: result.height };
}

function ratio() {
  return window.devicePixelRatio || 1;
}

function onMainThread(canvas, pause) {
  return {
    where: "main",
    warmUp: warmDraw,
    draw: (result, pageIndex, by, empty) =>
      drawPage(canvas, boardOf(result, pageIndex), by, empty, { ratio: ratio(), pause }),
  };
}

// The worker, or null where it cannot be had. If it fails later (its script does not
// load), the canvas it held is replaced by a fresh one (`replaced(fresh)`), drawn on the
// main thread from then on, the draws it owed included.
function inWorker(canvas, pause, replaced) {
  if (typeof canvas.transferControlToOffscreen !== "function" || typeof Worker !== "function") {
    return null;
  }
  let worker;
  try {
    worker = new Worker(new URL("./draw_worker.js", import.meta.url), { type: "module" });
  } catch {
    return null; // a browser without module workers says so here
  }
  const offscreen = canvas.transferControlToOffscreen();
  worker.postMessage({ canvas: offscreen, strings: allStrings() }, [offscreen]);
  const owed = new Map(); // draw id → {args, resolve, reject}
  let next = 0;
  let fallback = null;
  const painter = {
    where: "worker",
    warmUp() {}, // the worker warms up as it starts
    draw(...args) {
      if (fallback) return fallback.draw(...args);
      const [result, pageIndex, by, empty] = args;
      return new Promise((resolve, reject) => {
        const id = ++next;
        owed.set(id, { args, resolve, reject });
        worker.postMessage({ id, board: boardOf(result, pageIndex), by, empty, ratio: ratio() });
      });
    },
  };
  worker.onmessage = ({ data }) => {
    const draw = owed.get(data.id);
    if (!draw) return;
    owed.delete(data.id);
    if (data.error) draw.reject(new Error(data.error));
    else draw.resolve(data.tiles);
  };
  worker.onerror = (event) => {
    event.preventDefault();
    console.warn("wall: drawing on the main thread, the worker failed:", event.message);
    worker.terminate();
    const fresh = canvas.cloneNode(false);
    canvas.replaceWith(fresh);
    replaced(fresh);
    fallback = onMainThread(fresh, pause);
    painter.where = fallback.where;
    fallback.warmUp();
    for (const draw of owed.values()) fallback.draw(...draw.args).then(draw.resolve, draw.reject);
    owed.clear();
  };
  return painter;
}

/** Draws on `canvas`: `{where, warmUp(), draw(result, pageIndex, by, empty) → tiles}`. */
export function painter(canvas, pause, replaced) {
  return inWorker(canvas, pause, replaced) || onMainThread(canvas, pause);
}
