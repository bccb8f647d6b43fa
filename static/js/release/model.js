// The release as the page knows it: a snapshot from GET /api/releases/<id>, then events
// from the `release:<id>` topic applied on top. Applying is idempotent: an event whose
// seq was already applied is skipped, so a snapshot plus a replay from any earlier seq
// gives the same state. Changes are only recorded as "dirty"; the page draws them once
// per animation frame.
import { toMs } from "../util.js";

export const LOCAL_STAGES = ["before_checkout", "checkout", "after_checkout", "package"];
export const HOST_STAGES = ["upload", "extract", "before_release", "release",
  "after_release", "verify", "prune"];
export const ACTIVE = new Set(["pending", "running", "paused"]);
export const DONE_STATES = new Set(["ok", "failed", "skipped", "cancelled", "rolled_back",
  "interrupted"]);
export const LOCAL = "_local";

export class ReleaseModel {
  constructor(id) {
    this.id = id;
    this.release = { id, state: "pending" };
    this.hosts = new Map();      // name → host run
    this.order = [];             // names in batch order
    this.batches = [];           // [[names]]
    this.local = {};             // stage → {state, duration_ms, reason, cached_from, started_at}
    this.counts = {};            // host state → count
    this.lastSeq = 0;
    this.currentBatch = 0;
    this.dirtyHosts = new Set();   // any change: state, stage, reason (the table)
    this.dirtyStates = new Set();  // state changes only (the flowchart, the counts)
    this.dirtyLocal = false;
    this.dirtyRelease = true;      // the release's own fields: state, reason, batch
    this.listeners = { log: [] };
  }

  onLog(fn) {
    this.listeners.log.push(fn);
  }

  /** Take the snapshot from the API (the whole release with its host runs). */
  applySnapshot(snapshot) {
    const { host_runs: runs = [], ...release } = snapshot;
    this.release = release;
    this.local = { ...(release.local || {}) };
    this.batches = release.batches || [];
    const byName = new Map(runs.map((run) => [run.host, run]));
    this.order = [];
    this.batches.forEach((names, index) => {
      for (const name of names) {
        this.order.push(name);
        const run = byName.get(name) || { host: name, state: "pending", stages: {} };
        this.hosts.set(name, this.normalise(run, index + 1));
      }
    });
    for (const run of runs) {
      if (!this.hosts.has(run.host)) {
        this.order.push(run.host);
        this.hosts.set(run.host, this.normalise(run, run.batch || 1));
      }
    }
    if (!this.batches.length && this.order.length) this.batches = [this.order.slice()];
    this.recount();
    this.currentBatch = this.inferBatch();
    if (typeof release.seq === "number") this.lastSeq = Math.max(this.lastSeq, release.seq);
    for (const name of this.order) {
      this.dirtyHosts.add(name);
      this.dirtyStates.add(name);
    }
    this.dirtyLocal = true;
    this.dirtyRelease = true;
  }

  normalise(run, batch) {
    return {
      host: run.host,
      batch: run.batch || batch,
      state: run.state || "pending",
      stage: run.stage || null,
      reason: run.reason || null,
      stages: { ...(run.stages || {}) },
      startedMs: toMs(run.started_at),
      finishedMs: toMs(run.finished_at),
      previous: run.previous || null,
    };
  }

  inferBatch() {
    let current = 0;
    for (const run of this.hosts.values()) {
      if (run.state !== "pending") current = Math.max(current, run.batch);
    }
    return current;
  }

  recount() {
    const counts = {};
    for (const run of this.hosts.values()) counts[run.state] = (counts[run.state] || 0) + 1;
    this.counts = counts;
  }

  setHostState(run, state) {
    if (run.state === state) return;
    this.counts[run.state] = (this.counts[run.state] || 1) - 1;
    this.counts[state] = (this.counts[state] || 0) + 1;
    run.state = state;
    this.dirtyStates.add(run.host);
  }

  /** Apply events in seq order; returns how many were new. */
  applyEvents(events) {
    let applied = 0;
    for (const event of events) {
      if (typeof event.seq === "number") {
        if (event.seq <= this.lastSeq) continue;
        this.lastSeq = event.seq;
      }
      applied += 1;
      this.applyEvent(event);
    }
    return applied;
  }

  applyEvent(event) {
    const data = event.data || {};
    const ts = toMs(event.ts) ?? Date.now();
    switch (event.type) {
      case "release":
        this.applyRelease(data, ts);
        break;
      case "batch":
        this.currentBatch = Math.max(this.currentBatch, data.batch || 0);
        this.dirtyRelease = true;
        break;
      case "stage":
        if (data.host === LOCAL) this.applyLocalStage(data, ts);
        else this.applyHostStage(data, ts);
        break;
      case "host":
        this.applyHost(data, ts);
        break;
      case "log":
        for (const fn of this.listeners.log) fn(data);
        break;
      default:
        break;
    }
  }

  applyRelease(data, ts) {
    const release = this.release;
    if (data.state) {
      if (data.state === "running" && !release.started_at) release.started_at = ts;
      if (!ACTIVE.has(data.state) && !release.finished_at) release.finished_at = ts;
      if (ACTIVE.has(data.state)) release.finished_at = null;
      release.state = data.state;
    }
    if ("reason" in data) release.reason = data.reason;
    if (data.sha) release.sha = data.sha;
    if ("paused_after_batch" in data) release.paused_after_batch = data.paused_after_batch;
    if (data.max_fail_exceeded) release.max_fail_exceeded = true;
    this.dirtyRelease = true;
  }

  applyLocalStage(data, ts) {
    const entry = { ...(this.local[data.stage] || {}), state: data.state };
    if (data.state === "running") entry.started_at = ts;
    else {
      entry.duration_ms = data.duration_ms;
      entry.reason = data.reason || null;
      entry.cached_from = data.cached_from || null;
    }
    this.local[data.stage] = entry;
    this.dirtyLocal = true;
  }

  hostRun(name) {
    let run = this.hosts.get(name);
    if (!run) {
      run = this.normalise({ host: name }, this.currentBatch || 1);
      this.hosts.set(name, run);
      this.order.push(name);
      this.counts.pending = (this.counts.pending || 0) + 1;
      this.dirtyStates.add(name);
    }
    return run;
  }

  applyHostStage(data, ts) {
    const run = this.hostRun(data.host);
    const entry = { ...(run.stages[data.stage] || {}), state: data.state };
    if (data.state === "running") {
      entry.started_at = ts;
      run.stage = data.stage;
    } else {
      entry.duration_ms = data.duration_ms;
      entry.reason = data.reason || null;
    }
    run.stages[data.stage] = entry;
    this.dirtyHosts.add(data.host);
  }

  applyHost(data, ts) {
    const run = this.hostRun(data.host);
    this.setHostState(run, data.state);
    if ("reason" in data) run.reason = data.reason || null;
    if (data.stage) run.stage = data.stage;
    if (data.previous !== undefined) run.previous = data.previous;
    if (data.state === "running") {
      if (run.startedMs === null) run.startedMs = ts;
      run.finishedMs = null;
      this.currentBatch = Math.max(this.currentBatch, run.batch);
    } else if (data.state !== "pending") {
      run.finishedMs = ts;
    }
    this.dirtyHosts.add(data.host);
  }

  /** Duration of a host run so far (ms), live while it runs. */
  hostDuration(run, now = Date.now()) {
    if (run.startedMs === null) return null;
    return (run.finishedMs ?? now) - run.startedMs;
  }

  total() {
    return this.hosts.size;
  }

  done() {
    let done = 0;
    for (const state of DONE_STATES) done += this.counts[state] || 0;
    return done;
  }

  /** Milliseconds left, estimated from the hosts done so far, or null. The rate counts
   * only the time some host was running, so a canary pause does not slow it down. */
  eta(now = Date.now()) {
    const done = this.done();
    const total = this.total();
    if (!ACTIVE.has(this.release.state) || this.release.state === "paused") return null;
    if (done === 0 || done >= total) return null;
    const busy = this.busyMs(now);
    if (busy <= 0) return null;
    return (busy / done) * (total - done);
  }

  /** Length of the union of the host runs' [start, end] intervals. */
  busyMs(now) {
    const spans = [];
    for (const run of this.hosts.values()) {
      if (run.startedMs !== null) spans.push([run.startedMs, run.finishedMs ?? now]);
    }
    spans.sort((a, b) => a[0] - b[0]);
    let busy = 0;
    let from = null;
    let to = null;
    for (const [start, end] of spans) {
      if (to === null || start > to) {
        if (to !== null) busy += to - from;
        from = start;
        to = end;
      } else if (end > to) {
        to = end;
      }
    }
    if (to !== null) busy += to - from;
    return busy;
  }

  takeDirty() {
    const dirty = { hosts: this.dirtyHosts, states: this.dirtyStates, local: this.dirtyLocal,
      release: this.dirtyRelease };
    this.dirtyHosts = new Set();
    this.dirtyStates = new Set();
    this.dirtyLocal = false;
    this.dirtyRelease = false;
    return dirty;
  }
}
