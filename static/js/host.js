// One host: what `current` points to per project (and since when), its last failures,
// and its releases across projects, newest first, a page at a time.
import { get } from "./api.js";
import { t } from "./i18n.js";
import { $, clear, el, fmtTime, guarded, releaseLink, shortSha, stateBadge } from "./util.js";

const root = $("#host-page");
const name = root.dataset.host;
const base = `/api/hosts/${encodeURIComponent(name)}/releases`;
let next = null;

function projectLink(project) {
  return el("a", { href: `/projects/${encodeURIComponent(project)}` }, project);
}

function empty(body, columns) {
  if (!body.firstChild) body.append(el("tr", null, el("td", { colspan: columns, class: "muted" },
    t("none"))));
}

function renderCurrent(current) {
  const body = clear($("#host-current"));
  for (const entry of current) {
    body.append(el("tr", null,
      el("td", null, projectLink(entry.project)),
      el("td", null, entry.environment),
      el("td", null, `releases/${entry.release_id} `,
        entry.by_release !== entry.release_id
          ? el("span", { class: "muted" }, t("by rollback {id}", { id: `#${entry.by_release}` }))
          : null),
      el("td", null, entry.ref || ""),
      el("td", { class: "mono", title: entry.sha || "" }, shortSha(entry.sha)),
      el("td", null, fmtTime(entry.since))));
  }
  empty(body, 6);
}

function renderFailures(failures) {
  const body = clear($("#host-failures"));
  for (const row of failures) {
    body.append(el("tr", null,
      el("td", null, releaseLink(row.release_id)),
      el("td", null, projectLink(row.project)),
      el("td", { class: "reason", title: row.reason || "" }, row.reason || ""),
      el("td", null, fmtTime(row.finished_at || row.started_at))));
  }
  empty(body, 4);
}

function appendReleases(rows) {
  const body = $("#host-releases");
  for (const row of rows) {
    body.append(el("tr", { dataset: { release: row.release_id } },
      el("td", null, releaseLink(row.release_id)),
      el("td", null, projectLink(row.project)),
      el("td", null, t(row.kind || "deploy")),
      el("td", null, row.ref || ""),
      el("td", { class: "mono", title: row.sha || "" }, shortSha(row.sha)),
      el("td", null, stateBadge(row.state)),
      el("td", null, stateBadge(row.release_state)),
      el("td", { class: "reason", title: row.reason || "" }, row.reason || ""),
      el("td", null, fmtTime(row.finished_at || row.started_at))));
  }
  empty(body, 9);
}

async function load(more) {
  await guarded(async () => {
    const page = await get(more ? `${base}?before=${next}` : base);
    if (!more) {
      renderCurrent(page.current || []);
      renderFailures(page.failures || []);
      clear($("#host-releases"));
    }
    appendReleases(page.releases || []);
    next = page.next;
    $("#host-more").hidden = next === null || next === undefined;
  });
}

$("#host-more").addEventListener("click", () => load(true));
load(false);
