// New release: pick a ref (with its subject and author), the hosts by group, and a
// strategy; see the commits between what is deployed and the target; start it.
import { get, post } from "./api.js";
import { t, tn } from "./i18n.js";
import { $, $$, applyRole, clear, commitRows, el, fmtTime, guarded, shortSha, showError }
  from "./util.js";

const root = $("#new-release-page");
const project = root.dataset.project;
const projectGroups = JSON.parse(root.dataset.groups || "[]");
const projectHosts = JSON.parse(root.dataset.hosts || "[]");
const projectStrategy = JSON.parse(root.dataset.strategy || "null");
const refs = new Map();       // name → {name, sha, subject, author, date}
let deployed = null;          // the release whose sha is live now, or null
let allHosts = [];
let changesToken = 0;

function sizeValue(text) {
  const value = String(text).trim();
  if (/^\d+%$/.test(value)) return value;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}

function currentRef() {
  return $("#ref-input").value.trim() || $("#ref-select").value;
}

async function loadRefs() {
  const select = $("#ref-select");
  const data = await get(`/api/projects/${encodeURIComponent(project)}/refs`);
  clear(select);
  for (const [label, list] of [[t("Branches"), data.branches || []], [t("Tags"), data.tags || []]]) {
    if (!list.length) continue;
    const group = el("optgroup", { label });
    for (const ref of list) {
      refs.set(ref.name, ref);
      const author = ref.author ? ` (${ref.author})` : "";
      group.append(el("option", { value: ref.name },
        `${ref.name} — ${ref.subject || shortSha(ref.sha)}${author}`));
    }
    select.append(group);
  }
  const main = (data.branches || []).find((b) => b.name === "main" || b.name === "master");
  if (main) select.value = main.name;
}

async function loadDeployed() {
  const { releases } = await get(`/api/releases?project=${encodeURIComponent(project)}&limit=100`);
  deployed = releases.find((r) => r.state === "succeeded" && r.sha) || null;
}

function showRefInfo() {
  const box = $("#ref-info");
  clear(box);
  const ref = refs.get(currentRef());
  if (ref) {
    box.append(el("b", null, ref.subject || ""), ` — ${ref.author || ""}, ${fmtTime(ref.date)} · `,
      el("span", { class: "mono" }, shortSha(ref.sha)));
  }
}

async function showChanges() {
  const ref = currentRef();
  const token = ++changesToken;
  const body = $("#changes");
  const title = $("#changes-title");
  showRefInfo();
  if (!ref) return;
  const base = deployed ? deployed.sha : null;
  const query = `ref=${encodeURIComponent(ref)}${base ? `&base=${encodeURIComponent(base)}` : ""}`;
  try {
    const { commits } = await get(`/api/projects/${encodeURIComponent(project)}/commits?${query}`);
    if (token !== changesToken) return;
    title.textContent = base
      ? `${t("Deployed now: {sha} (release {id})", { sha: shortSha(base), id: deployed.id })} · ${
        t("Commits between {base} and {ref}", { base: shortSha(base), ref })}`
      : t("First release of this project: recent commits of {ref}", { ref });
    commitRows(body, commits);
    showError("");
  } catch (error) {
    if (token !== changesToken) return;
    clear(body);
    title.textContent = "";
    showError(error.message);
  }
}

function renderGroups() {
  const box = $("#groups");
  clear(box);
  const groups = new Map();
  for (const host of allHosts) {
    for (const group of (host.groups && host.groups.length ? host.groups : [""])) {
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(host);
    }
  }
  const initial = new Set(allHosts.filter((host) => projectHosts.includes(host.name)
    || (host.groups || []).some((g) => projectGroups.includes(g))).map((host) => host.name));
  for (const [group, members] of [...groups].sort((a, b) => a[0].localeCompare(b[0]))) {
    const groupBox = el("input", { type: "checkbox", class: "group-check",
      dataset: { group } });
    const list = el("div", { class: "group-hosts" });
    for (const host of members) {
      list.append(el("label", { class: "check" },
        el("input", { type: "checkbox", class: "host-check", value: host.name,
          checked: initial.has(host.name), dataset: { group } }),
        host.name));
    }
    groupBox.addEventListener("change", () => {
      const members = $$("input.host-check", list);
      for (const input of members) input.checked = groupBox.checked;
      propagate(members);
      updateSummary();
    });
    box.append(el("details", { class: "group-box", open: members.length <= 12 },
      el("summary", null, groupBox, el("b", null, group || t("none")),
        el("span", { class: "muted" }, tn("{n} host", "{n} hosts", members.length))),
      list));
  }
  if (!allHosts.length) box.append(el("p", { class: "muted" }, t("none")));
  box.addEventListener("change", (event) => {
    if (event.target.classList.contains("host-check")) {
      propagate([event.target]);
      updateSummary();
    }
  });
  propagate([]);
}

// A host in several groups has one checkbox per group: keep them in step, and show each
// group's box as checked or mixed.
function propagate(changed) {
  const values = new Map(changed.map((input) => [input.value, input.checked]));
  for (const input of $$("input.host-check")) {
    if (values.has(input.value)) input.checked = values.get(input.value);
  }
  for (const groupBox of $$("input.group-check")) {
    const list = groupBox.closest("details").querySelector(".group-hosts");
    const members = $$("input.host-check", list);
    const checked = members.filter((input) => input.checked).length;
    groupBox.checked = checked > 0 && checked === members.length;
    groupBox.indeterminate = checked > 0 && checked < members.length;
  }
}

function selectedHosts() {
  return [...new Set($$("input.host-check").filter((input) => input.checked)
    .map((input) => input.value))];
}

function preset() {
  return $("input[name=preset]:checked").value;
}

function strategy() {
  const form = $("#release-form");
  const body = { preset: preset(), parallel: Number(form.parallel.value || 50) };
  if (body.preset === "parallel") body.batches = ["100%"];
  if (body.preset === "rolling") body.batches = [sizeValue(form.batch.value || "10")];
  if (body.preset === "canary") {
    body.batches = [sizeValue(form.canary.value || "1"), "100%"];
    body.pause_after = [1];
  }
  if (form.max_fail.value.trim() !== "") body.max_fail = sizeValue(form.max_fail.value);
  body.auto_rollback = form.auto_rollback.checked;
  return body;
}

function batchCount(total, batches) {
  let placed = 0;
  let count = 0;
  while (placed < total && count < 10000) {
    const size = batches[Math.min(count, batches.length - 1)];
    const n = typeof size === "number" ? size
      : Math.max(1, Math.ceil((total * parseInt(size, 10)) / 100));
    if (!(n > 0)) return 0;
    placed += n;
    count += 1;
  }
  return count;
}

function updateSummary() {
  const hosts = selectedHosts();
  $("#host-count").textContent = t("{n} selected", { n: hosts.length });
  for (const label of $$("[data-for]")) label.hidden = label.dataset.for !== preset();
  const plan = strategy();
  $("#plan-summary").textContent = hosts.length
    ? t("{n} hosts in {b} batches", { n: hosts.length, b: batchCount(hosts.length, plan.batches) })
    : t("no hosts selected");
}

function applyDefaultStrategy() {
  const form = $("#release-form");
  const s = projectStrategy;
  if (!s) return;
  if (s.parallel) form.parallel.value = s.parallel;
  const batches = s.batches || [];
  if ((s.pause_after || []).includes(1) && batches.length === 2) {
    $("input[name=preset][value=canary]").checked = true;
    form.canary.value = batches[0];
  } else if (batches.length === 1 && batches[0] !== "100%") {
    $("input[name=preset][value=rolling]").checked = true;
    form.batch.value = batches[0];
  }
  if (s.max_fail !== null && s.max_fail !== undefined) form.max_fail.value = s.max_fail;
  form.auto_rollback.checked = Boolean(s.auto_rollback);
}

async function start(event) {
  event.preventDefault();
  const button = $("#start-release");
  const hosts = selectedHosts();
  const ref = currentRef();
  if (!hosts.length) {
    showError(t("no hosts selected"));
    return;
  }
  button.disabled = true;
  button.textContent = t("Starting…");
  try {
    showError("");
    const release = await post("/api/releases", { project, ref, hosts, strategy: strategy() });
    location.assign(`/releases/${release.id}`);
  } catch (error) {
    showError(error.message);
    button.disabled = false;
    button.textContent = t("Start release");
  }
}

applyRole();
applyDefaultStrategy();
$("#release-form").addEventListener("submit", start);
$("#release-form").addEventListener("input", (event) => {
  if (event.target.id === "ref-input") return;
  updateSummary();
});
$("#ref-select").addEventListener("change", () => {
  $("#ref-input").value = "";
  showChanges();
});
let refTimer = null;
$("#ref-input").addEventListener("input", () => {
  clearTimeout(refTimer);
  refTimer = setTimeout(showChanges, 400);
});

guarded(async () => {
  const [, , hostList] = await Promise.all([loadRefs(), loadDeployed(), get("/api/hosts")]);
  allHosts = hostList.hosts;
  renderGroups();
  updateSummary();
  await showChanges();
});
