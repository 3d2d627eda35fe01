// The docs hold together: every relative link and #anchor in README.md, SECURITY.md,
// docs/ and plugins/*/README.md resolves, and every `docs/<page>.md "Heading"` the code
// cites names a heading that exists (scripts/check-doc-links.ts does the checking).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

test('every doc link, anchor and cited heading resolves', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'check-doc-links.ts')], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
