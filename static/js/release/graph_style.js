// How the flowchart looks: node sizes, state colours, the stylesheet, and the words a
// local stage shows (its duration, or why it was skipped).
import { t } from "../i18n.js";
import { fmtDuration, stateLabel } from "../util.js";
import { GEOMETRY } from "./layout.js";

export const SIZES = {
  stage: { w: 150, h: 50 },
  host: { w: 124, h: 26 },
  small: { w: 104, h: 22 },
  group: { w: 230, h: 62 },
};
export const COLORS = {
  // state: [fill, text, border]
  pending: ["#e4e7eb", "#1f2933", "#9aa5b1"],
  running: ["#2b7bd6", "#ffffff", "#174f8f"],
  ok: ["#1f9d55", "#ffffff", "#146c3a"],
  failed: ["#d64545", "#ffffff", "#962d2d"],
  skipped: ["#e9c46a", "#3d2e00", "#b8923a"],
  cancelled: ["#7b8794", "#ffffff", "#52606d"],
  rolled_back: ["#8b5cf6", "#ffffff", "#5b30c9"],
  interrupted: ["#f0883e", "#ffffff", "#b85d1a"],
  paused: ["#f5d76e", "#3d2e00", "#b8923a"],
};
export function stylesheet() {
  const styles = [
    { selector: "node", style: {
      shape: "round-rectangle", "font-family": "system-ui, sans-serif", "font-size": 11,
      label: "data(label)", "text-valign": "center", "text-halign": "center",
      "border-width": 1, width: SIZES.host.w, height: SIZES.host.h, "text-wrap": "ellipsis",
      "text-max-width": SIZES.host.w - 8, "background-color": COLORS.pending[0],
      color: COLORS.pending[1], "border-color": COLORS.pending[2],
    } },
    { selector: "node.small", style: { width: SIZES.small.w, height: SIZES.small.h,
      "text-max-width": SIZES.small.w - 8, "font-size": 10 } },
    { selector: "node.stage", style: { width: SIZES.stage.w, height: SIZES.stage.h,
      "text-wrap": "wrap", "text-max-width": SIZES.stage.w - 10, "font-size": 11,
      "font-weight": 600 } },
    { selector: "node.batch", style: { shape: "round-rectangle", padding: GEOMETRY.PAD,
      label: "", "background-color": "#f7f9fb", "border-color": "#c5ccd3",
      "border-width": 1 } },
    { selector: "node.caption", style: { width: "data(w)", height: GEOMETRY.CAPTION_H,
      "text-max-width": "data(w)", "background-opacity": 0, "border-width": 0,
      "font-weight": 600, color: "#3e4c59", "text-halign": "center" } },
    { selector: "node.group", style: { width: SIZES.group.w, height: SIZES.group.h,
      "text-wrap": "wrap", "text-max-width": SIZES.group.w - 10, "font-size": 11,
      "font-weight": 600, color: "#1f2933",
      "text-background-color": "#ffffff", "text-background-opacity": 0.88,
      "text-background-padding": 2, "text-background-shape": "round-rectangle",
      "background-fill": "linear-gradient", "background-gradient-direction": "to-right" } },
    // Right-angled lines that turn in the gap between two blocks, never across a host.
    { selector: "edge", style: { width: 1.4, "line-color": "#9aa5b1",
      "target-arrow-color": "#9aa5b1", "target-arrow-shape": "triangle",
      "arrow-scale": 0.8, "curve-style": "taxi", "taxi-direction": "rightward",
      "taxi-turn": "50%", "taxi-turn-min-distance": 4 } },
    { selector: "edge.wrap", style: { "taxi-direction": "downward",
      "taxi-turn": GEOMETRY.ROW_GAP / 2 } },
    { selector: "node:selected", style: { "border-width": 3, "border-color": "#111827",
      "underlay-color": "#111827", "underlay-opacity": 0.15, "underlay-padding": 4 } },
  ];
  for (const [state, [fill, text, border]] of Object.entries(COLORS)) {
    styles.push({ selector: `node[state = "${state}"]`, style: {
      "background-color": fill, color: text, "border-color": border } });
  }
  // Groups keep dark text on a white label background whatever their fill.
  styles.push({ selector: "node.group", style: { color: "#1f2933" } });
  return styles;
}

/** Why a local stage was skipped, in the page's language. */
export function skipReason(entry) {
  if (entry.cached_from) {
    return t("skipped — artifact cached from release #{n}", { n: entry.cached_from });
  }
  if (entry.reason === "no hook") return t("skipped — no hook");
  if (entry.reason === "rollback: nothing to build") return t("skipped — a rollback builds nothing");
  return stateLabel("skipped");
}

export function localLabel(stage, entry) {
  if (entry.state === "skipped") return `${t(stage)}\n${skipReason(entry)}`;
  return entry.duration_ms ? `${t(stage)}\n${fmtDuration(entry.duration_ms)}` : t(stage);
}
