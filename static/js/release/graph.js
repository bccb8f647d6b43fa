// The flowchart: the local stages, then one box per batch holding its hosts (one node
// per host up to HOST_LIMIT, beyond that one node per 50 hosts of a batch, with live
// counts). Positions are computed once (layout.js) for the width of the page; events
// only change node data, in one cy.batch() at most every GRAPH_INTERVAL_MS.
import cytoscape from "/vendor/cytoscape/cytoscape.esm.min.mjs";
import { t, tn } from "../i18n.js";
import { stateLabel } from "../util.js";
import { COLORS, SIZES, localLabel, stylesheet } from "./graph_style.js";
import { layoutChart } from "./layout.js";
import { LOCAL_STAGES } from "./model.js";

export const HOST_LIMIT = 300;
const GRAPH_INTERVAL_MS = 250; // the chart's canvas is redrawn at most four times a second
const CHUNK = 50; // hosts per group node when grouped: a big batch becomes several nodes
const MANY = 50; // more hosts than this: smaller host nodes, so a batch fits the page
const FIT_PADDING = 16;
const GROUP_ORDER = ["ok", "failed", "skipped", "cancelled", "rolled_back", "interrupted",
  "running", "pending"];

function nextTask() {
  return new Promise((resolve) => { setTimeout(resolve, 0); });
}

// After the next frame is drawn; a hidden tab draws no frames, so give up after 100 ms.
function nextFrame() {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 100);
    requestAnimationFrame(() => setTimeout(() => {
      clearTimeout(timer);
      resolve();
    }, 0));
  });
}

let warming = null;

/** Draw a two-node chart out of sight and throw it away. Cytoscape compiles its code on
 * first use; done here, while the snapshot is on its way, the real chart's first steps
 * and first draw cost a fraction as much, so no single task holds the page long. */
export function warmUp() {
  warming ||= (async () => {
    const box = document.createElement("div");
    box.className = "flow-warmup";
    document.body.append(box);
    const cy = cytoscape({ container: box, style: stylesheet(), layout: { name: "preset" },
      autoungrabify: true });
    await nextTask();
    cy.add([
      { group: "nodes", data: { id: "a", state: "ok", label: "a" }, classes: "stage" },
      { group: "nodes", data: { id: "b", state: "running", label: "b\nc" }, classes: "group" },
      { group: "edges", data: { id: "a>b", source: "a", target: "b" } },
    ]);
    await nextFrame();
    cy.$("#b").position({ x: 200, y: 60 });
    cy.$("#b").style({ "background-gradient-stop-colors": "#1f9d55 #1f9d55 #2b7bd6 #2b7bd6",
      "background-gradient-stop-positions": "0% 50% 50% 100%" });
    await nextFrame();
    cy.destroy();
    box.remove();
  })().catch(() => {});
  return warming;
}

export class FlowGraph {
  constructor(container, model, { onHost, onGroup, onLocal }) {
    this.container = container;
    this.model = model;
    this.onHost = onHost;
    this.onGroup = onGroup;
    this.onLocal = onLocal;
    this.groups = [];
    this.groupOf = new Map();
    this.cy = null;
    this.grouped = false;
    this.pendingLocal = false;
    this.pendingHosts = new Set();
    this.flushTimer = null;
  }

  /** Create, lay out and colour the chart, in three tasks (none holds the page long). */
  async build() {
    await warmUp();
    const model = this.model;
    const timings = {};
    let mark = performance.now();
    // Each step is also a performance measure ("ferry:chart-<step>"), for DevTools and
    // the console benchmark.
    const lap = (name) => {
      const now = performance.now();
      timings[name] = Math.round(now - mark);
      performance.measure(`ferry:chart-${name}`, { start: mark, end: now });
      mark = now;
    };
    this.grouped = model.total() > HOST_LIMIT;
    const { nodes, edges } = this.elements();
    this.container.classList.add("flow-pending");
    this.cy = cytoscape({
      container: this.container,
      style: stylesheet(),
      layout: { name: "preset" },
      minZoom: 0.15,
      maxZoom: 2.5,
      boxSelectionEnabled: false,
      autoungrabify: true,
      pixelRatio: "auto",
    });
    lap("create");
    await nextTask();
    mark = performance.now();
    this.cy.add([...nodes, ...edges]);
    lap("add");
    await nextTask();
    mark = performance.now();
    this.fit();
    lap("layout");
    await nextTask();
    mark = performance.now();
    this.cy.on("tap", "node.host", (event) => this.onHost(event.target.data("host")));
    this.cy.on("tap", "node.stage", () => this.onLocal());
    this.cy.on("tap", "node.batch, node.caption", (event) => {
      const batch = event.target.data("batch");
      this.onGroup(this.model.batches[batch - 1] || [],
        t("Batch {n}/{of}", { n: batch, of: this.model.batches.length }));
    });
    this.cy.on("tap", "node.group", (event) => {
      const group = this.groups[event.target.data("index")];
      this.onGroup(group.names, this.groupTitle(group));
    });
    this.pendingLocal = true;
    this.pendingHosts = new Set(model.order);
    this.flush();
    this.container.classList.remove("flow-pending");
    this.watchPageLayout();
    lap("colour");
    return timings;
  }

  /** The chart's nodes and edges, placed for the container's width; the container gets
   * the height the chart needs (within bounds), so a big release stays legible. */
  elements() {
    const model = this.model;
    const blocks = LOCAL_STAGES.map((stage) => ({ id: `local:${stage}`, kind: "stage",
      w: SIZES.stage.w, h: SIZES.stage.h }));
    const nodes = LOCAL_STAGES.map((stage) => ({ group: "nodes", classes: "stage",
      data: { id: `local:${stage}`, state: "pending", label: t(stage) } }));
    const batches = model.batches;
    const many = model.total() > MANY;
    const hostSize = many ? SIZES.small : SIZES.host;
    this.groups = [];
    this.groupOf = new Map();
    const children = [];
    batches.forEach((names, index) => {
      const id = `batch:${index + 1}`;
      const data = { batch: index + 1, parent: id };
      let items;
      if (this.grouped) {
        items = [];
        for (let at = 0; at < names.length; at += CHUNK) {
          const group = { id: `group:${this.groups.length + 1}`, batch: index + 1,
            names: names.slice(at, at + CHUNK), from: at + 1,
            to: Math.min(at + CHUNK, names.length), size: names.length };
          for (const name of group.names) this.groupOf.set(name, this.groups.length);
          children.push({ group: "nodes", classes: "group", data: { ...data, id: group.id,
            index: this.groups.length, state: "pending", label: "" } });
          items.push(group.id);
          this.groups.push(group);
        }
      } else {
        items = names.map((name) => `host:${name}`);
        for (const name of names) {
          children.push({ group: "nodes", classes: many ? "host small" : "host",
            data: { ...data, id: `host:${name}`, host: name, state: "pending", label: name } });
        }
      }
      const size = this.grouped ? SIZES.group : hostSize;
      blocks.push({ id, kind: "batch", items, itemW: size.w, itemH: size.h });
      nodes.push({ group: "nodes", classes: "batch", data: { id, batch: index + 1 } });
      children.push({ group: "nodes", classes: "caption", data: { ...data,
        id: `caption:${id}`, label: `${t("Batch {n}/{of}", { n: index + 1,
          of: batches.length })} · ${tn("{n} host", "{n} hosts", names.length)}` } });
    });
    const width = Math.max(480, (this.container.clientWidth || 960) - 2 * FIT_PADDING);
    const layout = layoutChart(blocks, width);
    for (const node of [...nodes, ...children]) {
      const position = layout.positions.get(node.data.id);
      if (position) node.position = position;
      if (node.classes === "caption") node.data.w = layout.captions.get(node.data.parent);
    }
    const edges = layout.edges.map(({ source, target, wrap }) => ({ group: "edges",
      classes: wrap ? "wrap" : "next", data: { id: `e:${source}>${target}`, source, target } }));
    // A big release gets a tall chart rather than an unreadable one (the page scrolls).
    const most = Math.max(440, Math.round(window.innerHeight * 1.25));
    const height = Math.min(most, Math.max(300, layout.height + 2 * FIT_PADDING + 8));
    this.container.style.height = `${height}px`;
    return { nodes: [...nodes, ...children], edges };
  }

  // Cytoscape maps clicks with a cached position of its container, refreshed on window
  // resize and scroll only; a banner appearing above the chart moves it, so tell it.
  watchPageLayout() {
    let pending = false;
    const observer = new ResizeObserver(() => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        this.cy.resize();
      });
    });
    observer.observe(this.container.closest("main") || document.body);
  }

  fit() {
    if (!this.cy) return;
    this.cy.fit(undefined, FIT_PADDING);
    if (this.cy.zoom() > 1.25) {
      this.cy.zoom(1.25);
      this.cy.center();
    }
  }

  resize() {
    if (!this.cy) return;
    this.cy.resize();
    this.fit();
  }

  select(name) {
    if (!this.cy) return;
    this.cy.batch(() => {
      this.cy.$(":selected").unselect();
      if (name && !this.grouped) this.cy.getElementById(`host:${name}`).select();
    });
  }

  /** Note what changed; the canvas is redrawn at most every GRAPH_INTERVAL_MS, since a
   * redraw of a big chart costs far more than the table and progress bar updates, and at
   * once when the release itself changes state. */
  update(dirty) {
    if (!this.cy) return;
    this.pendingLocal ||= dirty.local;
    for (const name of dirty.states) this.pendingHosts.add(name);
    if (!this.pendingLocal && !this.pendingHosts.size) return;
    if (dirty.release) {
      // The release paused, ended or changed state: show the exact picture at once.
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
      this.flush();
      return;
    }
    if (this.flushTimer !== null) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush();
    }, GRAPH_INTERVAL_MS);
  }

  flush() {
    const dirty = { local: this.pendingLocal, hosts: this.pendingHosts };
    this.pendingLocal = false;
    this.pendingHosts = new Set();
    const model = this.model;
    this.cy.batch(() => {
      if (dirty.local) {
        for (const stage of LOCAL_STAGES) {
          const entry = model.local[stage] || {};
          this.cy.getElementById(`local:${stage}`).data({ state: entry.state || "pending",
            label: localLabel(stage, entry) });
        }
      }
      if (!dirty.hosts.size) return;
      if (!this.grouped) {
        for (const name of dirty.hosts) {
          const run = model.hosts.get(name);
          const node = this.cy.getElementById(`host:${name}`);
          if (run && node.nonempty() && node.data("state") !== run.state) {
            node.data("state", run.state);
          }
        }
        return;
      }
      const groups = new Set();
      for (const name of dirty.hosts) {
        const index = this.groupOf.get(name);
        if (index !== undefined) groups.add(index);
      }
      for (const index of groups) this.updateGroup(index);
    });
  }

  groupTitle(group) {
    const batch = t("Batch {n}/{of}", { n: group.batch, of: this.model.batches.length });
    if (group.from === 1 && group.to === group.size) {
      return `${batch} · ${tn("{n} host", "{n} hosts", group.size)}`;
    }
    return `${batch} · ${t("hosts {from}–{to} of {total}",
      { from: group.from, to: group.to, total: group.size })}`;
  }

  updateGroup(index) {
    const group = this.groups[index];
    const names = group.names;
    const node = this.cy.getElementById(group.id);
    if (node.empty()) return;
    const counts = {};
    for (const name of names) {
      const state = this.model.hosts.get(name)?.state || "pending";
      counts[state] = (counts[state] || 0) + 1;
    }
    const total = names.length || 1;
    let state = "pending";
    if (counts.failed) state = "failed";
    else if (counts.running) state = "running";
    else if (counts.ok === names.length) state = "ok";
    else if (!counts.pending && !counts.running) state = counts.ok ? "ok" : (
      Object.keys(counts)[0] || "pending");
    const parts = GROUP_ORDER.filter((s) => counts[s]).map((s) => `${stateLabel(s)} ${counts[s]}`);
    const lines = [
      this.groupTitle(group),
      parts.slice(0, 3).join(" · "),
      parts.slice(3).join(" · "),
    ].filter(Boolean);
    // The fill is a stacked bar of the batch's states, left to right.
    const colors = [];
    const stops = [];
    let at = 0;
    for (const s of GROUP_ORDER) {
      if (!counts[s]) continue;
      const end = at + (100 * counts[s]) / total;
      colors.push(COLORS[s][0], COLORS[s][0]);
      stops.push(`${at.toFixed(2)}%`, `${end.toFixed(2)}%`);
      at = end;
    }
    const label = lines.join("\n");
    const fill = `${colors.join(" ")}|${stops.join(" ")}`;
    if (group.label === label && group.fill === fill && group.state === state) return;
    group.label = label;
    group.fill = fill;
    group.state = state;
    node.data({ state, label, counts });
    node.style({
      "background-gradient-stop-colors": colors.join(" "),
      "background-gradient-stop-positions": stops.join(" "),
      "border-color": COLORS[state][2],
      "border-width": state === "failed" ? 3 : 2,
    });
  }
}
