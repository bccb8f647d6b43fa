// The DOM parts of the wall: running releases across the top (progress, ETA, vote),
// recently finished ones along the bottom. A handful of elements, rebuilt as text.
import { t } from "../i18n.js";
import { clear, el, fmtDuration, toMs } from "../util.js";

const BAR_STATES = ["ok", "failed", "skipped", "cancelled", "rolled_back", "interrupted", "running"];
const DONE = ["ok", "failed", "skipped", "cancelled", "rolled_back", "interrupted"];

function done(counts) {
  return DONE.reduce((sum, state) => sum + (counts[state] || 0), 0);
}

// Time left at the pace so far: elapsed / done × remaining.
export function eta(release, now) {
  const counts = release.counts || {};
  const total = release.total || 0;
  const finished = done(counts);
  const started = toMs(release.started_at);
  if (!started || finished === 0 || finished >= total || release.state === "paused") return null;
  return ((now - started) / finished) * (total - finished);
}

function card(release, vote, now) {
  const counts = release.counts || {};
  const total = release.total || 0;
  const bar = el("div", { class: "run-bar" });
  for (const state of BAR_STATES) {
    if (counts[state] && total) {
      const part = el("span", { dataset: { state } });
      part.style.width = `${(100 * counts[state]) / total}%`;
      bar.append(part);
    }
  }
  const line = el("div", { class: "run-line" },
    el("span", { text: t("{done} of {total} hosts done", { done: done(counts), total }) }));
  if (counts.failed) line.append(el("span", { class: "failed", text: `${counts.failed} ${t("failed")}` }));
  if (counts.running) line.append(el("span", { text: `${counts.running} ${t("running")}` }));
  const left = eta(release, now);
  if (left !== null) line.append(el("span", { text: t("ETA {eta}", { eta: fmtDuration(left) }) }));
  if (release.state === "paused") {
    const text = vote
      ? t("paused: vote open {go}/{min} go", { go: vote.go || 0, min: vote.min_go || "?" })
      : t("paused: promote to continue");
    line.append(vote
      ? el("a", { class: "run-vote", href: `/releases/${release.release_id}/vote`, text })
      : el("span", { class: "run-vote", text }));
  }
  return el("article", { class: "run-card", dataset: { state: release.state, release: release.release_id } },
    el("div", { class: "run-title" },
      el("span", { class: "run-project", text: `#${release.release_id} ${release.project || ""}` }),
      el("span", { class: "run-ref", text: `${release.ref || ""}${release.sha ? " · " + release.sha.slice(0, 8) : ""}` }),
      release.kind && release.kind !== "deploy" ? el("span", { text: t(release.kind) }) : null,
      el("span", { class: "run-who", text: release.created_by ? t("by {user}", { user: release.created_by }) : "" })),
    bar, line);
}

export function drawRunning(root, model, now) {
  clear(root);
  const running = model.running();
  if (running.length === 0) {
    root.append(el("div", { class: "empty", text: t("No release is running.") }));
    return;
  }
  for (const release of running.slice(0, 6)) {
    root.append(card(release, model.votes.get(release.release_id), now));
  }
}

export function drawRecent(root, model) {
  clear(root);
  root.append(el("span", { class: "label", text: t("Recently finished") }));
  const recent = model.recent().slice(0, 6);
  if (recent.length === 0) root.append(el("span", { text: t("Nothing yet.") }));
  for (const release of recent) {
    root.append(el("span", { class: "recent-item", dataset: { state: release.state, release: release.release_id } },
      el("b", { text: `#${release.release_id} ${release.project || ""} ${release.ref || ""}` }),
      ` ${t(release.state)}`,
      release.duration_ms ? ` · ${t("took {duration}", { duration: fmtDuration(release.duration_ms) })}` : ""));
  }
}
