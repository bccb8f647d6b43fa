// The go/no-go vote of a release paused after a batch: the tally against min_go, who
// voted what (with comments), the deadline counting down, Go / No-go buttons for those
// who may vote, and the outcome once decided. It reads GET /api/releases/<id>/vote and
// reads it again whenever the release's topic carries a `vote` event (or the release
// pauses), on the page's one event client; votes are cast with POST on the same path.
import { ApiError, get, post } from "../api.js";
import { t, tn } from "../i18n.js";
import { clear, el, fmtDuration, fmtTime, stateLabel, toMs } from "../util.js";

const ROLES = ["viewer", "deployer", "admin"];

export class VotePanel {
  constructor(root, { releaseId, client, user, role, initiator }) {
    this.root = root;
    this.releaseId = releaseId;
    this.client = client;
    this.user = user || "";
    this.mayVote = ROLES.indexOf(role || "viewer") >= 1;
    this.isInitiator = Boolean(user) && user === initiator;
    this.vote = null;
    this.fetching = false;
    this.again = false;
    this.build();
  }

  /** Follow the release topic for votes (joining the page's own subscription, from its
   * cursor), read the vote when there may be one, and tick the countdown. A running
   * release has had no vote yet or is past it: its next vote comes as an event. */
  start(releaseState) {
    this.client.subscribe(`release:${this.releaseId}`, 0, (events) => {
      const changed = events.some((event) => event.type === "vote"
        || (event.type === "release" && event.data && event.data.state === "paused"));
      if (changed) this.refresh();
    });
    if (releaseState !== "pending" && releaseState !== "running") this.refresh();
    setInterval(() => this.renderDeadline(), 1000);
  }

  build() {
    const node = (tag, cls, ...children) => el(tag, { class: cls }, ...children);
    this.title = node("span", "vote-title", t("Go/no-go vote"));
    this.badge = node("span", "state-badge vote-state");
    this.bigScreen = el("a", { class: "vote-big small button", target: "_blank", rel: "noopener",
      href: `/releases/${this.releaseId}/vote` }, t("Big screen"));
    this.goCount = el("b", { id: "vote-go-count" });
    this.noGoCount = el("b", { id: "vote-nogo-count" });
    this.goBar = node("span", "vote-fill");
    this.noGoBar = node("span", "vote-fill");
    this.rules = node("p", "muted vote-rules");
    this.deadline = el("p", { class: "vote-deadline", id: "vote-deadline" });
    this.voters = el("ul", { class: "vote-voters", id: "vote-voters" });
    this.comment = el("input", { type: "text", id: "vote-comment", maxlength: "500",
      placeholder: t("Comment (optional)"), "aria-label": t("Comment (optional)") });
    this.goButton = el("button", { type: "button", id: "vote-go", class: "vote-go" }, t("Go"));
    this.noGoButton = el("button", { type: "button", id: "vote-nogo", class: "vote-nogo" },
      t("No-go"));
    this.goButton.addEventListener("click", () => this.cast("go"));
    this.noGoButton.addEventListener("click", () => this.cast("no_go"));
    this.form = node("div", "vote-form", this.comment, this.goButton, this.noGoButton);
    this.error = el("p", { class: "field-error", role: "alert", hidden: true });
    this.outcome = el("p", { class: "vote-outcome", id: "vote-outcome", hidden: true });
    this.excludedNote = el("p", { class: "muted", hidden: true },
      t("You started this release: the others decide."));
    clear(this.root).append(
      node("h2", null, this.title, this.badge, node("span", "spacer"), this.bigScreen),
      node("div", "vote-tally",
        node("div", "vote-row vote-row-go", node("span", "vote-label", t("Go")),
          node("span", "vote-bar", this.goBar), this.goCount),
        node("div", "vote-row vote-row-nogo", node("span", "vote-label", t("No-go")),
          node("span", "vote-bar", this.noGoBar), this.noGoCount)),
      this.rules, this.deadline, this.outcome, this.voters, this.form, this.excludedNote,
      this.error);
  }

  /** Read the vote again; calls that arrive meanwhile are folded into one more read. */
  async refresh() {
    if (this.fetching) {
      this.again = true;
      return;
    }
    this.fetching = true;
    try {
      do {
        this.again = false;
        try {
          this.render(await get(`/api/releases/${this.releaseId}/vote`));
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) this.render(null);
          else this.showError(error.message);
        }
      } while (this.again);
    } finally {
      this.fetching = false;
    }
  }

  async cast(choice) {
    this.showError("");
    this.goButton.disabled = this.noGoButton.disabled = true;
    try {
      const comment = this.comment.value.trim();
      const vote = await post(`/api/releases/${this.releaseId}/vote`,
        comment ? { choice, comment } : { choice });
      this.comment.value = "";
      this.render(vote);
    } catch (error) {
      this.showError(error.message);
    } finally {
      this.goButton.disabled = this.noGoButton.disabled = false;
    }
  }

  render(vote) {
    this.vote = vote;
    this.root.hidden = !vote;
    if (!vote) return;
    const open = vote.state === "open";
    const rules = vote.rules || {};
    const minGo = Math.max(1, Number(rules.min_go) || 1);
    const go = Number(vote.go) || 0;
    const noGo = Number(vote.no_go) || 0;
    this.root.dataset.state = vote.state;
    this.title.textContent = vote.batch
      ? t("Go/no-go vote after batch {n}", { n: vote.batch }) : t("Go/no-go vote");
    this.badge.dataset.state = open ? "paused" : vote.state === "passed" ? "ok" : "failed";
    this.badge.textContent = voteStateLabel(vote.state);
    this.goCount.textContent = `${go} / ${minGo}`;
    this.noGoCount.textContent = String(noGo);
    this.goBar.style.width = `${Math.min(100, (go / minGo) * 100)}%`;
    this.noGoBar.style.width = noGo ? "100%" : "0%";
    const parts = [tn("{n} go vote needed", "{n} go votes needed", minGo)];
    if (rules.veto) parts.push(t("one no-go cancels"));
    if (rules.exclude_initiator) parts.push(t("the release's author may not vote"));
    this.rules.textContent = parts.join(" · ");
    this.renderVoters(vote.votes || []);
    // exclude_initiator: the release's author is refused by the API; say so up front.
    const excluded = Boolean(rules.exclude_initiator) && this.isInitiator;
    this.form.hidden = !open || !this.mayVote || excluded;
    this.excludedNote.hidden = !open || !this.mayVote || !excluded;
    const mine = (vote.votes || []).find((entry) => entry.user === this.user);
    this.goButton.setAttribute("aria-pressed", String(mine?.choice === "go"));
    this.noGoButton.setAttribute("aria-pressed", String(mine?.choice === "no_go"));
    this.outcome.hidden = open;
    this.outcome.dataset.result = vote.state;
    this.outcome.textContent = open ? "" : outcomeText(vote);
    this.renderDeadline();
  }

  renderVoters(votes) {
    clear(this.voters);
    if (!votes.length) {
      this.voters.append(el("li", { class: "muted" }, t("No votes yet.")));
      return;
    }
    for (const entry of votes) {
      const choice = entry.choice === "go" ? "go" : "no_go";
      this.voters.append(el("li", { dataset: { user: String(entry.user ?? "") } },
        el("span", { class: "vote-user" }, String(entry.user ?? "")),
        el("span", { class: "vote-choice", dataset: { choice } },
          choice === "go" ? t("Go") : t("No-go")),
        entry.comment ? el("span", { class: "vote-comment" }, String(entry.comment)) : null,
        el("time", { class: "muted", title: fmtTime(entry.ts) }, fmtTime(entry.ts))));
    }
  }

  renderDeadline() {
    const vote = this.vote;
    if (!vote || vote.state !== "open") {
      this.deadline.hidden = true;
      return;
    }
    this.deadline.hidden = false;
    const deadline = toMs(vote.deadline);
    if (deadline === null) {
      this.deadline.textContent = t("No deadline");
      this.deadline.dataset.left = "";
      return;
    }
    const left = deadline - Date.now();
    this.deadline.dataset.left = String(Math.max(0, Math.round(left / 1000)));
    this.deadline.textContent = left > 0
      ? t("Time left: {time}", { time: fmtDuration(left) })
      : t("Deadline passed: {action}", { action: timeoutLabel(vote.rules?.on_timeout) });
  }

  showError(message) {
    this.error.textContent = message || "";
    this.error.hidden = !message;
  }
}

function voteStateLabel(state) {
  return { open: t("open"), passed: t("passed"), failed: t("failed"),
    expired: t("expired") }[state] || String(state || "");
}

function timeoutLabel(action) {
  return { cancel: t("cancelling"), promote: t("promoting"),
    wait: t("waiting for votes") }[action] || String(action || "");
}

/** What became of the vote, in a sentence. */
function outcomeText(vote) {
  const outcome = vote.outcome || {};
  const counts = { go: Number(vote.go) || 0, no_go: Number(vote.no_go) || 0 };
  if (outcome.how === "override") {
    return outcome.action === "promote"
      ? t("{user} promoted the release; the vote was overridden.", { user: outcome.by })
      : t("{user} cancelled the release; the vote was overridden.", { user: outcome.by });
  }
  if (outcome.how === "timeout") {
    return outcome.action === "promote"
      ? t("The vote expired: the release continues.")
      : t("The vote expired: the release is cancelled.");
  }
  if (outcome.how === "release_ended") {
    return t("The vote closed: the release ended ({state}).",
      { state: stateLabel(outcome.action) });
  }
  return vote.state === "passed"
    ? t("Passed ({go} go, {no_go} no-go): the release continues.", counts)
    : t("Failed ({go} go, {no_go} no-go): the release is cancelled.", counts);
}
