// Hosts: the list with groups and last release, add/edit, import many at once, and host
// key scans whose fingerprints the user confirms before Ferry trusts them.
import { del, get, post, put } from "./api.js";
import { t, tn } from "./i18n.js";
import { $, applyRole, clear, confirmDialog, el, guarded, releaseLink, showError,
  showNotice, stateBadge, words } from "./util.js";

let hosts = [];
let editing = null;

async function load() {
  await guarded(async () => {
    const group = $("#group-filter").value;
    const all = (await get("/api/hosts")).hosts;
    hosts = group ? all.filter((host) => (host.groups || []).includes(group)) : all;
    renderGroups(all);
    render();
  });
}

function renderGroups(all) {
  const select = $("#group-filter");
  const current = select.value;
  const groups = [...new Set(all.flatMap((host) => host.groups || []))].sort();
  clear(select);
  select.append(el("option", { value: "" }, t("all")));
  for (const group of groups) {
    const count = all.filter((host) => (host.groups || []).includes(group)).length;
    select.append(el("option", { value: group }, `${group} (${count})`));
  }
  select.value = groups.includes(current) ? current : "";
}

function render() {
  const body = $("#hosts");
  clear(body);
  for (const host of hosts) {
    const trusted = Boolean(host.host_key_fingerprint);
    const last = host.last_release;
    body.append(el("tr", { dataset: { host: host.name } },
      el("td", null, el("a", { href: `/hosts/${encodeURIComponent(host.name)}` },
        el("b", null, host.name))),
      el("td", null, hostPort(host.address, host.port),
        host.jump_host ? el("div", { class: "muted" }, `via ${host.jump_host}`) : null),
      el("td", null, host.user),
      el("td", null, (host.groups || []).join(" ")),
      el("td", null, trusted
        ? el("span", { class: "key-ok", title: host.host_key_fingerprint }, t("trusted"))
        : el("span", { class: "key-missing" }, t("not trusted"))),
      el("td", null, last ? el("span", null, releaseLink(last.id), " ", last.project || "", " ",
        stateBadge(last.state)) : t("Never")),
      el("td", { class: "actions admin-only" },
        el("button", { type: "button", class: "small", onclick: () => scan([host]) },
          t("Scan key")),
        el("button", { type: "button", class: "small", onclick: () => edit(host) }, t("Edit")),
        el("button", { type: "button", class: "small danger", onclick: () => remove(host) },
          t("Delete")))));
  }
  if (!hosts.length) body.append(el("tr", null, el("td", { colspan: 7, class: "muted" },
    t("none"))));
  applyRole();
}

function parseVariables(text) {
  const variables = {};
  for (const line of String(text).split("\n")) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    const at = trimmed.indexOf("=");
    if (at < 1) throw new Error(`${trimmed}: NAME=value`);
    variables[trimmed.slice(0, at).trim()] = trimmed.slice(at + 1);
  }
  return variables;
}

function formBody(form) {
  const data = new FormData(form);
  const body = {
    name: data.get("name").trim(),
    address: data.get("address").trim(),
    port: Number(data.get("port") || 22),
    user: data.get("user").trim() || "deploy",
    key_path: data.get("key_path").trim() || null,
    groups: words(data.get("groups")),
    jump_host: data.get("jump_host").trim() || null,
    variables: parseVariables(data.get("variables")),
  };
  return body;
}

function edit(host) {
  editing = host.name;
  const form = $("#host-form");
  form.name.value = host.name;
  form.name.readOnly = true;
  form.address.value = host.address;
  form.port.value = host.port;
  form.user.value = host.user;
  form.key_path.value = host.key_path || "";
  form.groups.value = (host.groups || []).join(" ");
  form.jump_host.value = host.jump_host || "";
  form.variables.value = Object.entries(host.variables || {}).map(([k, v]) => `${k}=${v}`)
    .join("\n");
  $("#host-form-title").textContent = `${t("Edit")} ${host.name}`;
  $("#host-submit").textContent = t("Save");
  $("#host-cancel-edit").hidden = false;
  form.scrollIntoView({ block: "nearest" });
}

function stopEditing() {
  editing = null;
  const form = $("#host-form");
  form.reset();
  form.name.readOnly = false;
  $("#host-form-title").textContent = t("Add a host");
  $("#host-submit").textContent = t("Add host");
  $("#host-cancel-edit").hidden = true;
}

async function remove(host) {
  if (!(await confirmDialog(t("Delete host {name}?", { name: host.name })))) return;
  await guarded(async () => {
    await del(`/api/hosts/${encodeURIComponent(host.name)}`);
    await load();
    showNotice(t("Deleted."));
  });
}

/** "name address[:port] user groups…" → a host; throws with a readable message. */
function parseLine(line, keyPath) {
  const parts = words(line);
  if (parts.length < 2) throw new Error(t("expected: name address[:port] user groups…"));
  const [name, target, user, ...groups] = parts;
  let address = target;
  let port = 22;
  const bracket = target.match(/^\[([^\]]+)\](?::(\d+))?$/);
  if (bracket) {
    address = bracket[1];
    if (bracket[2]) port = Number(bracket[2]);
  } else if (/^[^:]+:\d+$/.test(target)) {
    [address, port] = [target.split(":")[0], Number(target.split(":")[1])];
  }
  const host = { name, address, port, user: user || "deploy", groups };
  if (keyPath) host.key_path = keyPath;
  return host;
}

async function importHosts(event) {
  event.preventDefault();
  const form = event.target;
  const box = $("#import-error");
  await guarded(async () => {
    if (form.format.value === "ansible") {
      await importInventory(form);
      return;
    }
    const keyPath = form.key_path.value.trim();
    const lines = form.lines.value.split("\n");
    const batch = [];
    lines.forEach((line, index) => {
      if (!line.trim() || line.trim().startsWith("#")) return;
      try {
        batch.push(parseLine(line, keyPath));
      } catch (error) {
        throw new Error(t("Line {n}: {error}", { n: index + 1, error: error.message }));
      }
    });
    if (!batch.length) return;
    let created;
    try {
      ({ hosts: created } = await post("/api/hosts", { hosts: batch }));
    } catch (error) {
      // The server checks the whole list first ("host 3 (web-3): …", "already exist: …").
      throw new Error(t("Nothing was imported: {error}", { error: error.message }));
    }
    form.lines.value = "";
    await load();
    showNotice(tn("Imported {n} host.", "Imported {n} hosts.", created.length));
  }, box);
}

/** An Ansible inventory: the server parses it (INI or YAML) and imports all or nothing;
 * its errors name the line or the host. */
async function importInventory(form) {
  let result;
  try {
    result = await post("/api/hosts", { inventory: form.lines.value, format: "auto" });
  } catch (error) {
    throw new Error(t("Nothing was imported: {error}", { error: error.message }));
  }
  form.lines.value = "";
  await load();
  showNotice(tn("Imported {n} host.", "Imported {n} hosts.", result.hosts.length));
}

async function saveHost(event) {
  event.preventDefault();
  await guarded(async () => {
    const body = formBody(event.target);
    if (editing) {
      const { name, ...changes } = body;
      await put(`/api/hosts/${encodeURIComponent(editing)}`, changes);
    } else {
      await post("/api/hosts", body);
    }
    stopEditing();
    await load();
    showNotice(t("Saved."));
  });
}

// -- key scans ----------------------------------------------------------------------

const scanned = new Map();  // host name → scan result waiting for confirmation

async function scan(targets) {
  const panel = $("#scan-results");
  panel.hidden = false;
  showError("");
  const queue = [...targets];
  const errors = [];
  const worker = async () => {
    while (queue.length) {
      const host = queue.shift();
      try {
        const result = await post(`/api/hosts/${encodeURIComponent(host.name)}/scan`);
        scanned.set(host.name, result);
      } catch (error) {
        errors.push(`${host.name}: ${error.message}`);
      }
      renderScans();
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  if (errors.length) showError(errors.join("\n"));
  renderScans();
}

function renderScans() {
  const body = $("#scan-rows");
  clear(body);
  for (const [name, result] of scanned) {
    body.append(el("tr", { dataset: { host: name } },
      el("td", null, el("b", null, name)),
      el("td", null, hostPort(result.address, result.port)),
      el("td", null, result.key_type),
      el("td", { class: "fingerprint" }, result.fingerprint),
      el("td", { class: "actions" }, el("button", { type: "button", class: "small primary",
        onclick: () => trust([name]) }, t("Trust key")))));
  }
  $("#trust-all").textContent = tn("Trust this key", "Trust these {n} keys", scanned.size);
  $("#trust-all").hidden = scanned.size === 0;
}

async function trust(names) {
  const errors = [];
  let trusted = 0;
  const queue = [...names];
  const worker = async () => {
    while (queue.length) {
      const name = queue.shift();
      const result = scanned.get(name);
      try {
        await post(`/api/hosts/${encodeURIComponent(name)}/trust`,
          { fingerprint: result.fingerprint });
        scanned.delete(name);
        trusted += 1;
      } catch (error) {
        errors.push(`${name}: ${error.message}`);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  renderScans();
  if (!scanned.size) $("#scan-results").hidden = true;
  await load();
  if (errors.length) showError(errors.join("\n"));
  if (trusted) showNotice(tn("Trusted {n} key.", "Trusted {n} keys.", trusted));
}

applyRole();
$("#group-filter").addEventListener("change", load);
$("#host-form").addEventListener("submit", saveHost);
$("#host-cancel-edit").addEventListener("click", stopEditing);
$("#import-form").addEventListener("submit", importHosts);
$("#scan-untrusted").addEventListener("click", () => guarded(async () => {
  const all = (await get("/api/hosts")).hosts;
  await scan(all.filter((host) => !host.host_key_fingerprint));
}));
$("#trust-all").addEventListener("click", () => trust([...scanned.keys()]));
$("#scan-close").addEventListener("click", () => {
  scanned.clear();
  renderScans();
  $("#scan-results").hidden = true;
});
load();

/** "address:port", with an IPv6 address in brackets as in SSH's own notation. */
function hostPort(address, port) {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
