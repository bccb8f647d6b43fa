// The wall's model: every host's latest state, the releases running and recently
// finished, open votes, and the seq it is current to. Loaded from GET /api/wall, then
// changed only by `wall` events after that seq (see services/wall/board.py).

export const ACTIVE = ["pending", "running", "paused"];
// Problems always show one tile per host, first; the rest may collapse into counts.
export const PROBLEMS = ["failed", "interrupted", "running", "cancelled", "rolled_back"];
// Worst first: a group's composite state is its first state in this order.
export const RANK = ["failed", "interrupted", "running", "cancelled", "rolled_back", "pending",
  "skipped", "ok", "none"];
const RECENT = 8;
const CHUNKS = /(\d+)/;

// "web-2" before "web-10", case aside. Not Intl.Collator: the first use of any Intl
// service loads its locale data, a main-thread pause of 100-250 ms on a slow machine,
// and the wall's names need no more than this. (No Intl anywhere on the wall's pages.)
export function naturalCompare(a, b) {
  const x = String(a).toLowerCase().split(CHUNKS);
  const y = String(b).toLowerCase().split(CHUNKS);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    if (i % 2 === 1) return Number(x[i]) - Number(y[i]) || (x[i] < y[i] ? -1 : 1);
    return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

export class WallModel {
  constructor() {
    this.hosts = new Map(); // name -> {name, groups, state, stage, release_id, project, ref, sha, updated_at}
    this.releases = new Map(); // release_id -> summary
    this.votes = new Map(); // release_id -> {go, no_go, min_go, ...}
    this.seq = 0;
    this.eventsApplied = 0;
    this.version = 0; // bumped on every change: the renderer redraws once per frame
    this.order = null; // name -> position in natural name order (rebuilt when names change)
  }

  // Each host's position in natural name order ("web-2" before "web-10"), computed once
  // per set of names: sorting by it is an integer compare, not a collation.
  nameOrder() {
    if (this.order === null) {
      const names = [...this.hosts.keys()].sort(naturalCompare);
      this.order = new Map(names.map((name, index) => [name, index]));
    }
    return this.order;
  }

  load(snapshot) {
    this.hosts.clear();
    for (const host of snapshot.hosts || []) this.hosts.set(host.name, host);
    // The snapshot lists hosts in natural name order already (services/wall/board.py):
    // its positions are the order, with no sort (a host new since falls back to one).
    this.order = new Map((snapshot.hosts || []).map((host, index) => [host.name, index]));
    this.releases.clear();
    for (const release of snapshot.releases || []) this.releases.set(release.release_id, release);
    this.votes.clear();
    for (const vote of snapshot.votes || []) this.votes.set(vote.release_id, vote);
    this.seq = snapshot.seq || 0;
    this.version++;
  }

  apply(events) {
    for (const event of events) {
      if (event.seq <= this.seq) continue;
      this.seq = event.seq;
      this.eventsApplied++;
      const data = event.data || {};
      if (event.type === "release" && Number.isInteger(data.release_id)) {
        this.release(data);
        this.hostChanges(data, event.ts);
      } else if (event.type === "vote" && Number.isInteger(data.release_id)) {
        if (data.state === "open") this.votes.set(data.release_id, data);
        else this.votes.delete(data.release_id);
      }
    }
    this.version++;
  }

  release(data) {
    const { hosts, ...summary } = data;
    this.releases.set(data.release_id, summary);
    if (!ACTIVE.includes(summary.state)) this.votes.delete(data.release_id);
    const finished = [...this.releases.values()].filter((r) => !ACTIVE.includes(r.state))
      .sort((a, b) => b.release_id - a.release_id);
    for (const old of finished.slice(RECENT)) this.releases.delete(old.release_id);
  }

  hostChanges(data, ts) {
    if (!data.hosts || typeof data.hosts !== "object") return;
    const stamp = ts ? new Date(ts * 1000).toISOString() : null;
    for (const [name, change] of Object.entries(data.hosts)) {
      let host = this.hosts.get(name);
      if (!host) {
        host = { name, groups: [] };
        this.hosts.set(name, host);
        this.order = null;
      }
      const [state, stage] = Array.isArray(change) ? change : [null, null];
      host.state = state;
      host.stage = stage;
      host.release_id = data.release_id;
      host.project = data.project;
      host.ref = data.ref;
      host.sha = data.sha;
      host.updated_at = stamp;
    }
  }

  running() {
    return [...this.releases.values()].filter((r) => ACTIVE.includes(r.state))
      .sort((a, b) => a.release_id - b.release_id);
  }

  recent() {
    return [...this.releases.values()].filter((r) => !ACTIVE.includes(r.state))
      .sort((a, b) => b.release_id - a.release_id);
  }
}
