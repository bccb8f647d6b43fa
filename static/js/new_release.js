// New release: pick a ref (with its subject and author), the hosts by group, and a
// strategy; see the commits between what is deployed and the target; start it.
import { get, post } from "./api.js";
import { batchCount, deployedNow, sizeValue, validSize } from "./release_plan.js";
import { t, tn } from "./i18n.js";
import { $, $$, applyRole, clear, commitRows, el, fmtTime, shortSha, showError }
  from "./util.js";

const root = $("#new-release-page");
const project = root.dataset.project;
const projectGroups = JSON.parse(root.dataset.groups || "[]");
const projectHosts = JSON.parse(root.dataset.hosts || "[]");
const projectStrategy = JSON.parse(root.dataset.strategy || "null");
const environment = root.dataset.environment;
const refs = new Map();       // name → {name, sha, subject, author, date}
let deployed = null;          // what is live now: {release, sha, ok, total}, or null
let historyError = null;      // why the release history could not be read, or null
let allHosts = [];
let changesToken = 0;
let starting = false;
const loadErrors = [];        // what could not be loaded, shown above the form

/** The page's error box: what failed to load, then `more` (unless already said). */
// What the error box shows: what failed to load, the commits list's error, the last
// start's error. Each part is set and cleared by its own code, so a commits list that
// arrives late does not wipe the answer to a start the user just clicked.
const errors = { changes: "", start: "" };

function pageError(part, message = "") {
  if (part) errors[part] = message;
  const parts = [errors.changes, errors.start].filter(
    (text) => text && !loadErrors.some((error) => error.includes(text)));
  showError([...loadErrors, ...parts].join("\n"));
}

function projectUrl(path) {
  return `/api/projects/${encodeURIComponent(project)}/${path}`;
}

function currentRef() {
  return $("#ref-input").value.trim() || $("#ref-select").value;
}

/** Branches and tags: a GET reads only Ferry's mirror of the repository, so when that was
 * never fetched or is stale, ask for a refresh (a POST, rate-limited by the server). */
async function fetchRefs() {
  const data = await get(projectUrl("refs"));
  if (data.fetched_at && !data.stale) return data;
  try {
    return await post(projectUrl("refresh"));
  } catch (error) {
    if (!data.fetched_at) throw error;
    return data;             // stale but usable: show what the mirror has
  }
}

async function loadRefs() {
  const select = $("#ref-select");
  const data = await fetchRefs();
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
  deployed = deployedNow(releases, environment);
}

function showDeployed() {
  const box = $("#deployed-now");
  if (historyError) {
    box.className = "muted";
    box.textContent = t("The release history could not be loaded: {error}",
      { error: historyError });
  } else if (deployed) {
    box.className = "";
    box.textContent = tn("Deployed now: {sha} (release {id}, on {ok} of {n} host)",
      "Deployed now: {sha} (release {id}, on {ok} of {n} hosts)", deployed.total,
      { sha: shortSha(deployed.sha), id: deployed.release.id, ok: deployed.ok });
  } else {
    box.className = "muted";
    box.textContent = t("No release of this project is deployed yet.");
  }
}

/** The subject, author and date of the commit `ref` names, or, when they are not known
 * (yet), the ref as typed. */
function showRefInfo(ref, commit) {
  const box = $("#ref-info");
  clear(box);
  if (commit) {
    box.append(el("b", null, commit.subject || ""),
      ` — ${commit.author || ""}, ${fmtTime(commit.date)} · `,
      el("span", { class: "mono", title: commit.sha }, shortSha(commit.sha)));
  } else if (ref) {
    box.append(el("span", { class: "mono" }, ref), " — ",
      t("commit details appear once the release resolves it"));
  }
}

async function commitsOf(ref, base) {
  const query = `ref=${encodeURIComponent(ref)}${base ? `&base=${encodeURIComponent(base)}` : ""}`;
  return (await get(projectUrl(`commits?${query}`))).commits;
}

async function showChanges() {
  const ref = currentRef();
  const token = ++changesToken;
  const body = $("#changes");
  const title = $("#changes-title");
  const known = refs.get(ref);
  showRefInfo(known ? ref : "", known);
  if (!ref) {
    clear(body);
    title.textContent = "";
    return;
  }
  const base = deployed ? deployed.sha : null;
  const changes = commitsOf(ref, base);
  // A typed SHA or ref: its own commit heads the recent commits of it.
  const detail = known ? Promise.resolve(known)
    : (base ? commitsOf(ref) : changes).then((commits) => commits[0] || null);
  const [changed, described] = await Promise.allSettled([changes, detail]);
  if (token !== changesToken) return;
  if (!known) showRefInfo(ref, described.status === "fulfilled" ? described.value : null);
  if (changed.status === "fulfilled") {
    let text = t("First release of this project: recent commits of {ref}", { ref });
    if (base) text = t("Commits between {base} and {ref}", { base: shortSha(base), ref });
    else if (historyError) text = t("Recent commits of {ref}", { ref });
    title.textContent = text;
    commitRows(body, changed.value);
    pageError("changes");
  } else {
    clear(body);
    title.textContent = "";
    pageError("changes", changed.reason.message || String(changed.reason));
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

/** `not_before` from the "Schedule for" field (the browser's local time), if filled. */
function schedule() {
  const value = $("#release-form").not_before?.value;
  return value ? { not_before: new Date(value).toISOString() } : {};
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

/** The strategy fields' problems, shown under them; Start stays disabled while any. */
function validate() {
  const form = $("#release-form");
  const max = Number(form.parallel.max || 1000);
  const parallel = form.parallel.value.trim();
  const checks = [
    [form.parallel, /^\d+$/.test(parallel) && Number(parallel) >= 1 && Number(parallel) <= max,
      t("Hosts at once must be a whole number from 1 to {max}.", { max })],
    [form.batch, preset() !== "rolling" || validSize(form.batch.value, 1),
      t("Batch size must be a number of hosts (1 or more) or a percentage from 1% to 100%.")],
    [form.canary, preset() !== "canary" || validSize(form.canary.value, 1),
      t("Canary hosts must be a number of hosts (1 or more) or a percentage from 1% to 100%.")],
    [form.max_fail, form.max_fail.value.trim() === "" || validSize(form.max_fail.value, 0),
      t("Failures allowed must be empty, a count (0 or more) or a percentage from 1% to 100%.")],
  ];
  const box = clear($("#strategy-error"));
  for (const [input, ok, message] of checks) {
    if (ok) input.removeAttribute("aria-invalid");
    else {
      input.setAttribute("aria-invalid", "true");
      box.append(el("div", null, message));
    }
  }
  box.hidden = !box.firstChild;
  $("#start-release").disabled = starting || !box.hidden;
  return box.hidden;
}

function updateSummary() {
  const hosts = selectedHosts();
  $("#host-count").textContent = t("{n} selected", { n: hosts.length });
  for (const label of $$("[data-for]")) label.hidden = label.dataset.for !== preset();
  const valid = validate();
  const hostText = tn("{n} host", "{n} hosts", hosts.length);
  if (!hosts.length) $("#plan-summary").textContent = t("no hosts selected");
  else if (!valid) $("#plan-summary").textContent = hostText;
  else {
    const batches = batchCount(hosts.length, strategy().batches);
    $("#plan-summary").textContent = t("{hosts} in {batches}",
      { hosts: hostText, batches: tn("{n} batch", "{n} batches", batches) });
  }
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
    pageError("start", t("no hosts selected"));
    return;
  }
  if (!validate()) return;
  starting = true;
  button.disabled = true;
  button.textContent = t("Starting…");
  try {
    pageError("start");
    const release = await post("/api/releases", { project, ref, hosts, strategy: strategy(),
      ...schedule() });
    location.assign(`/releases/${release.id}`);
  } catch (error) {
    pageError("start", error.message);
    starting = false;
    button.textContent = t("Start release");
    validate();
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

async function loadHosts() {
  allHosts = (await get("/api/hosts")).hosts;
  renderGroups();
  updateSummary();
}

/** Runs `loader`; when it fails, notes why for the page and lets `failed` fill its place. */
async function settle(loader, failed) {
  try {
    await loader();
  } catch (error) {
    failed(error.message || String(error));
  }
}

// Refs, hosts and history load independently: one failing leaves the others usable.
validate();
Promise.all([
  settle(loadRefs, (error) => {
    loadErrors.push(t("Branches and tags could not be loaded: {error}", { error }));
    const select = clear($("#ref-select"));
    select.append(el("option", { value: "" }, t("(type a branch, tag or SHA below)")));
  }),
  settle(loadHosts, (error) => {
    loadErrors.push(t("Hosts could not be loaded: {error}", { error }));
    clear($("#groups")).append(el("p", { class: "muted" }, t("none")));
  }),
  settle(loadDeployed, (error) => {
    historyError = error;
  }),
]).then(() => {
  showDeployed();
  pageError();
  return showChanges();
});
