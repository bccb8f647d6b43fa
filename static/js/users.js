// Users (admins only): the list with each user's global role, status and last sign-in;
// change a role or disable a user in place; create a user; reset a password.
import { get, post, put } from "./api.js";
import { t } from "./i18n.js";
import { $, applyRole, clear, confirmDialog, el, fmtTime, guarded, showNotice } from "./util.js";

const ROLES = ["member", "viewer", "deployer", "admin"];

function roleSelect(current, onChange) {
  const select = el("select", { class: "role-select", "aria-label": t("Role"), onchange: onChange });
  for (const role of ROLES) {
    select.append(el("option", { value: role, selected: role === current }, t(role)));
  }
  return select;
}

function userRow(user) {
  const path = `/api/users/${encodeURIComponent(user.name)}`;
  const role = roleSelect(user.role, () => guarded(async () => {
    await put(path, { role: role.value });
    showNotice(t("Saved."));
    await load();
  }));
  const toggle = el("button", {
    type: "button", class: user.disabled ? "small" : "small danger",
    onclick: () => guarded(async () => {
      if (!user.disabled && !await confirmDialog(t("Disable {name}? Their sessions end and their tokens stop working.", { name: user.name }))) return;
      await put(path, { disabled: !user.disabled });
      await load();
    }),
  }, user.disabled ? t("Enable") : t("Disable"));
  return el("tr", { dataset: { user: user.name }, class: user.disabled ? "disabled-user" : null },
    el("td", { class: "nowrap" }, user.name),
    el("td", null, role),
    el("td", null, el("span", { class: "user-status", dataset: { disabled: String(user.disabled) } },
      user.disabled ? t("disabled") : t("enabled"))),
    el("td", { class: "nowrap" }, user.last_signin_at ? fmtTime(user.last_signin_at) : t("Never")),
    el("td", { class: "nowrap" }, fmtTime(user.created_at)),
    el("td", { class: "actions" }, toggle));
}

async function load() {
  await guarded(async () => {
    const { users } = await get("/api/users");
    const body = clear($("#users"));
    for (const user of users) body.append(userRow(user));
    const chooser = $("#password-user");
    const chosen = chooser.value;
    clear(chooser);
    for (const user of users) {
      chooser.append(el("option", { value: user.name, selected: user.name === chosen }, user.name));
    }
    applyRole();
  });
}

const newRole = $("#user-form").role;
for (const role of ROLES) newRole.append(el("option", { value: role, selected: role === "member" }, t(role)));

$("#user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  guarded(async () => {
    const name = form.name.value.trim();
    await post("/api/users", { name, password: form.password.value, role: form.role.value });
    form.reset();
    showNotice(t("User {name} created.", { name }));
    await load();
  });
});

$("#password-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  guarded(async () => {
    await put(`/api/users/${encodeURIComponent(form.name.value)}`, { password: form.password.value });
    form.password.value = "";
    showNotice(t("Password changed."));
  });
});

applyRole();
load();
