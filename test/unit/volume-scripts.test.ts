// The volume plugin's backup script run under sh on a scratch directory (GNU tar and find
// on this machine, as in the helper image): the entry counts it reports leave out what the
// job's excludes leave out, so that a restore of the archive counts the same.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { BACKUP } from '../../plugins/volume/scripts.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-volume-scripts-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const stats = (stderr: string) => /snapagent-stats (.*)$/m.exec(stderr)?.[1];

it('the backup counts leave out the excluded entries, as the restored archive does', () => {
  const src = path.join(dir, 'src');
  for (const d of ['cache/deep', 'app/cache', 'app/logs', 'keep']) mkdirSync(path.join(src, d), { recursive: true });
  for (const f of ['cache/deep/a', 'app/cache/b', 'app/logs/x.tmp', 'app/logs/y.log', 'keep/z', 'top.tmp']) writeFileSync(path.join(src, f), f.repeat(10));
  symlinkSync('keep/z', path.join(src, 'link'));
  const tar = path.join(dir, 'a.tar');
  const run = spawnSync('sh', ['-c', BACKUP, 'snapagent', src, '', '--exclude=cache', '--exclude=*.tmp', '--exclude=./keep/z'], { env: { ...process.env, SNAPAGENT_DATA: tar }, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const out = path.join(dir, 'out');
  mkdirSync(out);
  execFileSync('tar', ['-x', '-f', tar, '-C', out]);
  const restored = spawnSync('sh', ['-c', BACKUP, 'snapagent', out, ''], { env: { ...process.env, SNAPAGENT_DATA: '/dev/null' }, encoding: 'utf8' });
  assert.equal(stats(run.stderr), stats(restored.stderr));
  assert.equal(stats(run.stderr), 'files=1 dirs=4 symlinks=1 other=0 bytes=140');
});
