// Ferry's log renderer (static/js/ansi.js) against ansi_up (node_modules), on the escape
// sequences build and deploy output contains, under Ferry's CSP (style-src 'self': an
// inline style="" attribute is refused, CSSOM properties set from a script are not).
// Run: node bench/ansi_compare.mjs
import { AnsiUp } from "../node_modules/ansi_up/ansi_up.js";

class StubNode {
  constructor(tag) { this.tag = tag; this.children = []; this.style = {}; this.className = ""; }
  append(...nodes) { this.children.push(...nodes); }
}
globalThis.document = { createElement: (tag) => new StubNode(tag),
  createTextNode: (text) => text };
const { renderAnsi } = await import("../static/js/ansi.js");

const E = "\x1b";
const CASES = [
  ["16 colours", `${E}[31mred${E}[0m ok`, "colour"],
  ["bold", `${E}[1mbold${E}[22m plain`, "bold"],
  ["256 palette", `${E}[38;5;208morange${E}[0m`, "colour"],
  ["true colour", `${E}[38;2;255;100;0mtc${E}[0m`, "colour"],
  ["colon SGR", `${E}[38:5:196mred${E}[0m`, "clean"],
  ["erase line + CR", `${E}[2K\rprogress 50%`, "clean"],
  ["control bytes", "a\x00b\x07c\x08d", "clean"],
  ["OSC 8 link", `${E}]8;;https://example.com${E}\\link${E}]8;;${E}\\`, "link"],
];

function oursOk(line, want) {
  const root = new StubNode("div");
  renderAnsi(line, root);
  const spans = root.children.filter((c) => typeof c !== "string");
  const text = root.children.map((c) => (typeof c === "string" ? c : c.textContent)).join("");
  if (want === "colour") return spans.some((s) => s.className.includes("ansi-fg")
    || s.style.color);
  if (want === "bold") return spans.some((s) => s.className.includes("ansi-bold"));
  if (want === "clean") return !/[\x00-\x08\x0d\x1b]|\[38/.test(text);
  return false;   // links are shown as their text only
}

function ansiUpOk(html, want) {
  // Under the CSP, style="" is dropped: only classes count.
  if (want === "colour") return /class="[^"]*-fg/.test(html);
  if (want === "bold") return false;   // always an inline style, even with use_classes
  if (want === "clean") return !/[\x00-\x08\x0d\x1b]|\[38/.test(html);
  return /<a href=/.test(html);
}

const up = new AnsiUp();
up.use_classes = true;
let scores = [0, 0];
console.log("case             ours  ansi_up(use_classes, under CSP)");
for (const [name, line, want] of CASES) {
  const a = oursOk(line, want);
  const b = ansiUpOk(up.ansi_to_html(line), want);
  scores = [scores[0] + a, scores[1] + b];
  console.log(`${name.padEnd(16)} ${a ? "yes " : "no  "}  ${b ? "yes" : "no"}`);
}
console.log(`total            ${scores[0]}/${CASES.length}   ${scores[1]}/${CASES.length}`);

const lines = Array.from({ length: 50000 }, (_, i) => (i % 3
  ? `${E}[32m✓${E}[0m test_${i} passed ${E}[2m(${i}ms)${E}[0m` : `plain line ${i}`));
let started = performance.now();
for (const line of lines) up.ansi_to_html(line);
const upMs = performance.now() - started;
started = performance.now();
for (const line of lines) renderAnsi(line, new StubNode("div"));
const oursMs = performance.now() - started;
console.log(`50,000 lines: ansi_up ${upMs.toFixed(0)} ms (HTML text, to be parsed by ` +
  `innerHTML), ours ${oursMs.toFixed(0)} ms (nodes)`);
