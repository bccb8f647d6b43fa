// The new-release form's arithmetic, apart from the page: sizes, batches, and what is live
// now from a project's releases. No DOM here.

export function sizeValue(text) {
  const value = String(text).trim();
  if (/^\d+%$/.test(value)) return value;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}

export function okCount(release) {
  return (release.counts && release.counts.ok) || 0;
}

function hostTotal(release) {
  if (release.total) return release.total;
  return Object.values(release.counts || {}).reduce((a, b) => a + (b || 0), 0);
}

/** What is live now, from the project's releases (newest first): the newest release of
 * this environment that switched at least one host and was not switched back (a release
 * that failed on some hosts or a cancelled canary still switched the others; a rollback
 * carries its target's sha). A retry adds the hosts its source already switched. */
export function deployedNow(releases, environment) {
  const list = releases.filter((r) => !environment || r.environment === environment);
  const at = list.findIndex((r) => r.sha && r.state !== "rolled_back" && okCount(r) > 0);
  if (at < 0) return null;
  const release = list[at];
  let ok = okCount(release);
  let root = release;
  for (const older of list.slice(at + 1)) {
    const source = older.id === root.retry_of && older.sha === release.sha;
    if (source && older.state !== "rolled_back") {
      ok += okCount(older);
      root = older;
    } else if (okCount(older) > 0 || !root.retry_of) {
      break;
    }
  }
  return { release, sha: release.sha, ok, total: Math.max(ok, hostTotal(root)) };
}

export function batchCount(total, batches) {
  let placed = 0;
  let count = 0;
  while (placed < total && count < 10000) {
    const size = batches[Math.min(count, batches.length - 1)];
    const n = typeof size === "number" ? size
      : Math.max(1, Math.ceil((total * parseInt(size, 10)) / 100));
    if (!(n > 0)) return 0;
    placed += n;
    count += 1;
  }
  return count;
}

/** A count of hosts (at least `min`) or a percentage from 1% to 100%. */
export function validSize(text, min) {
  const value = String(text).trim();
  const percent = value.match(/^(\d{1,3})%$/);
  if (percent) return Number(percent[1]) >= 1 && Number(percent[1]) <= 100;
  return /^\d+$/.test(value) && Number(value) >= min;
}
