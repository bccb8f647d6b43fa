// A project: settings and the hook editor, branches/tags/recent commits, release history.
import { del, get, post, put } from "./api.js";
import { t } from "./i18n.js";
import { drawChart, keptTargets, rollbackButton, rollbackSource } from "./project_history.js";
import { $, applyRole, clear, commitRows, confirmDialog, el, fmtDuration, fmtTime, guarded, releaseLink,
  shortSha, showNotice, stateBadge, words } from "./util.js";

const root = $("#project-page");
const name = root.dataset.project;
const base = `/api/projects/${encodeURIComponent(name)}`;
const HOOKS = ["before_checkout", "after_checkout", "before_release", "after_release"];

function fillForm(project) {
  const form = $("#settings-form");
  form.repo_url.value = project.repo_url || "";
  form.environment.value = project.environment || "";
  form.deploy_path.value = project.deploy_path || "";
  form.keep_releases.value = project.keep_releases ?? "";
  form.groups.value = (project.groups || []).join(" ");
  form.hosts.value = (project.hosts || []).join(" ");
  form.submodules.checked = Boolean(project.submodules);
  form.description.value = project.description || "";
  const check = project.health_check || {};
  form.hc_command.value = check.command || "";
  form.hc_url.value = check.url || "";
  form.hc_retries.value = check.retries ?? "";
  form.hc_interval_s.value = check.interval_s ?? "";
  form.hc_timeout_s.value = check.timeout_s ?? "";
  for (const hook of HOOKS) form[`hook_${hook}`].value = (project.hooks || {})[hook] || "";
}

function formBody(form) {
  const hooks = {};
  for (const hook of HOOKS) {
    const script = form[`hook_${hook}`].value;
    if (script.trim()) hooks[hook] = script;
  }
  let health = null;
  const command = form.hc_command.value.trim();
  const url = form.hc_url.value.trim();
  if (command || url) {
    health = command ? { command } : { url };
    for (const key of ["retries", "interval_s", "timeout_s"]) {
      const value = form[`hc_${key}`].value;
      if (value !== "") health[key] = Number(value);
    }
  }
  const body = {
    repo_url: form.repo_url.value.trim(),
    environment: form.environment.value.trim(),
    deploy_path: form.deploy_path.value.trim(),
    groups: words(form.groups.value),
    hosts: words(form.hosts.value),
    submodules: form.submodules.checked,
    description: form.description.value,
    hooks,
    health_check: health,
  };
  if (form.keep_releases.value !== "") body.keep_releases = Number(form.keep_releases.value);
  return body;
}

let project = null;

async function loadProject() {
  await guarded(async () => {
    project = await get(base);
    fillForm(project);
  });
}

async function showCommits(ref) {
  $("#commits-title").textContent = `${t("Recent commits")} · ${ref}`;
  await guarded(async () => {
    const { commits } = await get(`${base}/commits?ref=${encodeURIComponent(ref)}`);
    commitRows($("#commits"), commits);
  });
}

async function loadRefs() {
  const box = $("#refs");
  await guarded(async () => {
    // A GET reads Ferry's mirror only; a never fetched or stale one is refreshed (POST).
    let refs = await get(`${base}/refs`);
    if (!refs.fetched_at || refs.stale) {
      refs = await post(`${base}/refresh`).catch((error) => {
        if (!refs.fetched_at) throw error;
        return refs;
      });
    }
    clear(box);
    for (const [title, list] of [[t("Branches"), refs.branches || []], [t("Tags"), refs.tags || []]]) {
      const body = el("tbody");
      for (const ref of list) {
        const row = el("tr", { class: "clickable", dataset: { ref: ref.name }, tabindex: 0 },
          el("td", null, el("b", null, ref.name)),
          el("td", { class: "mono" }, shortSha(ref.sha)),
          el("td", null, ref.subject || ""),
          el("td", null, ref.author || ""));
        const open = () => {
          for (const other of box.querySelectorAll("tr.current")) other.classList.remove("current");
          row.classList.add("current");
          showCommits(ref.name);
        };
        row.addEventListener("click", open);
        row.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
        body.append(row);
      }
      if (!list.length) body.append(el("tr", null, el("td", { colspan: 4, class: "muted" },
        t("none"))));
      box.append(el("h3", null, title), el("table", { class: "list compact" }, body));
    }
    const first = (refs.branches || []).find((b) => b.name === "main" || b.name === "master")
      || (refs.branches || [])[0];
    if (first) showCommits(first.name);
  }).catch(() => {});
  if (!box.firstChild || box.querySelector("p.muted")) clear(box);
}

async function loadHistory() {
  await guarded(async () => {
    const { releases } = await get(`/api/releases?project=${encodeURIComponent(name)}&limit=50`);
    const body = $("#history");
    clear(body);
    const rollback = { ...rollbackSource(releases),
      kept: keptTargets(releases, project?.keep_releases ?? 5) };
    for (const release of releases) {
      const counts = release.counts || {};
      const total = Object.values(counts).reduce((a, b) => a + (b || 0), 0);
      body.append(el("tr", null,
        el("td", null, releaseLink(release.id)),
        el("td", null, release.ref || ""),
        el("td", { class: "mono", title: release.sha || "" }, shortSha(release.sha)),
        el("td", null, t(release.kind || "deploy")),
        el("td", null, stateBadge(release.state)),
        el("td", null, `${counts.ok || 0}/${total}`),
        el("td", null, fmtDuration(release.duration_ms)),
        el("td", null, release.created_by || ""),
        el("td", null, fmtTime(release.started_at || release.created_at)),
        el("td", { class: "history-actions deployer-only" },
          rollbackButton(release, rollback))));
    }
    if (!releases.length) body.append(el("tr", null, el("td", { colspan: 10, class: "muted" },
      t("none"))));
    applyRole();
    await drawChart($("#release-chart"), releases);
  });
}

$("#settings-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    fillForm(await put(base, formBody(event.target)));
    showNotice(t("Saved."));
  });
});

$("#delete-project").addEventListener("click", async () => {
  if (!(await confirmDialog(t("Delete project {name}?", { name })))) return;
  await guarded(async () => {
    await del(base);
    location.assign("/projects");
  });
});

applyRole();
loadProject().then(loadHistory);
loadRefs();
