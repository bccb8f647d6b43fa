// Translated strings for page scripts. The page puts them, already translated by
// tornado.locale, in <body data-i18n="{...}">; keys are the English text.
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
