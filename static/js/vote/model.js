// The vote screen's model: the release (summary and each host's state), its vote and the
// newest lines of its room. Loaded from GET /api/releases/<id>/vote/screen, then changed
// only by the events after the snapshot's seqs (see services/chat/screen.py).

// Hosts that ran (a skipped or cancelled host never did: its batch is not "done").
export const DONE = ["ok", "failed", "rolled_back", "interrupted"];
export const ACTIVE = ["pending", "running", "paused"];
export const FINISHED = ["succeeded", "failed", "cancelled", "rolled_back", "interrupted"];

export class VoteModel {
  constructor(chatLines = 12) {
    this.chatLines = chatLines;
    this.release = null;
    this.hosts = new Map(); // name -> state
    this.vote = null; // {state, batch, rules, deadline, votes: [{user, choice, comment, ts}], go, no_go, outcome}
    this.chat = []; // [{id, user, text, ts, kind}]
    this.seq = 0;
    this.chatSeq = 0;
    this.clockOffsetMs = 0; // server time - this browser's time
    this.version = 0;
    this.eventsApplied = 0;
  }

  load(snapshot) {
    this.release = snapshot.release;
    this.hosts = new Map(Object.entries(snapshot.hosts || {}));
    this.vote = snapshot.vote ? { ...snapshot.vote, votes: [...(snapshot.vote.votes || [])] } : null;
    this.chat = (snapshot.chat || []).slice(-this.chatLines);
    this.seq = snapshot.seq || 0;
    this.chatSeq = snapshot.chat_seq || 0;
    const now = Date.parse(snapshot.now || "");
    if (!Number.isNaN(now)) this.clockOffsetMs = now - Date.now();
    this.version++;
  }

  applyRelease(events) {
    for (const event of events) {
      if (event.seq <= this.seq) continue;
      this.seq = event.seq;
      this.eventsApplied++;
      const data = event.data || {};
      if (event.type === "release") {
        if (data.state) this.release.state = data.state;
        if ("paused_after_batch" in data) this.release.paused_after_batch = data.paused_after_batch;
      } else if (event.type === "host" && typeof data.host === "string") {
        this.hosts.set(data.host, data.state);
      } else if (event.type === "vote") {
        this.voteEvent(data);
      }
    }
    this.version++;
  }

  voteEvent(data) {
    const sameVote = this.vote && this.vote.batch === data.batch;
    if (data.state === "open" && !data.user) { // opened (or its deadline set)
      this.vote = sameVote
        ? { ...this.vote, rules: data.rules, deadline: data.deadline, state: "open" }
        : { state: "open", batch: data.batch, rules: data.rules, deadline: data.deadline,
            votes: [], go: 0, no_go: 0, outcome: null };
      return;
    }
    if (!sameVote) {
      this.vote = { state: data.state, batch: data.batch, rules: data.rules, deadline: data.deadline,
        votes: [], go: data.go || 0, no_go: data.no_go || 0, outcome: null };
    }
    const vote = this.vote;
    if (data.rules) vote.rules = data.rules;
    if ("deadline" in data) vote.deadline = data.deadline;
    if (data.user) {
      const entry = { user: data.user, choice: data.choice, ts: null };
      if ("comment" in data) entry.comment = data.comment;
      vote.votes = vote.votes.filter((v) => v.user !== data.user);
      vote.votes.push(entry);
    }
    if (Number.isInteger(data.go)) vote.go = data.go;
    if (Number.isInteger(data.no_go)) vote.no_go = data.no_go;
    vote.state = data.state;
    if (data.outcome) vote.outcome = data.outcome;
  }

  applyChat(events) {
    for (const event of events) {
      if (event.seq <= this.chatSeq) continue;
      this.chatSeq = event.seq;
      if (event.type !== "message") continue;
      const data = event.data || {};
      this.chat.push({ id: event.seq, user: data.user, text: data.text, ts: event.ts,
        kind: data.kind || "message" });
    }
    if (this.chat.length > this.chatLines) this.chat = this.chat.slice(-this.chatLines);
    this.version++;
  }

  // The canary's health: hosts ok / failed so far, and the batches fully done.
  health() {
    const counts = { ok: 0, failed: 0, done: 0, total: this.hosts.size };
    for (const state of this.hosts.values()) {
      if (state === "ok") counts.ok++;
      else if (state === "failed") counts.failed++;
      if (DONE.includes(state)) counts.done++;
    }
    const sizes = (this.release && this.release.batches) || [];
    let batches = 0;
    let reached = 0;
    for (const size of sizes) {
      reached += size;
      if (reached > counts.done) break;
      batches++;
    }
    counts.batches = batches;
    counts.of = sizes.length;
    return counts;
  }

  now() {
    return Date.now() + this.clockOffsetMs;
  }
}
