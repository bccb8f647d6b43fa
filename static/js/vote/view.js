// Drawing the vote screen: a handful of elements, set as text (never as markup).
import { lang, t, tn } from "../i18n.js";
import { $, clear, el, shortSha, toMs } from "../util.js";
import { ACTIVE, FINISHED } from "./model.js";

const ON_TIMEOUT = { cancel: "cancel", promote: "promote", wait: "wait" };

export function drawHeader(model) {
  const release = model.release;
  $("#vote-release").textContent = [release.project, release.ref, shortSha(release.sha),
    release.created_by ? t("by {user}", { user: release.created_by }) : ""]
    .filter(Boolean).join(" · ");
}

function drawBar(choice, count, scale, mark) {
  const bar = $(`#bar-${choice}`);
  bar.querySelector(".bar-fill").style.width = `${(100 * Math.min(count, scale)) / scale}%`;
  const markNode = bar.querySelector(".bar-mark");
  if (markNode) markNode.style.left = `${(100 * mark) / scale}%`;
}

export function drawTally(model) {
  const vote = model.vote;
  const release = model.release;
  const section = $("#vote-tally");
  section.dataset.state = vote ? vote.state : "none";
  $("#vote-question").textContent = vote
    ? t("Continue release #{id}?", { id: release.id })
    : t("No vote on this release yet: one opens when it pauses for a vote.");
  const rules = (vote && vote.rules) || {};
  const minGo = rules.min_go || 1;
  const go = vote ? vote.go || 0 : 0;
  const noGo = vote ? vote.no_go || 0 : 0;
  const parts = [t("{min} go votes needed", { min: minGo })];
  if (vote) {
    parts.push(rules.veto ? t("one no-go cancels") : t("no-go votes do not cancel"));
    if (rules.timeout_s) parts.push(t("on timeout: {action}", { action: t(ON_TIMEOUT[rules.on_timeout] || "wait") }));
  }
  $("#vote-rules").textContent = vote ? parts.join(" · ") : "";
  const scale = Math.max(minGo, go, noGo, 1);
  drawBar("go", go, scale, minGo);
  drawBar("no_go", noGo, scale, 0);
  $("#count-go").textContent = `${go}/${minGo}`;
  $("#count-no_go").textContent = String(noGo);
  drawOutcome(model);
}

function outcomeWords(vote, release) {
  const outcome = vote.outcome || {};
  const how = outcome.how;
  if (how === "override") {
    return [t("OVERRIDDEN"), outcome.action === "promote"
      ? t("{user} promoted the release", { user: outcome.by })
      : t("{user} cancelled the release", { user: outcome.by })];
  }
  if (how === "timeout" || vote.state === "expired" && how !== "release_ended") {
    return [t("EXPIRED"), t("timed out: {action}", { action: t(ON_TIMEOUT[outcome.action] || "wait") })];
  }
  if (how === "release_ended") return [t("CLOSED"), t("the release {state}", { state: t(outcome.action || release.state) })];
  if (vote.state === "passed") return [t("PASSED"), t("the release continues to every host")];
  return [t("FAILED"), t("the release is cancelled")];
}

function drawOutcome(model) {
  const vote = model.vote;
  const box = $("#vote-outcome");
  const decided = vote && vote.state !== "open";
  box.hidden = !decided;
  document.body.dataset.outcome = decided ? vote.state : "";
  if (!decided) return;
  const [word, detail] = outcomeWords(vote, model.release);
  box.dataset.state = vote.state;
  box.dataset.how = (vote.outcome && vote.outcome.how) || "";
  $("#outcome-word").textContent = word;
  $("#outcome-word").dataset.long = String(word.length > 7); // "OVERRIDDEN" must fit too
  const state = model.release.state;
  $("#outcome-detail").textContent = FINISHED.includes(state) || state === "running"
    ? `${detail} · ${t("Release #{id}", { id: model.release.id })}: ${t(state)}`
    : detail;
}

function clockText(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

export function drawCountdown(model) {
  const node = $("#vote-countdown");
  const vote = model.vote;
  const deadline = vote ? toMs(vote.deadline) : null;
  let text = "–";
  let state = "";
  if (vote && vote.state === "open") {
    if (deadline === null) {
      text = t("no deadline");
      state = "none";
    } else {
      const left = deadline - model.now();
      text = left > 0 ? clockText(left) : t("past the deadline");
      state = left <= 0 ? "over" : left < 60000 ? "soon" : "";
    }
  }
  node.textContent = text;
  node.dataset.state = state;
  node.parentElement.hidden = !(vote && vote.state === "open"); // decided: the outcome says it
}

export function drawCanary(model) {
  const health = model.health();
  const parts = [];
  if (health.of) parts.push(t("batch {n} of {of} done", { n: health.batches, of: health.of }));
  parts.push(t("{ok} ok", { ok: health.ok }));
  const failed = el("span", { class: health.failed ? "failed" : "", text: t("{failed} failed", { failed: health.failed }) });
  const left = health.total - health.done;
  const node = clear($("#vote-canary"));
  node.append(parts.join(" · "), " · ", failed);
  if (left > 0 && ACTIVE.includes(model.release.state)) node.append(` · ${tn("{n} host to go", "{n} hosts to go", left)}`);
  node.dataset.failed = String(health.failed);
}

export function drawVoters(model) {
  const list = clear($("#vote-voters"));
  const votes = model.vote ? model.vote.votes : [];
  if (!votes.length) {
    list.append(el("li", { class: "empty", text: t("No votes yet.") }));
    return;
  }
  for (const vote of votes) {
    list.append(el("li", { dataset: { choice: vote.choice, user: vote.user } },
      el("span", { class: "chip", text: vote.choice === "go" ? t("go") : t("no-go") }),
      el("b", { text: vote.user }),
      vote.comment ? el("span", { class: "comment", text: vote.comment }) : null));
  }
}

function hhmm(ts) {
  const ms = toMs(ts);
  return ms === null ? "" : new Date(ms).toLocaleTimeString(lang(),
    { hour: "2-digit", minute: "2-digit", hour12: false });
}

export function drawChat(model, showChat) {
  const list = clear($("#vote-chat"));
  if (!showChat) {
    list.append(el("li", { class: "empty", text: t("Chat is not shown on this screen.") }));
    return;
  }
  if (!model.chat.length) list.append(el("li", { class: "empty", text: t("No messages yet.") }));
  for (const message of model.chat) {
    const time = hhmm(message.ts);
    list.append(el("li", { dataset: { kind: message.kind } },
      el("time", { text: time }), el("b", { text: message.user }),
      el("span", { class: "text", text: message.text })));
  }
}
