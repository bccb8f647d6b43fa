// The progress bar: a stacked bar of host states, the counts, and an ETA from the hosts
// done so far.
import { t } from "../i18n.js";
import { $, el, fmtDuration, stateLabel } from "../util.js";

// The bar's segments, left to right (pending is the bar's background).
const SEGMENT_ORDER = ["ok", "failed", "skipped", "cancelled", "rolled_back", "interrupted",
  "running"];
const COUNT_ORDER = ["ok", "failed", "running", "pending", "skipped", "cancelled",
  "rolled_back", "interrupted"];

export class Progress {
  constructor(root, model) {
    this.model = model;
    this.bar = $("#progress", root);
    this.segments = {};
    for (const state of SEGMENT_ORDER) this.segments[state] = $(`.seg-${state}`, root);
    this.doneNode = $("#progress-done", root);
    this.countsNode = $("#counts", root);
    this.etaNode = $("#eta", root);
    this.countNodes = {};
    for (const state of COUNT_ORDER) {
      const value = el("b", null, "0");
      const node = el("span", { class: "count", dataset: { state } },
        el("span", { class: "swatch", dataset: { state } }), `${stateLabel(state)} `, value);
      node._value = value;
      this.countNodes[state] = node;
      this.countsNode.append(node);
    }
  }

  update(now = Date.now()) {
    const model = this.model;
    const counts = model.counts;
    const total = model.total() || 1;
    for (const state of SEGMENT_ORDER) {
      this.segments[state].style.width = `${(100 * (counts[state] || 0)) / total}%`;
    }
    const done = model.done();
    this.bar.setAttribute("aria-valuenow", String(Math.round((100 * done) / total)));
    this.doneNode.textContent = t("{done} of {total} hosts done", { done, total: model.total() });
    for (const state of COUNT_ORDER) {
      const node = this.countNodes[state];
      const value = counts[state] || 0;
      node._value.textContent = String(value);
      node.hidden = value === 0 && !["ok", "failed", "running", "pending"].includes(state);
    }
    const eta = model.eta(now);
    this.etaNode.textContent = eta === null ? "" : t("ETA {eta}", { eta: fmtDuration(eta) });
  }
}
