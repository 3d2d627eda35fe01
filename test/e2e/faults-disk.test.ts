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
import { docker, inVolume, removeVolume, requireDocker, snapagent, uniq, workspace, type Workspace } from '../helpers/harness.ts';
import { snapshot, type Snapshot } from '../helpers/tree.ts';

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
  let ws: Workspace;
  let mounted = false;
  let smallOriginal: Snapshot;

  before(async () => {
    await requireDocker();
    ws = workspace(`
targets: [{ name: tiny, type: local, path: \${BACKUPS} }]
jobs:
  - { name: small, plugin: volume, volume: ${small} }
  - { name: big, plugin: volume, volume: ${big} }
discovery: { labels: false }
state_dir: \${STATE}
tiers: { critical: { schedule: "0 2 * * *", keep: { last: 100 } } }   # retention keeps every test backup
concurrency: 1   # one job at a time: run side by side, big could fill the disk while small still writes
`);
    mkdirSync(ws.backups);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0700', 'tmpfs', ws.backups]);
    mounted = true;
    await docker('volume', 'create', small);
    await inVolume(small, 'head -c 1000000 /dev/urandom > /v/blob; echo ok > /v/f');
    await docker('volume', 'create', big);
    await inVolume(big, 'head -c 40000000 /dev/urandom > /v/blob');
    smallOriginal = await snapshot(small);
  });

  after(async () => {
    if (mounted) execFileSync('umount', ['-l', ws.backups]);
    for (const v of [small, big, copy]) await removeVolume(v);
    ws?.cleanup();
  });

  it('fills up during the stream: a clear error, nothing of it left, the other job backed up and restorable', async () => {
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal(b.code, 1, b.stderr);
    const byJob = Object.fromEntries(b.json.results.map((r: { job: string }) => [r.job, r]));
    assert.equal(byJob.small.status, 'ok');
    assert.equal(byJob.big.status, 'failed');
    assert.match(byJob.big.error, /target tiny \(local .*\): writing .*volume\.tar\.zst: ENOSPC/);
    assert.match(byJob.big.hint, /the target filesystem is full: free space or point the target elsewhere/);
    const left = files(ws.backups);
    assert.ok(left.every((f) => f.split('/')[1] === 'small'), `nothing of the failed job is left: ${left.join(', ')}`);
    assert.ok(!left.some((f) => f.endsWith('.partial')));

    const r = await snapagent(['restore', '--config', ws.config, '--job', 'small', '--to-volume', copy]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await snapshot(copy)).hashes, smallOriginal.hashes);
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

    const l = await snapagent(['list', '--config', ws.config, '--json']);
    assert.equal(l.json.backups.length, 1);
    await removeVolume(copy);
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'small', '--to-volume', copy]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await snapshot(copy)).hashes, smallOriginal.hashes);
  });
});
