// A project's recent releases: a chart of their durations and outcomes (uPlot, served
// from node_modules), and which of them can be rolled back to: a successful deploy still
// kept on the hosts (prune keeps the newest `keep_releases` release directories).
import { get, post } from "./api.js";
import { t } from "./i18n.js";
import { confirmDialog, el, showError } from "./util.js";

const DEPLOYS = new Set(["deploy", "retry"]);
const ACTIVE = new Set(["pending", "running", "paused"]);
const CHART_RELEASES = 30;

/** The release whose hosts a rollback switches back: the newest finished one that
 * switched hosts; and the release its hosts run now. */
export function rollbackSource(releases) {
  const source = releases.find((release) => !ACTIVE.has(release.state)
    && ((release.counts || {}).ok > 0 || release.state === "succeeded"));
  if (!source) return { source: null, live: null };
  const live = source.kind === "rollback" ? source.target_release : source.id;
  return { source, live };
}

/** Successful deploys among the newest `keep` deploys: still on the hosts. */
export function keptTargets(releases, keep) {
  const deploys = releases.filter((release) => DEPLOYS.has(release.kind)).slice(0, keep);
  return new Set(deploys.filter((release) => release.state === "succeeded")
    .map((release) => release.id));
}

/** The "Roll back to this" button of a release row, or null. */
export function rollbackButton(release, { source, live, kept }) {
  if (!source || !kept.has(release.id) || release.id === live) return null;
  return el("button", {
    type: "button", class: "small danger", dataset: { rollbackTo: release.id },
    onclick: () => rollBackTo(source, release),
  }, t("Roll back to this"));
}

async function rollBackTo(source, target) {
  try {
    const plan = await get(`/api/releases/${source.id}/rollback?to=${target.id}`);
    const question = t("Switch {n} hosts back to release {id} ({ref})?",
      { n: plan.hosts.length, id: `#${target.id}`, ref: target.ref });
    if (!(await confirmDialog(question))) return;
    const started = await post(`/api/releases/${source.id}/rollback`, { to: target.id });
    location.assign(`/releases/${started.id}`);
  } catch (error) {
    showError(error.message);
  }
}

/** Durations (s) of the recent releases, oldest left: succeeded and other outcomes. */
export async function drawChart(node, releases) {
  const recent = releases.filter((release) => !ACTIVE.has(release.state))
    .slice(0, CHART_RELEASES).reverse();
  if (!recent.length) {
    node.textContent = t("No releases yet.");
    return null;
  }
  const { default: uPlot } = await import("/vendor/uplot/uPlot.esm.js");
  const seconds = (release) => (release.duration_ms ?? 0) / 1000;
  const data = [
    recent.map((release) => release.id),
    recent.map((release) => (release.state === "succeeded" ? seconds(release) : null)),
    recent.map((release) => (release.state === "succeeded" ? null : seconds(release))),
  ];
  const points = (stroke) => ({ stroke, width: 0, paths: () => null,
    points: { show: true, size: 9, stroke, fill: stroke } });
  const options = {
    width: Math.max(320, node.clientWidth || 600),
    height: 200,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: false, range: (_, min, max) => [min - 0.5, max + 0.5] },
      y: { range: (_, min, max) => [0, Math.max(1, (max || 0) * 1.15)] },
    },
    axes: [
      { label: t("release"), incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10000],
        values: (_, ticks) => ticks.map((tick) => `#${tick}`) },
      { label: t("seconds") },
    ],
    series: [{}, { label: t("succeeded"), ...points("#16a34a") },
      { label: t("other outcomes"), ...points("#dc2626") }],
  };
  node.textContent = "";
  const chart = new uPlot(options, data, node);
  const resize = () => chart.setSize({ width: Math.max(320, node.clientWidth), height: 200 });
  window.addEventListener("resize", resize);
  return chart;
}
