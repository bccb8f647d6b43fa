// Dashboard: the releases waiting for the signed-in user's approval, and the scheduled
// ones, each with a link to its page. Re-read every REFRESH_MS (a GET, no side effects).
import { get } from "./api.js";
import { t } from "./i18n.js";
import { $, clear, el, fmtTime, releaseLink, showError } from "./util.js";

const REFRESH_MS = 10000;

function item(release, note) {
  return el("li", { dataset: { release: release.id } },
    releaseLink(release.id, `#${release.id} ${release.project}`), " ",
    el("b", null, release.ref || ""), " ",
    el("span", { class: "muted" }, note));
}

function draw(list, releases, note) {
  clear(list);
  if (!releases.length) list.append(el("li", { class: "muted" }, t("none")));
  for (const release of releases) list.append(item(release, note(release)));
}

async function refresh() {
  try {
    const waiting = await get("/api/releases/waiting");
    draw($("#awaiting-me"), waiting.awaiting_my_approval, (release) =>
      t("by {user}", { user: release.created_by }));
    draw($("#scheduled-releases"), waiting.scheduled, (release) =>
      t("Scheduled for {time}", { time: fmtTime(release.not_before || release.due_at) }));
    $("#waiting-panel").hidden = !waiting.awaiting_my_approval.length
      && !waiting.scheduled.length;
  } catch (error) {
    showError(error.message);
  }
}

if ($("#waiting-panel")) {
  refresh();
  setInterval(refresh, REFRESH_MS);
}
