// A local target on a full filesystem: a 20 MiB tmpfs mounted by the test (we run as
// root). What must hold: a clear error naming the target and the full disk, nothing
// committed, no partial file left, the other jobs of the run still backed up, and the
// earlier backups still restore — whether the disk fills up during the stream or just
// before the manifest.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runUntil } from '../helpers/faults.ts';
import { config, KEEP_EVERY_BACKUP, localTarget, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { removeVolume, requireDocker, snapagent, uniq } from '../helpers/harness.ts';
import { backupCount, jobResult, restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, type Snapshot } from '../helpers/tree.ts';

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('a local target on a full disk', () => {
  const small = uniq('sa-disk-small');
  const big = uniq('sa-disk-big');
  const copy = uniq('sa-disk-copy');
  let ws: ConfigWorkspace;
  let mounted = false;
  let smallOriginal: Snapshot;

  before(async () => {
    await requireDocker();
    ws = config((w) => ({
      targets: [localTarget(w, 'tiny')],
      jobs: [volumeJob('small', small), volumeJob('big', big)],
      tiers: KEEP_EVERY_BACKUP, // retention keeps every test backup
      concurrency: 1, // one job at a time: run side by side, big could fill the disk while small still writes
    }));
    mkdirSync(ws.backups);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0700', 'tmpfs', ws.backups]);
    mounted = true;
    smallOriginal = await filledVolume(small, 'head -c 1000000 /dev/urandom > /v/blob; echo ok > /v/f');
    await filledVolume(big, 'head -c 40000000 /dev/urandom > /v/blob');
  });

  after(async () => {
    if (mounted) execFileSync('umount', ['-l', ws.backups]);
    for (const v of [small, big, copy]) await removeVolume(v);
    ws?.cleanup();
  });

  it('fills up during the stream: a clear error, nothing of it left, the other job backed up and restorable', async () => {
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal(b.code, 1, b.stderr);
    const big = jobResult(b, 'big');
    assert.equal(jobResult(b, 'small').status, 'ok');
    assert.equal(big.status, 'failed');
    assert.match(big.error!, /target tiny \(local .*\): writing .*volume\.tar\.zst: ENOSPC/);
    assert.match(big.hint!, /the target filesystem is full: free space or point the target elsewhere/);
    const left = files(ws.backups);
    assert.ok(left.every((f) => f.split('/')[1] === 'small'), `nothing of the failed job is left: ${left.join(', ')}`);
    assert.ok(!left.some((f) => f.endsWith('.partial')));

    await restoresIdentical(ws.config, 'small', copy, smallOriginal, { hashesOnly: true });
  });

  it('fills up just before the manifest: the job fails, its artifact is removed, the earlier backup is intact', async () => {
    const before = files(ws.backups);
    const p = await runUntil('backup-before-manifest', ['backup', '--config', ws.config, '--job', 'small', '--json']);
    // whatever room is left goes to a filler file while the agent waits before the manifest
    const filler = path.join(ws.backups, 'filler');
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // dd stops with "No space left on device": that is the point
    }
    p.resume();
    const b = await p.result;
    rmSync(filler);
    assert.equal(b.code, 1, b.stderr);
    const res = b.json.results[0];
    assert.match(res.error, /some targets failed: tiny: target tiny \(local .*\): writing .*manifest\.json(\.sig)?: ENOSPC/);
    assert.deepEqual(files(ws.backups), before, 'nothing committed, no partial file');

    assert.equal(await backupCount(ws.config), 1);
    await removeVolume(copy);
    await restoresIdentical(ws.config, 'small', copy, smallOriginal, { hashesOnly: true });
  });
});
