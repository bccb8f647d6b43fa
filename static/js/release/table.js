// The host table: sortable, filterable, virtualised (only the visible rows are in the DOM,
// so 1,000 hosts cost the same as 30). Rows are re-drawn once per animation frame.
import { t } from "../i18n.js";
import { $, $$, el, fmtDuration, stateLabel } from "../util.js";

const ROW_HEIGHT = 28;
const OVERSCAN = 8;
const STATE_ORDER = { failed: 0, running: 1, interrupted: 2, cancelled: 3, rolled_back: 4,
  skipped: 5, pending: 6, ok: 7 };

export class HostTable {
  constructor(root, model, { onSelect }) {
    this.root = root;
    this.model = model;
    this.onSelect = onSelect;
    this.body = $(".vtable-body", root);
    this.spacer = $(".vtable-spacer", root);
    this.rows = [];          // pooled row elements
    this.view = [];          // names shown, in order
    this.sortKey = "batch";
    this.sortDir = 1;
    this.filterState = "";
    this.filterText = "";
    this.filterNames = null;  // a Set of host names (a group clicked in the flowchart)
    this.selected = null;
    this.needsView = true;
    this.onShown = null;
    this.body.addEventListener("scroll", () => this.paint(), { passive: true });
    this.body.addEventListener("click", (event) => {
      const row = event.target.closest(".vrow");
      if (event.target.closest("a.host-link")) return;   // the host's page, not its log
      if (row && row.dataset.host) this.onSelect(row.dataset.host);
    });
    this.body.addEventListener("keydown", (event) => this.onKey(event));
    for (const button of $$(".vtable-head button", root)) {
      button.addEventListener("click", () => this.sortBy(button.dataset.sort));
    }
    this.markSort();
  }

  sortBy(key) {
    if (this.sortKey === key) this.sortDir = -this.sortDir;
    else {
      this.sortKey = key;
      this.sortDir = 1;
    }
    this.markSort();
    this.refresh();
  }

  markSort() {
    for (const button of $$(".vtable-head button", this.root)) {
      const active = button.dataset.sort === this.sortKey;
      button.dataset.dir = active ? (this.sortDir > 0 ? "asc" : "desc") : "";
      button.setAttribute("aria-sort", active ? (this.sortDir > 0 ? "ascending" : "descending")
        : "none");
    }
  }

  setFilter({ state, text, names }) {
    if (state !== undefined) this.filterState = state;
    if (text !== undefined) this.filterText = text.trim().toLowerCase();
    if (names !== undefined) this.filterNames = names;
    this.body.scrollTop = 0;
    this.refresh();
  }

  select(name) {
    this.selected = name;
    this.paint();
  }

  /** Scroll so that `name` is visible. */
  reveal(name) {
    const index = this.view.indexOf(name);
    if (index < 0) return;
    const top = index * ROW_HEIGHT;
    if (top < this.body.scrollTop || top > this.body.scrollTop + this.body.clientHeight - ROW_HEIGHT) {
      this.body.scrollTop = Math.max(0, top - this.body.clientHeight / 2);
    }
  }

  refresh() {
    this.needsView = true;
    this.paint();
  }

  /** Host states changed: the view (filter, order) may change too. */
  update(dirtyHosts) {
    if (!dirtyHosts.size) return;
    this.needsView = true;
    this.paint();
  }

  matches(run) {
    if (this.filterState && run.state !== this.filterState) return false;
    if (this.filterNames && !this.filterNames.has(run.host)) return false;
    if (this.filterText) {
      const hay = `${run.host} ${run.reason || ""} ${run.stage || ""}`.toLowerCase();
      if (!hay.includes(this.filterText)) return false;
    }
    return true;
  }

  sortValue(run, now) {
    switch (this.sortKey) {
      case "host": return run.host;
      case "batch": return run.batch;
      case "state": return STATE_ORDER[run.state] ?? 9;
      case "stage": return run.stage || "";
      case "duration": return this.model.hostDuration(run, now) ?? -1;
      case "reason": return run.reason || "";
      default: return 0;
    }
  }

  buildView() {
    const now = Date.now();
    const model = this.model;
    const index = new Map(model.order.map((name, i) => [name, i]));
    const runs = [];
    for (const name of model.order) {
      const run = model.hosts.get(name);
      if (run && this.matches(run)) runs.push(run);
    }
    const dir = this.sortDir;
    const keyed = runs.map((run) => [this.sortValue(run, now), index.get(run.host), run.host]);
    keyed.sort((a, b) => {
      if (a[0] < b[0]) return -dir;
      if (a[0] > b[0]) return dir;
      return a[1] - b[1];
    });
    this.view = keyed.map((entry) => entry[2]);
    this.spacer.style.height = `${this.view.length * ROW_HEIGHT}px`;
    this.needsView = false;
    if (this.onShown) this.onShown(this.view.length, model.total());
  }

  /** Draw the rows in view. */
  paint() {
    if (this.needsView) this.buildView();
    const height = this.body.clientHeight || 400;
    const first = Math.max(0, Math.floor(this.body.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.view.length, first + Math.ceil(height / ROW_HEIGHT) + 2 * OVERSCAN);
    const needed = last - first;
    while (this.rows.length < needed) this.rows.push(this.makeRow());
    const now = Date.now();
    for (let i = 0; i < this.rows.length; i++) {
      const row = this.rows[i];
      if (i >= needed) {
        if (!row.hidden) row.hidden = true;
        continue;
      }
      const name = this.view[first + i];
      const run = this.model.hosts.get(name);
      if (row.hidden) row.hidden = false;
      const top = (first + i) * ROW_HEIGHT;
      if (row._top !== top) {
        row._top = top;
        row.style.transform = `translateY(${top}px)`;
      }
      this.fill(row, run, now);
    }
  }

  makeRow() {
    const cells = ["host", "batch", "state", "stage", "duration", "reason"].map(
      (name) => el(name === "host" ? "a" : "span",
        { class: name === "host" ? "cell cell-host host-link" : `cell cell-${name}` }));
    const badge = el("span", { class: "state-badge" });
    cells[2].append(badge);
    const row = el("div", { class: "vrow", role: "row" }, ...cells);
    row._cells = cells;
    row._badge = badge;
    this.body.append(row);
    return row;
  }

  fill(row, run, now) {
    const [host, batch, , stage, duration, reason] = row._cells;
    if (row.dataset.host !== run.host) {
      row.dataset.host = run.host;
      host.href = `/hosts/${encodeURIComponent(run.host)}`;
    }
    setText(host, run.host);
    if (host.title !== run.host) host.title = run.host;   // the full name where it is cut
    setText(batch, String(run.batch));
    if (row._badge.dataset.state !== run.state) row._badge.dataset.state = run.state;
    setText(row._badge, stateLabel(run.state));
    setText(stage, run.stage ? t(run.stage) : "");
    setText(duration, fmtDuration(this.model.hostDuration(run, now)));
    setText(reason, run.reason || "");
    if (reason.dataset.state !== run.state) reason.dataset.state = run.state;
    if (reason.title !== (run.reason || "")) reason.title = run.reason || "";
    const selected = run.host === this.selected;
    if (row._selected !== selected) {
      row._selected = selected;
      row.classList.toggle("selected", selected);
      row.setAttribute("aria-selected", selected ? "true" : "false");
    }
  }

  onKey(event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    event.preventDefault();
    const index = this.view.indexOf(this.selected);
    const next = Math.max(0, Math.min(this.view.length - 1,
      index + (event.key === "ArrowDown" ? 1 : -1)));
    if (this.view[next]) {
      this.onSelect(this.view[next]);
      this.reveal(this.view[next]);
    }
  }
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
