// My API tokens: create one (its secret is shown once, here), list them with their last
// use, revoke one.
import { del, get, post } from "./api.js";
import { t } from "./i18n.js";
import { $, applyRole, clear, confirmDialog, el, fmtTime, guarded, showNotice } from "./util.js";

function expiry(token) {
  if (!token.expires_at) return t("never");
  const text = fmtTime(token.expires_at);
  return Date.parse(token.expires_at) <= Date.now() ? t("expired {time}", { time: text }) : text;
}

function tokenRow(token) {
  const revoke = el("button", {
    type: "button", class: "small danger",
    onclick: () => guarded(async () => {
      if (!await confirmDialog(t("Revoke the token {name}? Scripts using it stop working at once.", { name: token.name }))) return;
      await del(`/api/tokens/${encodeURIComponent(token.id)}`);
      showNotice(t("Token revoked."));
      await load();
    }),
  }, t("Revoke"));
  return el("tr", { dataset: { token: token.id } },
    el("td", null, token.name || `#${token.id}`),
    el("td", { class: "nowrap" }, fmtTime(token.created_at)),
    el("td", { class: "nowrap" }, expiry(token)),
    el("td", { class: "nowrap" }, token.last_used_at ? fmtTime(token.last_used_at) : t("Never")),
    el("td", { class: "actions" }, revoke));
}

async function load() {
  await guarded(async () => {
    const { tokens } = await get("/api/tokens");
    const body = clear($("#tokens"));
    for (const token of tokens) body.append(tokenRow(token));
    if (!tokens.length) body.append(el("tr", null, el("td", { colspan: 5, class: "muted" }, t("none"))));
  });
}

$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  guarded(async () => {
    const body = { name: form.name.value.trim() };
    if (form.days.value) body.expires_in_days = Number(form.days.value);
    const token = await post("/api/tokens", body);
    form.reset();
    $("#token-secret").value = token.token;
    $("#new-token").hidden = false;
    $("#token-secret").select();
    await load();
  });
});

$("#copy-token").addEventListener("click", async () => {
  const secret = $("#token-secret");
  secret.select();
  try {
    await navigator.clipboard.writeText(secret.value);
    showNotice(t("Copied."));
  } catch {
    showNotice(t("Select the token and copy it."));
  }
});

applyRole();
load();
