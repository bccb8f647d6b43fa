// ANSI colour codes (SGR) in log lines, rendered safely: text goes in as text nodes,
// colours as classes (16 colours) or CSSOM properties (256 colours, true colour), and
// every other escape or control character is dropped.

// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b\[([0-9;:?]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f]/g;

function color256(n) {
  if (n < 16) return null;
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v}, ${v}, ${v})`;
  }
  const i = n - 16;
  const step = (x) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${step(Math.floor(i / 36))}, ${step(Math.floor(i / 6) % 6)}, ${step(i % 6)})`;
}

function applySgr(state, params) {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((x) => Number(x) || 0);
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i];
    if (code === 0) Object.assign(state, { fg: null, bg: null, bold: false, dim: false,
      italic: false, underline: false, fgRgb: null, bgRgb: null });
    else if (code === 1) state.bold = true;
    else if (code === 2) state.dim = true;
    else if (code === 3) state.italic = true;
    else if (code === 4) state.underline = true;
    else if (code === 22) { state.bold = false; state.dim = false; }
    else if (code === 23) state.italic = false;
    else if (code === 24) state.underline = false;
    else if (code >= 30 && code <= 37) { state.fg = code - 30; state.fgRgb = null; }
    else if (code >= 90 && code <= 97) { state.fg = code - 90 + 8; state.fgRgb = null; }
    else if (code === 39) { state.fg = null; state.fgRgb = null; }
    else if (code >= 40 && code <= 47) { state.bg = code - 40; state.bgRgb = null; }
    else if (code >= 100 && code <= 107) { state.bg = code - 100 + 8; state.bgRgb = null; }
    else if (code === 49) { state.bg = null; state.bgRgb = null; }
    else if (code === 38 || code === 48) {
      let rgb = null;
      if (codes[i + 1] === 5) {
        const n = codes[i + 2] ?? 0;
        rgb = n < 16 ? n : color256(n);
        i += 2;
      } else if (codes[i + 1] === 2) {
        const [r, g, b] = [codes[i + 2], codes[i + 3], codes[i + 4]].map(
          (x) => Math.max(0, Math.min(255, x || 0)));
        rgb = `rgb(${r}, ${g}, ${b})`;
        i += 4;
      }
      const fg = code === 38;
      if (typeof rgb === "number") {
        if (fg) { state.fg = rgb; state.fgRgb = null; } else { state.bg = rgb; state.bgRgb = null; }
      } else if (rgb) {
        if (fg) state.fgRgb = rgb; else state.bgRgb = rgb;
      }
    }
  }
}

function styled(state) {
  return state.fg !== null || state.bg !== null || state.bold || state.dim || state.italic
    || state.underline || state.fgRgb || state.bgRgb;
}

function segment(text, state) {
  const clean = text.replace(CONTROLS, "");
  if (!clean) return null;
  if (!styled(state)) return document.createTextNode(clean);
  const span = document.createElement("span");
  const classes = [];
  if (state.fg !== null && !state.fgRgb) classes.push(`ansi-fg-${state.fg}`);
  if (state.bg !== null && !state.bgRgb) classes.push(`ansi-bg-${state.bg}`);
  if (state.bold) classes.push("ansi-bold");
  if (state.dim) classes.push("ansi-dim");
  if (state.italic) classes.push("ansi-italic");
  if (state.underline) classes.push("ansi-underline");
  span.className = classes.join(" ");
  if (state.fgRgb) span.style.color = state.fgRgb;
  if (state.bgRgb) span.style.backgroundColor = state.bgRgb;
  span.textContent = clean;
  return span;
}

/** Append `line`, with its ANSI colours, to `parent` as text nodes and spans. */
export function renderAnsi(line, parent) {
  const text = String(line);
  if (!text.includes("\x1b")) {
    const clean = text.replace(CONTROLS, "");
    if (clean) parent.append(clean);
    return;
  }
  const state = { fg: null, bg: null, bold: false, dim: false, italic: false,
    underline: false, fgRgb: null, bgRgb: null };
  let last = 0;
  ESCAPES.lastIndex = 0;
  for (let match = ESCAPES.exec(text); match; match = ESCAPES.exec(text)) {
    const node = segment(text.slice(last, match.index), state);
    if (node) parent.append(node);
    if (match[2] === "m") applySgr(state, match[1]);
    last = ESCAPES.lastIndex;
  }
  const node = segment(text.slice(last), state);
  if (node) parent.append(node);
}

/** The line without any escape or control characters (for search). */
export function stripAnsi(line) {
  return String(line).replace(ESCAPES, "").replace(CONTROLS, "");
}
