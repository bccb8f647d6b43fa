// The big-screen vote page: snapshot (GET /api/releases/<id>/vote/screen), then the
// release's topic (and its room's, when chat text may be shown) after the snapshot's
// seqs, through the shared event client on the screen's own endpoints (which a wall
// link may use). Drawn at most once per animation frame. The model is `window.__vote`
// for tests.
import { EventClient } from "../events.js";
import { screenStatus } from "../screen_status.js";
import { $ } from "../util.js";
import { VoteModel } from "./model.js";
import { drawCanary, drawChat, drawCountdown, drawHeader, drawTally, drawVoters } from "./view.js";

const RETRY_MS = 3000;

const body = document.body;
const releaseId = Number(body.dataset.release);
const showChat = body.dataset.chat === "true";
const base = `/releases/${releaseId}/vote`;
const model = new VoteModel();
const screen = { model, status: "connecting", revoked: false, frames: 0, showChat };
window.__vote = screen;
let frame = 0;
let client = null;
const { setStale, revokedOrSignedOut, onStatus } = screenStatus({
  prefix: "vote", probe: `/api${base}/screen`, screen, client: () => client });

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  if (!model.release) return;
  drawHeader(model);
  drawTally(model);
  drawCountdown(model);
  drawCanary(model);
  drawVoters(model);
  drawChat(model, showChat);
  screen.frames++;
  body.dataset.rendered = "true";
  body.dataset.state = model.vote ? model.vote.state : "none";
  body.dataset.release_state = model.release.state;
}

function tick() {
  const clock = $("#vote-clock");
  const now = new Date(model.now());
  clock.textContent = now.toLocaleTimeString(document.documentElement.lang || undefined,
    { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  clock.dateTime = now.toISOString();
  if (model.release) drawCountdown(model);
}

async function start() {
  let response;
  try {
    response = await fetch(`/api${base}/screen`, { credentials: "same-origin",
      headers: { Accept: "application/json" } });
  } catch {
    setStale(true);
    setTimeout(start, RETRY_MS);
    return;
  }
  if (response.status === 401 || response.status === 410) return revokedOrSignedOut();
  if (!response.ok) {
    setStale(true);
    setTimeout(start, RETRY_MS);
    return;
  }
  model.load(await response.json());
  render();
  client = new EventClient({ onStatus, paths: { socket: `${base}/ws`, poll: `/api${base}/events` } });
  screen.client = client;
  client.subscribe(`release:${releaseId}`, model.seq, (events) => {
    model.applyRelease(events);
    schedule();
  });
  if (showChat) {
    client.subscribe(`chat:release-${releaseId}`, model.chatSeq, (events) => {
      model.applyChat(events);
      schedule();
    });
  }
}

tick();
setInterval(tick, 1000);
start();
