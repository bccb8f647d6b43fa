// The release page's panel for a release that has not started: who approved, who is
// awaited, the Approve and Reject buttons (for those who may), and for a scheduled release
// when it starts, why it waits, Start now and Cancel. It follows the release's topic: an
// approval or a state change redraws it, and once the release starts the page reloads to
// show the run.
import { get, post } from "../api.js";
import { EventClient } from "../events.js";
import { t } from "../i18n.js";
import { $, clear, confirmDialog, el, fmtTime, shortSha, showError } from "../util.js";

const HELD = new Set(["scheduled", "awaiting_approval"]);
const ENDED = new Set(["rejected", "expired", "cancelled"]);     // ended without starting

class GatePanel {
  constructor(root) {
    this.root = root;
    this.id = Number($("#release-page").dataset.releaseId);
    this.state = null;
    this.everHeld = false;
    this.busy = false;
    $("#btn-approve").addEventListener("click", () => this.act("approve"));
    $("#btn-reject").addEventListener("click", () => this.act("reject"));
    $("#btn-start-now").addEventListener("click", () => this.act("start"));
    $("#btn-cancel-held").addEventListener("click", () => this.act("cancel"));
  }

  async start() {
    const release = await get(`/api/releases/${this.id}`);
    await this.show(release);
    if (!HELD.has(release.state)) return;
    this.client = new EventClient({ onError: (topic, message) => showError(message) });
    this.client.subscribe(`release:${this.id}`, release.seq || 0, (events) => {
      if (events.some((event) => event.type === "approval" || event.type === "release")) {
        this.refresh();
      }
    });
  }

  async refresh() {
    try {
      await this.show(await get(`/api/releases/${this.id}`));
    } catch (error) {
      showError(error.message);
    }
  }

  async show(release) {
    this.state = release.state;
    if (HELD.has(release.state)) this.everHeld = true;
    else if (this.everHeld && !ENDED.has(release.state)) {
      window.location.reload();        // it started: the page draws the run
      return;
    }
    const approval = release.approval ? await get(`/api/releases/${this.id}/approval`) : null;
    if (!HELD.has(release.state) && !approval) {
      this.root.hidden = true;
      return;
    }
    this.root.hidden = false;
    this.root.dataset.state = release.state;
    $("#gate-status").replaceChildren(...this.status(release, approval));
    this.drawApprovals(approval);
    const approving = release.state === "awaiting_approval";
    $("#gate-actions").hidden = !approving || !approval || !approval.can_approve;
    $("#gate-refusal").hidden = !approving || !approval || approval.can_approve;
    $("#gate-refusal").textContent = approval && approval.refusal ? approval.refusal : "";
    $("#btn-start-now").hidden = release.state !== "scheduled";
    $("#gate-start").hidden = !HELD.has(release.state);
  }

  status(release, approval) {
    const parts = [];
    if (release.sha) parts.push(el("span", null, t("Commit {sha}", { sha: shortSha(release.sha) })));
    if (release.state === "scheduled") {
      const waiting = release.waiting_for || {};
      if (waiting.freeze) {
        parts.push(el("span", null, t("Waiting for the freeze “{reason}” to end at {time}",
          { reason: waiting.freeze.reason, time: fmtTime(waiting.freeze.until) })));
      } else if (waiting.lock) {
        parts.push(el("span", null, t("Waiting for the project's deploy lock: {why}",
          { why: waiting.lock })));
      } else {
        parts.push(el("span", null, t("Scheduled for {time}",
          { time: fmtTime(release.not_before || release.due_at) })));
      }
    }
    if (approval && release.state === "awaiting_approval") {
      parts.push(el("span", null, t("{n} of {required} approvals", {
        n: approval.approvals.length, required: approval.rules.required })));
      parts.push(el("span", null, t("Expires {time}", { time: fmtTime(approval.deadline) })));
    }
    if (approval && approval.rejection) {
      parts.push(el("span", null, t("Rejected by {user}: {comment}", approval.rejection)));
    }
    return parts;
  }

  drawApprovals(approval) {
    const list = $("#gate-approvals");
    clear(list);
    $("#gate-awaited").textContent = "";
    if (!approval) return;
    for (const entry of approval.approvals) {
      list.append(el("li", { dataset: { user: entry.user } },
        t("Approved by {user}", { user: entry.user }),
        entry.comment ? el("span", { class: "muted" }, ` — ${entry.comment}`) : ""));
    }
    if (this.state === "awaiting_approval" && approval.awaited.length) {
      $("#gate-awaited").textContent = t("Awaiting: {who}",
        { who: approval.awaited.join(", ") });
    }
  }

  async act(action) {
    if (this.busy) return;
    const comment = $("#gate-comment").value.trim();
    if (action === "reject" && !comment) {
      showError(t("Say why in the comment to reject."));
      return;
    }
    if (action === "cancel" && !(await confirmDialog(t("Cancel this release? It never starts.")))) {
      return;
    }
    this.busy = true;
    try {
      const body = action === "approve" || action === "reject" ? { comment } : {};
      await post(`/api/releases/${this.id}/${action}`, body);
      $("#gate-comment").value = "";
      showError("");
      await this.refresh();
    } catch (error) {
      showError(error.message);
    } finally {
      this.busy = false;
    }
  }
}

const root = $("#gate-panel");
if (root) {
  new GatePanel(root).start().catch((error) => showError(error.message));
}
