// The release console: flowchart, host table, log console, progress bar and actions,
// kept live through the shared event client. A reload shows the snapshot from the API and
// continues from the snapshot's seq (or replays the topic when the API gives none: the
// model skips what it already has).
import { get, post } from "./api.js";
import { EventClient } from "./events.js";
import { t, tn } from "./i18n.js";
import { $, applyRole, confirmDialog, el, fmtDuration, fmtTime, shortSha, showError,
  stateLabel, statusLabel, toMs } from "./util.js";
import { ChatPanel } from "./release/chat.js";
import { LogConsole } from "./release/console.js";
import { loadCommits, setupLogTools } from "./release/extras.js";
import { ACTIVE, LOCAL, ReleaseModel } from "./release/model.js";
import { Progress } from "./release/progress.js";
import { HostTable } from "./release/table.js";
import { VotePanel } from "./release/vote.js";

const SLICE_MS = 10;           // event-applying work per task before yielding
const TERMINAL_RETRY = new Set(["failed", "skipped", "cancelled", "interrupted"]);

class ReleasePage {
  constructor(root) {
    this.root = root;
    this.id = Number(root.dataset.releaseId);
    this.model = new ReleaseModel(this.id);
    this.queue = [];
    this.queueHead = 0;
    this.pumping = false;
    this.framePending = false;
    this.firstRender = false;
    this.selected = null;
    this.client = null;
    this.graph = null;
    this.stats = { maxSliceMs: 0, maxRenderMs: 0, renders: 0 };
  }

  async start() {
    applyRole();
    // The flowchart library loads while the snapshot is fetched.
    const graphModule = import("./release/graph.js");
    graphModule.then((module) => module.warmUp(), () => {});
    let snapshot;
    try {
      snapshot = await get(`/api/releases/${this.id}`);
    } catch (error) {
      showError(error.message);
      $("#live-status").hidden = true;
      return;
    }
    performance.mark("ferry:snapshot");
    this.model.applySnapshot(snapshot);
    this.log = new LogConsole($("#log"), {
      releaseId: this.id, title: $("#log-title"), search: $("#log-search"),
      matches: $("#log-matches"), follow: $("#log-follow"),
    });
    this.model.onLog((data) => this.log.append(data));
    setupLogTools(this.log, this.id);
    loadCommits(this.id);
    this.progress = new Progress(this.root, this.model);
    this.table = new HostTable($("#host-table"), this.model, {
      onSelect: (name) => this.selectHost(name) });
    this.table.onShown = (shown, total) => {
      $("#host-shown").textContent = shown === total ? "" : `${shown} / ${total}`;
    };
    this.bindControls();
    this.renderNow();
    this.stats.snapshotRenderMs = Math.round(
      performance.measure("ferry:snapshot-render", "ferry:snapshot").duration);
    // The table and the progress bar are on screen now; the flowchart comes in its own
    // task so that no single task holds the main thread for long.
    try {
      const { FlowGraph } = await graphModule;
      await nextTask();
      const graph = new FlowGraph($("#flow"), this.model, {
        onHost: (name) => this.selectHost(name, true),
        onGroup: (names, title) => this.filterGroup(names, title),
        onLocal: () => this.selectHost(LOCAL),
      });
      this.graph = graph;
      this.stats.graphBuildMs = await graph.build();
    } catch (error) {
      showError(`flowchart: ${error.message}`);
    }
    performance.mark("ferry:graph");
    this.markFirstRender();
    const fromHash = decodeURIComponent((location.hash.match(/host=([^&]+)/) || [])[1] || "");
    if (fromHash === LOCAL || this.model.hosts.has(fromHash)) this.selectHost(fromHash, true);
    else if (this.localFailed()) this.selectHost(LOCAL);
    this.subscribe(typeof snapshot.seq === "number" ? snapshot.seq : 0);
    this.startChatAndVote();
    setInterval(() => this.tick(), 1000);
    window.ferryRelease = { model: this.model, graph: this.graph, table: this.table,
      log: this.log, stats: this.stats };
  }

  markFirstRender() {
    if (this.firstRender) return;
    this.firstRender = true;
    requestAnimationFrame(() => {
      performance.mark("ferry:first-render");
      document.body.dataset.rendered = "true";
    });
  }

  subscribe(after) {
    this.client = new EventClient({
      onStatus: (status) => this.showStatus(status),
      onError: (topic, message) => showError(message),
    });
    this.client.subscribe(`release:${this.id}`, after, (events) => this.enqueue(events));
  }

  /** The room beside the flowchart and the go/no-go vote, on the page's event client. */
  startChatAndVote() {
    const { user, role } = document.body.dataset;
    this.chat = new ChatPanel($("#chat-panel"), { releaseId: this.id, client: this.client, user });
    this.chat.start();
    // Only a strategy with a vote has one to show (no request otherwise: it would be a 404).
    if (!this.model.release.strategy?.vote) return;
    this.vote = new VotePanel($("#vote-panel"), { releaseId: this.id, client: this.client,
      user, role, initiator: this.model.release.created_by });
    this.vote.start(this.model.release.state);
  }

  showStatus(status) {
    const node = $("#live-status");
    node.dataset.status = status;
    node.textContent = statusLabel(status);
  }

  enqueue(events) {
    if (!events || !events.length) return;
    for (const event of events) this.queue.push(event);
    this.pump();
  }

  // Apply queued events in slices of SLICE_MS so a long replay never blocks the page.
  pump() {
    if (this.pumping) return;
    this.pumping = true;
    const run = () => {
      const started = performance.now();
      while (this.queueHead < this.queue.length && performance.now() - started < SLICE_MS) {
        const end = Math.min(this.queue.length, this.queueHead + 500);
        this.model.applyEvents(this.queue.slice(this.queueHead, end));
        this.queueHead = end;
      }
      this.stats.maxSliceMs = Math.max(this.stats.maxSliceMs, performance.now() - started);
      if (this.queueHead >= this.queue.length) {
        this.queue = [];
        this.queueHead = 0;
        this.pumping = false;
      } else {
        setTimeout(run, 0);
      }
      this.scheduleRender();
    };
    run();
  }

  scheduleRender() {
    if (this.framePending) return;
    this.framePending = true;
    requestAnimationFrame(() => {
      this.framePending = false;
      this.renderNow();
    });
  }

  renderNow() {
    const started = performance.now();
    const dirty = this.model.takeDirty();
    if (this.graph) this.graph.update(dirty);
    // The build failed while nobody had picked a log: show the build's.
    if (dirty.local && !this.selected && this.firstRender && this.localFailed()) {
      this.selectHost(LOCAL);
    }
    this.table.update(dirty.hosts);
    if (dirty.release || dirty.states.size) this.progress.update();
    // Once the release is over, late host changes (a rollback) can change which buttons apply.
    if (dirty.release || (dirty.states.size && !ACTIVE.has(this.model.release.state))) {
      this.renderHeader();
    }
    this.log.flush();
    this.stats.renders += 1;
    this.stats.maxRenderMs = Math.max(this.stats.maxRenderMs, performance.now() - started);
  }

  tick() {
    if (!ACTIVE.has(this.model.release.state)) return;
    this.table.paint();
    this.progress.update();
    this.renderMeta();
  }

  renderHeader() {
    const release = this.model.release;
    const badge = $("#release-state");
    badge.dataset.state = release.state;
    badge.textContent = stateLabel(release.state);
    this.renderMeta();
    const banner = $("#pause-banner");
    banner.hidden = release.state !== "paused";
    if (!banner.hidden) {
      const n = release.paused_after_batch ?? this.model.currentBatch;
      banner.textContent = release.strategy?.vote
        ? t("Paused after batch {n} — the go/no-go vote decides.", { n })
        : t("Paused after batch {n} — promote to continue.", { n });
    }
    const reason = $("#release-reason");
    reason.hidden = !release.reason || ACTIVE.has(release.state);
    reason.textContent = release.reason || "";
    const active = ACTIVE.has(release.state);
    $("#btn-promote").hidden = release.state !== "paused";
    $("#btn-cancel").hidden = !active;
    const retryable = Object.entries(this.model.counts).some(
      ([state, n]) => n > 0 && TERMINAL_RETRY.has(state));
    $("#btn-retry").hidden = active || !retryable;
    $("#btn-rollback").hidden = active || !release.started_at;    // never started: nothing to undo
  }

  renderMeta() {
    const release = this.model.release;
    const meta = $("#release-meta");
    const started = toMs(release.started_at);
    const finished = toMs(release.finished_at);
    const parts = [
      el("a", { href: `/projects/${encodeURIComponent(release.project || "")}` },
        release.project || ""),
      el("span", { class: "tag" }, release.environment || ""),
      el("span", null, `${t(release.kind || "deploy")} `, el("b", null, release.ref || ""),
        release.sha ? ` · ${shortSha(release.sha)}` : ""),
      this.lineage(release),
      el("span", null, release.created_by || ""),
      started ? el("span", null, `${t("Started")} ${fmtTime(started)}`) : null,
      started ? el("span", null, `${t("Duration")} ${fmtDuration(
        release.duration_ms ?? ((finished ?? Date.now()) - started))}`) : null,
    ].filter(Boolean);
    meta.replaceChildren(...parts);
  }

  /** Where a rollback or retry comes from, and a rollback's target, as links. */
  lineage(release) {
    const link = (id) => el("a", { href: `/releases/${id}` }, `#${id}`);
    if (release.kind === "rollback" && release.rollback_of) {
      const parts = [`${t("rollback of")} `, link(release.rollback_of)];
      if (release.target_release) parts.push(" → ", link(release.target_release));
      return el("span", null, ...parts);
    }
    if (release.retry_of) return el("span", null, `${t("retry of")} `, link(release.retry_of));
    return null;
  }

  selectHost(name, reveal = false) {
    if (!name) return;
    this.selected = name;
    this.table.select(name);
    if (reveal) this.table.reveal(name);
    if (this.graph) this.graph.select(name);
    this.log.open(name);
    history.replaceState(null, "", `#host=${encodeURIComponent(name)}`);
  }

  /** A local stage (build, hooks, package) failed: its log is what the user needs. */
  localFailed() {
    return Object.values(this.model.local).some((entry) => entry.state === "failed");
  }

  /** Show only a group's hosts in the table (a batch or group node was clicked). */
  filterGroup(names, title) {
    const chip = $("#group-filter");
    const same = chip.dataset.title === title && !chip.hidden;
    this.table.setFilter({ names: same ? null : new Set(names) });
    chip.hidden = same;
    chip.dataset.title = same ? "" : title;
    chip.textContent = same ? "" : `${title} ✕`;
  }

  bindControls() {
    $("#host-filter").addEventListener("change", (event) => {
      this.table.setFilter({ state: event.target.value });
    });
    let timer = null;
    $("#host-search").addEventListener("input", (event) => {
      clearTimeout(timer);
      timer = setTimeout(() => this.table.setFilter({ text: event.target.value }), 120);
    });
    $("#fit-graph").addEventListener("click", () => this.graph?.fit());
    $("#log-local").addEventListener("click", () => this.selectHost(LOCAL));
    $("#group-filter").addEventListener("click", () => {
      this.filterGroup([], $("#group-filter").dataset.title);
    });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => this.graph?.resize(), 200);
    });
    this.action("#btn-promote", t("Promote this release to the next batch?"),
      () => post(`/api/releases/${this.id}/promote`));
    this.action("#btn-cancel", t("Cancel this release? Running steps stop."),
      () => post(`/api/releases/${this.id}/cancel`));
    this.action("#btn-retry", t("Retry the hosts that did not succeed?"), async () => {
      const release = await post(`/api/releases/${this.id}/retry`);
      location.assign(`/releases/${release.id}`);
    });
    this.action("#btn-rollback", async () => {
      const plan = await get(`/api/releases/${this.id}/rollback`);
      return tn("Roll back {n} host to release #{id} ({ref} · {sha})?",
        "Roll back {n} hosts to release #{id} ({ref} · {sha})?", plan.hosts.length,
        { id: plan.target.id, ref: plan.target.ref, sha: shortSha(plan.target.sha) });
    }, async () => {
      const release = await post(`/api/releases/${this.id}/rollback`, {});
      location.assign(`/releases/${release.id}`);
    });
  }

  /** A button that asks first. `question` is a string, or an async function giving it
   * (which may throw: its message is shown and nothing is asked). */
  action(selector, question, perform) {
    const button = $(selector);
    button.addEventListener("click", async () => {
      let text = question;
      try {
        if (typeof question === "function") text = await question();
      } catch (error) {
        showError(error.message);
        return;
      }
      if (!(await confirmDialog(text))) return;
      button.disabled = true;
      try {
        showError("");
        await perform();
      } catch (error) {
        showError(error.message);
      } finally {
        button.disabled = false;
      }
    });
  }
}

function nextTask() {
  return new Promise((resolve) => { setTimeout(resolve, 0); });
}

new ReleasePage($("#release-page")).start();
