// The progress bar: a stacked bar of host states, the counts, and an ETA from the hosts
// done so far.
import { t } from "../i18n.js";
import { $, el, fmtDuration, stateLabel } from "../util.js";

const COUNT_ORDER = ["ok", "failed", "running", "pending", "skipped", "cancelled",
  "rolled_back", "interrupted"];

export class Progress {
  constructor(root, model) {
    this.model = model;
    this.bar = $("#progress", root);
    this.segments = {
      ok: $(".seg-ok", root), failed: $(".seg-failed", root), skipped: $(".seg-skipped", root),
      other: $(".seg-other", root), running: $(".seg-running", root),
    };
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
    const other = (counts.cancelled || 0) + (counts.rolled_back || 0) + (counts.interrupted || 0);
    const widths = { ok: counts.ok || 0, failed: counts.failed || 0,
      skipped: counts.skipped || 0, other, running: counts.running || 0 };
    for (const [key, value] of Object.entries(widths)) {
      this.segments[key].style.width = `${(100 * value) / total}%`;
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
