// Drives static/js/events.js from Node against a live Ferry (tests/handlers/test_events_js.py).
// Node has no cookies, so the harness adds the bearer token to fetch and WebSocket.
// argv: base token topic last_seq mode ("ws" or "blocked": WebSocket throws, as under a policy)
import { EventClient } from "../../static/js/events.js";

const [base, token, topic, lastSeq, mode] = process.argv.slice(2);
const auth = { Authorization: `Bearer ${token}` };
globalThis.window = { location: { origin: base } };
const nativeFetch = globalThis.fetch;
globalThis.fetch = (url, init = {}) =>
  nativeFetch(url, { ...init, headers: { ...(init.headers || {}), ...auth } });
const NativeWebSocket = globalThis.WebSocket;
globalThis.WebSocket = mode === "blocked"
  ? class { constructor() { throw new Error("blocked by policy"); } }
  : class extends NativeWebSocket { constructor(url) { super(url, { headers: auth }); } };

const statuses = [];
const seqs = [];
const client = new EventClient({ onStatus: (status) => statuses.push(status) });
client.subscribe(topic, 0, (events) => {
  seqs.push(...events.map((event) => event.seq));
  console.log(JSON.stringify({ progress: seqs.length }));
  if (seqs[seqs.length - 1] >= Number(lastSeq)) {
    client.close();
    console.log(JSON.stringify({ seqs, statuses }));
    process.exit(0);
  }
});
setTimeout(() => {
  console.log(JSON.stringify({ seqs, statuses, timeout: true }));
  process.exit(1);
}, 60000);
