// TEST-ONLY fault injection: the fault suite (test/e2e/faults-*.test.ts) freezes the
// agent at a named point of the data path, then kills it with SIGKILL or lets it go on.
// Inert unless $SNAPAGENT_TEST_PAUSE_AT names the point ("<point>" or "<point>:<bytes>");
// nothing in normal operation sets it. Points: backup-stream (bytes stored so far),
// backup-before-manifest (artifacts published, manifest not yet written), restore-stream
// (stored bytes read so far by a restore).
import { existsSync, writeFileSync } from 'node:fs';

const [armed, minBytes] = (process.env.SNAPAGENT_TEST_PAUSE_AT ?? '').split(':');
let fired = false;

/**
 * The first time `point` is reached with at least the armed byte count, writes
 * $SNAPAGENT_TEST_PAUSE_FILE (JSON: point, pid, bytes) and blocks the whole process —
 * event loop included, so every stream stalls where it is — until "<that file>.resume"
 * exists (or the test kills the process).
 */
export function faultPoint(point: string, bytes = 0): void {
  if (fired || point !== armed || bytes < Number(minBytes ?? 0)) return;
  const file = process.env.SNAPAGENT_TEST_PAUSE_FILE;
  if (!file) return;
  fired = true;
  writeFileSync(file, JSON.stringify({ point, pid: process.pid, bytes }));
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (!existsSync(`${file}.resume`)) Atomics.wait(cell, 0, 0, 50);
}
