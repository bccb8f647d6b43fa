// Dashboard: projects, releases running now (live through the `wall` topic), and recent
// releases with their outcome and duration.
import { get } from "./api.js";
import { EventClient } from "./events.js";
import { t, tn } from "./i18n.js";
import { $, applyRole, clear, el, fmtDuration, fmtTime, guarded, releaseLink, showError,
  stateBadge, statusLabel } from "./util.js";

const ACTIVE = new Set(["pending", "running", "paused"]);
const running = new Map();    // release id → {id, project, environment, kind, ref, state, total, counts}
let refreshTimer = null;

function totalOf(release) {
  if (release.total) return release.total;
  return Object.values(release.counts || {}).reduce((a, b) => a + (b || 0), 0);
}

function renderRunning() {
  const box = $("#running");
  clear(box);
  const items = [...running.values()].filter((r) => ACTIVE.has(r.state))
    .sort((a, b) => b.id - a.id);
  if (!items.length) {
    box.append(el("p", { class: "muted" }, t("none")));
    return;
  }
  for (const release of items) {
    const counts = release.counts || {};
    const total = totalOf(release) || 1;
    const done = ["ok", "failed", "skipped", "cancelled", "rolled_back", "interrupted"]
      .reduce((sum, s) => sum + (counts[s] || 0), 0);
    const bar = el("div", { class: "progress" });
    for (const [state, cls] of [["ok", "seg-ok"], ["failed", "seg-failed"],
      ["skipped", "seg-skipped"], ["running", "seg-running"]]) {
      const seg = el("span", { class: `seg ${cls}` });
      seg.style.width = `${(100 * (counts[state] || 0)) / total}%`;
      bar.append(seg);
    }
    box.append(el("div", { class: "running-item", dataset: { release: release.id } },
      el("div", null,
        el("div", { class: "title" }, releaseLink(release.id, `#${release.id} ${release.project}`),
          " ", stateBadge(release.state)),
        el("div", { class: "muted" }, `${t(release.kind || "deploy")} ${release.ref || ""} · ${
          release.environment || ""}`)),
      bar,
      el("div", null, tn("{done} of {total} host done", "{done} of {total} hosts done",
        totalOf(release), { done, total: totalOf(release) }))));
  }
}

function renderRecent(releases) {
  const body = $("#recent");
  clear(body);
  for (const release of releases.slice(0, 25)) {
    body.append(el("tr", null,
      el("td", null, releaseLink(release.id)),
      el("td", null, el("a", { href: `/projects/${encodeURIComponent(release.project)}`,
        class: "ellipsis", title: release.project }, release.project)),
      el("td", null, el("span", { class: "ellipsis", title: release.ref || "" }, release.ref || "")),
      el("td", null, t(release.kind || "deploy")),
      el("td", null, stateBadge(release.state)),
      el("td", null, fmtDuration(release.duration_ms)),
      el("td", null, release.created_by || ""),
      el("td", null, fmtTime(release.started_at || release.created_at))));
  }
  if (!releases.length) body.append(el("tr", null, el("td", { colspan: 8, class: "muted" },
    t("none"))));
}

function renderProjects(projects, releases) {
  const body = $("#projects");
  clear(body);
  for (const project of projects) {
    const last = releases.find((r) => r.project === project.name);
    body.append(el("tr", null,
      el("td", null, el("a", { href: `/projects/${encodeURIComponent(project.name)}`,
        class: "ellipsis", title: project.name }, project.name)),
      el("td", null, el("span", { class: "ellipsis", title: project.environment },
        project.environment)),
      el("td", null, last ? el("span", null, releaseLink(last.id), " ", stateBadge(last.state))
        : t("Never")),
      el("td", { class: "actions" }, el("a", { class: "button small deployer-only",
        href: `/projects/${encodeURIComponent(project.name)}/release` }, t("Start release")))));
  }
  if (!projects.length) body.append(el("tr", null, el("td", { colspan: 4, class: "muted" },
    t("none"))));
  applyRole();
}

// The wall's seq when the first list was read: live updates start after it.
let wallSeq = null;

async function load() {
  await guarded(async () => {
    const [{ projects }, { releases, wall_seq: seq }] = await Promise.all([
      get("/api/projects"), get("/api/releases?limit=50")]);
    if (typeof seq === "number" && wallSeq === null) wallSeq = seq;
    for (const release of releases) {
      if (ACTIVE.has(release.state)) running.set(release.id, { ...release, ...running.get(release.id) });
      else running.delete(release.id);
    }
    renderProjects(projects, releases);
    renderRecent(releases);
    renderRunning();
  });
}

function onWall(events) {
  let ended = false;
  for (const event of events) {
    if (event.type !== "release") continue;
    const data = event.data || {};
    const id = data.release_id;
    if (id === undefined) continue;
    running.set(id, { ...(running.get(id) || {}), ...data, id });
    if (!ACTIVE.has(data.state)) ended = true;
  }
  renderRunning();
  if (ended) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(load, 800);
  }
}

function status(value) {
  const node = $("#live-status");
  node.dataset.status = value;
  node.textContent = statusLabel(value);
}

applyRole();
load().then(() => {
  if (document.body.dataset.role === "member") {
    // The `wall` topic tells of every project: a member (who sees only their own
    // projects) is not sent it, and the lists are read again instead.
    setInterval(load, 10000);
    return;
  }
  const client = new EventClient({ onStatus: status, onError: (topic, message) => showError(message) });
  client.subscribe("wall", wallSeq ?? 0, onWall);
});
