// A project's notification channels: the list, add, send a test, delivery log, delete.
import { del, get, post } from "./api.js";
import { t } from "./i18n.js";
import { $, applyRole, clear, confirmDialog, el, fmtTime, guarded, showNotice } from "./util.js";

const root = $("#project-page");
const base = `/api/projects/${encodeURIComponent(root.dataset.project)}/notifications`;
const box = $("#notify-error");

function host(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

async function showLog(channel) {
  const panel = $("#channel-log");
  const { deliveries } = await get(`${base}/${channel.id}/deliveries?limit=20`);
  clear(panel);
  panel.hidden = false;
  panel.append(el("h3", { text: `${t("Deliveries")}: ${channel.name}` }));
  if (!deliveries.length) {
    panel.append(el("p", { class: "muted", text: t("No deliveries yet.") }));
    return;
  }
  const body = el("tbody");
  for (const item of deliveries) {
    body.append(el("tr", { class: item.status === "sent" ? "ok" : "bad" },
      el("td", { text: fmtTime(item.ts) }), el("td", { text: item.event }),
      el("td", { text: t(item.status) }),
      el("td", { text: t("attempts: {n}", { n: item.attempts }) }),
      el("td", { class: "truncate", title: item.error || "", text: item.error || item.code || "" })));
  }
  panel.append(el("table", { class: "list" }, body));
}

function row(channel) {
  const actions = el("td", { class: "buttons maintainer-only" },
    el("button", { type: "button", text: t("Send test"), onclick: () => guarded(async () => {
      await post(`${base}/${channel.id}/test`);
      showNotice(t("Test message queued."));
    }, box) }),
    el("button", { type: "button", text: t("Deliveries"),
      onclick: () => guarded(() => showLog(channel), box) }),
    el("button", { type: "button", class: "danger", text: t("Delete"),
      onclick: () => guarded(async () => {
        if (!(await confirmDialog(t("Delete the channel {name}?", { name: channel.name })))) return;
        await del(`${base}/${channel.id}`);
        await load();
      }, box) }));
  return el("tr", { dataset: { channel: channel.id } },
    el("td", { text: channel.name }), el("td", { text: channel.kind }),
    el("td", { class: "truncate", title: host(channel.url), text: host(channel.url) }),
    el("td", { class: "truncate", title: channel.events.join(", "),
      text: String(channel.events.length) }),
    el("td", { text: String(channel.rate_per_min) }), actions);
}

async function load() {
  const { channels } = await get(base);
  const body = $("#channels");
  clear(body);
  if (!channels.length) {
    body.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: t("No channels yet.") })));
  }
  for (const channel of channels) body.append(row(channel));
  applyRole();
}

$("#channel-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  guarded(async () => {
    const body = { kind: form.kind.value, url: form.url.value.trim() };
    if (form.name.value.trim()) body.name = form.name.value.trim();
    if (form.secret.value) body.secret = form.secret.value;
    await post(base, body);
    form.reset();
    await load();
  }, box);
});

guarded(load, box);
