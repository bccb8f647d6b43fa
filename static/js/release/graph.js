// The flowchart: the local stages, then the hosts (one node per host up to HOST_LIMIT,
// otherwise one node per batch with live counts). Laid out once with dagre; events only
// change node data, in one cy.batch() at most every GRAPH_INTERVAL_MS.
import cytoscape from "/vendor/cytoscape/cytoscape.esm.min.mjs";
import dagre from "/vendor/cytoscape-dagre/cytoscape-dagre.min.mjs";
import { t, tn } from "../i18n.js";
import { fmtDuration, stateLabel } from "../util.js";
import { LOCAL_STAGES } from "./model.js";

cytoscape.use(dagre);

export const HOST_LIMIT = 50;
const GRAPH_INTERVAL_MS = 250; // the chart's canvas is redrawn at most four times a second
const ROWS = 10; // nodes per column before a batch wraps into the next column
const GROUP_ROWS = 5; // group nodes are taller: fewer a column
const CHUNK = 50; // hosts per group node when grouped: a big batch becomes several nodes
const COLORS = {
  // state: [fill, text, border]
  pending: ["#e4e7eb", "#1f2933", "#9aa5b1"],
  running: ["#2b7bd6", "#ffffff", "#174f8f"],
  ok: ["#1f9d55", "#ffffff", "#146c3a"],
  failed: ["#d64545", "#ffffff", "#962d2d"],
  skipped: ["#e9c46a", "#3d2e00", "#b8923a"],
  cancelled: ["#7b8794", "#ffffff", "#52606d"],
  rolled_back: ["#8b5cf6", "#ffffff", "#5b30c9"],
  interrupted: ["#f0883e", "#ffffff", "#b85d1a"],
  paused: ["#f5d76e", "#3d2e00", "#b8923a"],
};
const GROUP_ORDER = ["ok", "failed", "skipped", "cancelled", "rolled_back", "interrupted",
  "running", "pending"];

function stylesheet() {
  const styles = [
    { selector: "node", style: {
      shape: "round-rectangle", "font-family": "system-ui, sans-serif", "font-size": 11,
      label: "data(label)", "text-valign": "center", "text-halign": "center",
      "border-width": 1, width: 124, height: 26, "text-wrap": "ellipsis",
      "text-max-width": 116, "background-color": COLORS.pending[0],
      color: COLORS.pending[1], "border-color": COLORS.pending[2],
    } },
    { selector: "node.stage", style: { width: 112, height: 38, "text-wrap": "wrap",
      "text-max-width": 106,
      "font-size": 11, "font-weight": 600 } },
    { selector: "node.batch", style: { width: 84, height: 22, "font-size": 10, shape: "tag",
      "background-color": "#ffffff", color: "#3e4c59", "border-color": "#9aa5b1" } },
    { selector: "node.group", style: { width: 230, height: 62, "text-wrap": "wrap",
      "text-max-width": 220, "font-size": 11, "font-weight": 600, color: "#1f2933",
      "text-background-color": "#ffffff", "text-background-opacity": 0.88,
      "text-background-padding": 2, "text-background-shape": "round-rectangle",
      "background-fill": "linear-gradient", "background-gradient-direction": "to-right" } },
    { selector: "edge", style: { width: 1.2, "line-color": "#9aa5b1",
      "target-arrow-color": "#9aa5b1", "target-arrow-shape": "triangle",
      "arrow-scale": 0.7, "curve-style": "bezier" } },
    { selector: "edge.chain", style: { visibility: "hidden" } },
    { selector: "node:selected", style: { "border-width": 3, "border-color": "#111827",
      "underlay-color": "#111827", "underlay-opacity": 0.15, "underlay-padding": 4 } },
  ];
  for (const [state, [fill, text, border]] of Object.entries(COLORS)) {
    styles.push({ selector: `node[state = "${state}"]`, style: {
      "background-color": fill, color: text, "border-color": border } });
  }
  // Groups keep dark text on a white label background whatever their fill.
  styles.push({ selector: "node.group", style: { color: "#1f2933" } });
  styles.push({ selector: "node.batch", style: { "background-color": "#ffffff",
    color: "#3e4c59" } });
  return styles;
}

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
    cy.layout({ name: "dagre", rankDir: "LR", animate: false, fit: false }).run();
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
    const nodes = [];
    const edges = [];
    const edge = (source, target, cls) => edges.push({ group: "edges",
      data: { id: `e:${source}>${target}`, source, target }, classes: cls || "" });
    LOCAL_STAGES.forEach((stage, index) => {
      nodes.push({ group: "nodes", data: { id: `local:${stage}`, state: "pending",
        label: t(stage) }, classes: "stage" });
      if (index) edge(`local:${LOCAL_STAGES[index - 1]}`, `local:${stage}`);
    });
    const start = `local:${LOCAL_STAGES[LOCAL_STAGES.length - 1]}`;
    const batches = model.batches;
    if (this.grouped) {
      this.groups = [];
      this.groupOf = new Map();
      batches.forEach((names, index) => {
        for (let at = 0; at < names.length; at += CHUNK) {
          const group = { id: `group:${this.groups.length + 1}`, batch: index + 1,
            names: names.slice(at, at + CHUNK), from: at + 1,
            to: Math.min(at + CHUNK, names.length), size: names.length };
          for (const name of group.names) this.groupOf.set(name, this.groups.length);
          this.groups.push(group);
        }
      });
      // Columns of GROUP_ROWS nodes; each batch starts a new column, linked from the
      // batch before it (the hidden "chain" edges only keep the columns in order).
      const columns = [];
      this.groups.forEach((group, index) => {
        nodes.push({ group: "nodes", data: { id: group.id, index, state: "pending",
          label: "" }, classes: "group" });
        let column = columns[columns.length - 1];
        if (!column || column.batch !== group.batch || column.ids.length === GROUP_ROWS) {
          column = { batch: group.batch, ids: [] };
          columns.push(column);
        }
        const row = column.ids.length;
        column.ids.push(group.id);
        const before = columns[columns.length - 2];
        if (!before) edge(start, group.id);
        else if (before.batch !== group.batch && row === 0) edge(before.ids[0], group.id);
        else edge(before.ids[Math.min(row, before.ids.length - 1)], group.id, "chain");
      });
    } else {
      let from = [start];
      batches.forEach((names, index) => {
        let heads = from;
        if (batches.length > 1) {
          const id = `batch:${index + 1}`;
          nodes.push({ group: "nodes", data: { id, batch: index + 1,
            label: t("Batch {n}/{of}", { n: index + 1, of: batches.length }) },
          classes: "batch" });
          for (const source of from) edge(source, id);
          heads = [id];
        }
        names.forEach((name, i) => {
          nodes.push({ group: "nodes", data: { id: `host:${name}`, host: name,
            state: "pending", label: name }, classes: "host" });
          if (i < ROWS) for (const head of heads) edge(head, `host:${name}`);
          else edge(`host:${names[i - ROWS]}`, `host:${name}`, "chain");
        });
        const lastColumn = Math.floor((names.length - 1) / ROWS) * ROWS;
        from = names.slice(lastColumn).map((name) => `host:${name}`);
      });
    }
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
    // Group columns sit closer: a big release has more of them, and labels must stay legible.
    this.cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 8, rankSep: this.grouped ? 22 : 34,
      edgeSep: 4,
      animate: false, fit: false }).run();
    this.orderColumns();
    this.fit();
    lap("layout");
    await nextTask();
    mark = performance.now();
    this.cy.on("tap", "node.host", (event) => this.onHost(event.target.data("host")));
    this.cy.on("tap", "node.stage", () => this.onLocal());
    this.cy.on("tap", "node.batch", (event) => {
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

  // Dagre orders the nodes of a column to reduce crossings, which can turn a batch
  // upside down; put each column back in order (same slots, sorted). Group columns are
  // also top-aligned, so a short last column starts at the first row.
  orderColumns() {
    const columns = new Map();
    this.cy.nodes(".host, .group").forEach((node, index) => {
      const x = Math.round(node.position("x"));
      if (!columns.has(x)) columns.set(x, []);
      columns.get(x).push({ node, index });
    });
    const slotsOf = (members) => members.map((m) => m.node.position("y")).sort((a, b) => a - b);
    let rows = [];
    for (const members of columns.values()) {
      if (members.length > rows.length) rows = slotsOf(members);
    }
    for (const members of columns.values()) {
      const ys = this.grouped ? rows : slotsOf(members);
      members.sort((a, b) => a.index - b.index);
      members.forEach((m, i) => m.node.position({ x: m.node.position("x"), y: ys[i] }));
    }
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
    this.cy.fit(undefined, 16);
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
          const state = entry.state || "pending";
          const duration = entry.duration_ms ? `\n${fmtDuration(entry.duration_ms)}` : "";
          this.cy.getElementById(`local:${stage}`).data({ state,
            label: `${t(stage)}${state === "skipped" ? `\n${stateLabel(state)}` : duration}` });
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
