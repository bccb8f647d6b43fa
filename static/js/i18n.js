// Translated strings for page scripts. The page puts them, already translated by
// tornado.locale, in <body data-i18n="{...}">; keys are the English text. A worker has
// no page: it is handed the page's strings (`allStrings` there, `useStrings` here).
let strings = null;

function load() {
  if (strings === null) {
    try {
      strings = JSON.parse(document.body.dataset.i18n || "{}");
    } catch {
      strings = {};
    }
  }
  return strings;
}

/** Every translated string of the page (for a worker's `useStrings`). */
export function allStrings() {
  return load();
}

/** Translate with `dict` (in a worker, which has no page to read them from). */
export function useStrings(dict) {
  strings = dict && typeof dict === "object" ? dict : {};
}

/** The translation of `key`, with {name} placeholders filled from `params`. */
export function t(key, params) {
  const text = load()[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (match, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : match);
}

/** `singular` or `plural` by `n` (English rules; the translations need no more). */
export function tn(singular, plural, n, params) {
  return t(n === 1 ? singular : plural, { n, ...params });
}

/** The language of the page, e.g. "zh-CN". */
export function lang() {
  return document.documentElement.lang || "en";
}
