// The connection state of a big-screen page (the wall, the vote screen): its badge
// (live, long-polling, connecting, reconnecting), the page greyed out with an overlay
// while it is stale, and for good once its link is revoked or its session ended.
import { STATUS } from "./events.js";
import { t } from "./i18n.js";
import { $ } from "./util.js";

const STALE_GRACE_MS = 2000; // "connecting" this long (after load) greys the screen out

// `prefix`: the page's element ids (`#<prefix>-status`, `-overlay`, `-overlay-text`);
// `probe`: a URL whose answer says why the screen was refused (410: link revoked);
// `screen`: the page's test-visible state (`status`, `revoked`); `client()`: its
// event client, if any.
export function screenStatus({ prefix, probe, screen, client }) {
  const body = document.body;
  let staleTimer = null;

  function showOverlay(text) {
    $(`#${prefix}-overlay`).hidden = !text;
    $(`#${prefix}-overlay-text`).textContent = text || "";
  }

  function setStale(stale) {
    body.classList.toggle("stale", stale);
    if (!screen.revoked) showOverlay(stale ? t("reconnecting…") : "");
  }

  async function revokedOrSignedOut() {
    let status = 0;
    try {
      status = (await fetch(probe, { credentials: "same-origin" })).status;
    } catch {
      return setStale(true);
    }
    screen.revoked = true;
    body.classList.add("stale", "revoked");
    const text = status === 410 ? t("this link was revoked") : t("signed out: sign in again");
    const badge = $(`#${prefix}-status`);
    badge.dataset.status = "revoked";
    badge.textContent = text;
    showOverlay(text);
    const current = client();
    if (current) current.close();
  }

  function onStatus(status) {
    screen.status = status;
    if (screen.revoked) return;
    const badge = $(`#${prefix}-status`);
    badge.dataset.status = status;
    badge.textContent = {
      [STATUS.LIVE]: t("live"), [STATUS.POLLING]: t("live (long-polling)"),
      [STATUS.CONNECTING]: t("connecting…"), [STATUS.OFFLINE]: t("reconnecting…"),
    }[status] || status;
    clearTimeout(staleTimer);
    if (status === STATUS.LIVE || status === STATUS.POLLING) setStale(false);
    else if (status === STATUS.OFFLINE) setStale(true);
    else if (status === STATUS.CONNECTING) staleTimer = setTimeout(() => setStale(true), STALE_GRACE_MS);
    else if (status === STATUS.UNAUTHENTICATED) revokedOrSignedOut();
  }

  return { setStale, revokedOrSignedOut, onStatus };
}
