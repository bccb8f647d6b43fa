// Beside the release console: the commits the release ships, the log's time column
// (a toggle remembered in localStorage) and the log downloads (one host as text, the
// whole release as a zip).
import { get } from "../api.js";
import { t, tn } from "../i18n.js";
import { $, commitRows, shortSha } from "../util.js";
import { LOCAL } from "./model.js";

const TIMES_KEY = "ferry.log.times";
const COMMITS_RETRY_MS = 3000;
const COMMITS_RETRIES = 40;

/** The time column toggle and the download links, following the host the console shows. */
export function setupLogTools(log, releaseId) {
  const toggle = $("#log-times");
  const show = (on) => log.root.classList.toggle("show-times", on);
  let stored = null;
  try {
    stored = localStorage.getItem(TIMES_KEY);
  } catch { /* storage refused: not remembered */ }
  toggle.checked = stored === "1";
  show(toggle.checked);
  toggle.addEventListener("change", () => {
    show(toggle.checked);
    try {
      localStorage.setItem(TIMES_KEY, toggle.checked ? "1" : "0");
    } catch { /* storage refused: not remembered */ }
  });
  const link = $("#log-download");
  log.onOpen = (host) => {
    link.hidden = false;
    link.href = `/api/releases/${releaseId}/hosts/${encodeURIComponent(host)}/log?format=text`;
    link.title = host === LOCAL ? t("Build log") : t("Log of {host}", { host });
  };
}

/** The commits of the previous successful release..this one; again once the SHA is known. */
export async function loadCommits(releaseId, attempt = 0) {
  let result;
  try {
    result = await get(`/api/releases/${releaseId}/commits`);
  } catch (error) {
    $("#commits-note").textContent = error.message;
    $("#commits-note").hidden = false;
    return;
  }
  const body = $("#release-commits");
  commitRows(body, result.commits || []);
  const range = $("#commits-range");
  range.textContent = result.target
    ? `${result.base ? shortSha(result.base) : t("first release")} → ${shortSha(result.target)}`
    : "";
  if (result.undo) range.textContent += ` · ${t("rolled back")}`;
  const more = (result.total || 0) - (result.commits || []).length;
  const note = $("#commits-note");
  note.hidden = !(more > 0 || result.note);
  note.textContent = more > 0 ? tn("and {n} more commit", "and {n} more commits", more)
    : (result.note || "");
  if (!result.target && attempt < COMMITS_RETRIES) {
    setTimeout(() => loadCommits(releaseId, attempt + 1), COMMITS_RETRY_MS);
  }
}
