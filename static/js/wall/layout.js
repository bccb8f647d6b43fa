// Where every tile goes: hosts grouped (by host group or project), problems first, the
// biggest tile size at which everything fits the board; at COLLAPSE_AT hosts and more,
// the hosts of a group that are not problems collapse into one tile per state with a
// count. When even the smallest tiles do not fit, the blocks are split into pages.
import { PROBLEMS, RANK, naturalCompare } from "./model.js";

export const COLLAPSE_AT = 2000;
const MAX_TILE_W = 400;
const MIN_TILE_W = 18;

function rank(state) {
  const index = RANK.indexOf(state);
  return index < 0 ? RANK.length : index;
}

// Hosts → [{key, hosts: [...]}], filtered by the URL's modes.
export function groupHosts(hosts, { by, group, only }) {
  const groups = new Map();
  for (const host of hosts) {
    const state = host.state || "none";
    if (only === "problems" && !PROBLEMS.includes(state)) continue;
    let key;
    if (by === "project") {
      key = host.project || "";
      if (group && key !== group) continue;
    } else {
      const names = Array.isArray(host.groups) ? host.groups : [];
      if (group && !names.includes(group)) continue;
      key = group || names[0] || "";
    }
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(host);
  }
  return [...groups].map(([key, members]) => ({ key, hosts: members }));
}

// One group's composite (counts per state, worst state) and its tiles, problems first.
export function groupItems(group, collapse, order) {
  const counts = {};
  for (const host of group.hosts) {
    const state = host.state || "none";
    counts[state] = (counts[state] || 0) + 1;
  }
  const states = Object.keys(counts).sort((a, b) => rank(a) - rank(b));
  const keyed = group.hosts.map((host) => [rank(host.state || "none"), order.get(host.name) ?? 0, host]);
  keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const sorted = keyed.map((entry) => entry[2]);
  let items;
  if (collapse) {
    items = sorted.filter((h) => PROBLEMS.includes(h.state)).map((host) => ({ host }));
    for (const state of states) {
      if (!PROBLEMS.includes(state)) items.push({ collapsed: state, count: counts[state] });
    }
  } else {
    items = sorted.map((host) => ({ host }));
  }
  return { key: group.key, counts, worst: states[0] || "none", total: group.hosts.length, items };
}

function metrics(tileW) {
  const tileH = Math.max(12, Math.round(tileW * 0.42));
  const gap = Math.max(2, Math.round(tileW * 0.05));
  const headH = Math.max(20, Math.min(44, Math.round(tileH * 0.75)));
  return { tileW, tileH, gap, headH, blockGap: Math.max(8, gap * 3) };
}

// Shelf-pack the groups' blocks into pages of width × height; returns pages of blocks.
function pack(groups, m, width, height, split) {
  const perRow = Math.max(1, Math.floor((width + m.gap) / (m.tileW + m.gap)));
  const headMinW = Math.min(width, m.headH * 11);
  const rowsFit = Math.max(1, Math.floor((height - m.headH) / (m.tileH + m.gap)));
  const pieces = [];
  for (const group of groups) {
    const cols = Math.min(perRow, Math.max(1, group.items.length));
    const rows = Math.ceil(group.items.length / cols) || 1;
    if (split && rows > rowsFit) {
      for (let start = 0; start < group.items.length; start += rowsFit * cols) {
        pieces.push({ group, items: group.items.slice(start, start + rowsFit * cols), cols });
      }
    } else pieces.push({ group, items: group.items, cols });
  }
  const pages = [[]];
  let x = 0;
  let y = 0;
  let shelf = 0;
  for (const piece of pieces) {
    const rows = Math.ceil(piece.items.length / piece.cols) || 1;
    const w = Math.max(headMinW, piece.cols * (m.tileW + m.gap) - m.gap);
    const h = m.headH + rows * (m.tileH + m.gap);
    if (x > 0 && x + w > width) {
      x = 0;
      y += shelf + m.blockGap;
      shelf = 0;
    }
    if (y > 0 && y + h > height) {
      if (!split) return null;
      pages.push([]);
      x = 0;
      y = 0;
      shelf = 0;
    }
    if (h > height && !split) return null;
    pages[pages.length - 1].push({ ...piece, x, y, w, h });
    x += w + m.blockGap;
    shelf = Math.max(shelf, h);
  }
  return pages;
}

// The whole layout for a board of width × height (CSS pixels). Each group is sorted in a
// slice of its own when the work so far took longer than SLICE_MS (`pause` gives the
// main thread back in between).
const SLICE_MS = 8;

export async function layout(hosts, options, width, height, order, pause) {
  const collapse = hosts.length >= COLLAPSE_AT;
  let deadline = performance.now() + SLICE_MS;
  const groups = [];
  for (const group of groupHosts(hosts, options)) {
    if (performance.now() > deadline) {
      await pause();
      deadline = performance.now() + SLICE_MS;
    }
    groups.push(groupItems(group, collapse, order));
  }
  groups.sort((a, b) => rank(a.worst) - rank(b.worst) || naturalCompare(a.key, b.key));
  let tileW = MAX_TILE_W;
  while (tileW > MIN_TILE_W) {
    const m = metrics(tileW);
    const pages = pack(groups, m, width, height, false);
    if (pages) return { groups, metrics: m, pages, collapse, width, height };
    tileW = Math.floor(tileW * 0.92);
  }
  const m = metrics(MIN_TILE_W);
  return { groups, metrics: m, pages: pack(groups, m, width, height, true), collapse, width,
    height };
}
