// Incremental volume backups (GNU tar levels) through the real CLI and Docker Engine: a full
// and three increments with creations, in-place changes, deletions, renames, type changes,
// hard links, metadata-only changes and moves that keep an old mtime between them. Every
// point restores exactly (into a fresh volume, and in place over later data), increments
// store a fraction of the full, and a damaged full fails the restore of an increment on it
// with exit 3 and the live volume untouched.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, KEEP_EVERY_BACKUP, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { snapshot, type Snapshot } from '../helpers/fingerprints.ts';
import { docker, flipByte, inVolume, removeVolume, requireDocker, snapagent, uniq } from '../helpers/harness.ts';
import { expectRun, jobResult } from '../helpers/runs.ts';

/** The first state: bulk data (incompressible, so the full is big) and every kind of entry. */
const SEED = String.raw`set -euo pipefail
cd /v
mkdir -p bulk 'dir with spaces/nested' moving/inner swapA swapB empty-dir 'ünï 目录' to-delete/deep/er gone-type
for i in 1 2 3 4; do head -c 6000000 /dev/urandom > bulk/blob$i; done
printf 'hello\n' > 'dir with spaces/file one.txt'
printf 'line\nbreak' > $'name\nwith newline'
seq 1 50000 > 'ünï 目录/numbers.txt'
echo inner > moving/inner/file
echo a > swapA/a; echo b > swapB/b
echo doomed > to-delete/deep/er/x
echo becomes-dir > file-then-dir
echo f > gone-type/f
echo keep > link-target
ln -s link-target symlink-then-file
ln -s 'dir with spaces' dirlink
echo shared > hard1; ln hard1 hard2
mkfifo a-fifo
: > empty-file
chown 1001:1002 'dir with spaces/file one.txt'
chmod 0600 empty-file
setfattr -n user.snapagent -v one empty-file
touch -d '2001-02-03 04:05:06.123456789' link-target
touch -d '1999-12-31 23:59:59' empty-dir
`;

/** Between the full and the first increment. */
const CHANGE_1 = String.raw`set -euo pipefail
cd /v
printf 'hello again\n' > 'dir with spaces/file one.txt'
echo new > brand-new
mkdir -p new-dir/sub; echo n > new-dir/sub/n
rm 'name'$'\n''with newline'
mv moving moved
rm file-then-dir; mkdir file-then-dir; echo inside > file-then-dir/inside
ln hard1 hard3
# a file that arrives with an old mtime (cp -p, tar x, rsync -a): only its ctime is new
echo old-content > 'ünï 目录/arrived-old'; touch -d '2000-01-01' 'ünï 目录/arrived-old'
head -c 100000 /dev/urandom > small-random
`;

/** Between the first and the second increment. */
const CHANGE_2 = String.raw`set -euo pipefail
cd /v
rm -r gone-type; ln -s link-target gone-type
rm symlink-then-file; echo now-a-file > symlink-then-file
rm -r to-delete
mv 'ünï 目录/arrived-old' moved/inner/arrived-old
mkdir another-empty
chmod 0640 brand-new
chown 2001:2002 small-random
setfattr -n user.snapagent -v two empty-file
rm hard2
`;

/** Between the second and the third increment. */
const CHANGE_3 = String.raw`set -euo pipefail
cd /v
mv swapA tmp-swap; mv swapB swapA; mv tmp-swap swapB
rm -r new-dir; echo was-a-dir > new-dir
rm dirlink; mkdir dirlink; echo real > dirlink/real
# same size, same mtime, new content: only the ctime tells
cp -p link-target /tmp/ref; printf 'KEEP\n' > link-target; touch -r /tmp/ref link-target
rm empty-dir -r
echo hard-again > hard1
mkdir -p deep/er/still; mv brand-new deep/er/still/
`;

interface Point {
  id: string;
  fingerprint: Snapshot;
}

describe('incremental volume backups (GNU tar levels)', () => {
  const vol = uniq('sa-incr');
  const fresh = uniq('sa-incr-fresh');
  let ws: ConfigWorkspace;
  const points: Point[] = [];
  const took: { backup: number[]; restore: number[] } = { backup: [], restore: [] };

  before(async () => {
    await requireDocker();
    await docker('volume', 'create', vol);
    await inVolume(vol, SEED);
    ws = config({ jobs: [volumeJob('inc', vol, { full_every: '7d' })], tiers: KEEP_EVERY_BACKUP });
  });

  after(async () => {
    await removeVolume(vol);
    await removeVolume(fresh);
    ws?.cleanup();
  });

  async function backup(): Promise<Point> {
    const r = await expectRun(['backup', '--config', ws.config, '--json']);
    const res = jobResult(r, 'inc');
    assert.equal(res.status, 'ok', JSON.stringify(res));
    took.backup.push(res.duration_seconds);
    const p = { id: res.id!, fingerprint: await snapshot(vol) };
    points.push(p);
    return p;
  }

  it('takes a full, then increments that store only what changed', async () => {
    await backup();
    for (const change of [CHANGE_1, CHANGE_2, CHANGE_3]) {
      await inVolume(vol, change);
      await backup();
    }
    const l = await expectRun(['list', '--config', ws.config, '--job', 'inc', '--json']);
    const listed = l.json.backups as { id: string; kind: string; depends_on?: string[]; size: number; represented_size?: number; stats: Record<string, number | undefined> }[];
    const byId = new Map(listed.map((b) => [b.id, b]));
    const [full, ...incs] = points.map((p) => byId.get(p.id)!);
    assert.equal(full!.kind, 'full');
    assert.equal(full!.depends_on, undefined);
    incs.forEach((b, i) => {
      assert.equal(b.kind, 'incremental', b.id);
      assert.deepEqual(b.depends_on, points.slice(0, i + 1).map((p) => p.id), 'a level needs every level below it');
      // the bulk (24 MB of random bytes) stays in the full
      assert.ok(b.size < full!.size / 20, `increment ${b.id}: ${b.size} bytes stored, the full ${full!.size}`);
      // the stats describe the whole volume at that point, what a restore must produce
      assert.ok(Number(b.stats.bytes) > 24_000_000 && b.represented_size === b.stats.bytes, JSON.stringify(b.stats));
      assert.ok(Number(b.stats.files_reused) >= 4, `the blobs are reused: ${JSON.stringify(b.stats)}`);
    });
    assert.ok(full!.size > 24_000_000, `full: ${full!.size}`);
    const host = readdirSync(ws.backups)[0]!;
    for (const p of points) assert.ok(readdirSync(path.join(ws.backups, host, 'inc', p.id)).includes('index.snar.zst'), `${p.id} keeps its snapshot file`);
    console.log(`stored bytes: ${points.map((p) => `${byId.get(p.id)!.kind} ${byId.get(p.id)!.size}`).join(', ')}; backup seconds: ${took.backup.join(', ')}`);
  });

  it('restores every point exactly into a fresh volume', async () => {
    for (const p of points) {
      await removeVolume(fresh);
      const r = await expectRun(['restore', '--config', ws.config, '--job', 'inc', '--id', p.id, '--to-volume', fresh, '--json']);
      took.restore.push(jobResult(r, 'inc').duration_seconds);
      assert.deepEqual(await snapshot(fresh), p.fingerprint, `point ${p.id}`);
    }
    console.log(`restore seconds (full, then each increment with its chain): ${took.restore.join(', ')}`);
  });

  it('restores an earlier point in place over later data, and back again', async () => {
    const [, second, , last] = points;
    await expectRun(['restore', '--config', ws.config, '--job', 'inc', '--id', second!.id]);
    assert.deepEqual(await snapshot(vol), second!.fingerprint);
    await expectRun(['restore', '--config', ws.config, '--job', 'inc', '--id', last!.id]);
    assert.deepEqual(await snapshot(vol), last!.fingerprint);
    assert.equal((await inVolume(vol, 'ls -a /v | grep -c snapagent-restore || true', true)).trim(), '0', 'no staging dir left');
  });

  it('restores a chain through the Docker API too (transfer: attach)', async () => {
    const last = points.at(-1)!;
    const attach = ws.variant('attach.yml', { jobs: [volumeJob('inc', vol, { full_every: '7d' })], tiers: KEEP_EVERY_BACKUP, docker: { transfer: 'attach' } });
    await removeVolume(fresh);
    await expectRun(['restore', '--config', attach, '--job', 'inc', '--id', last.id, '--to-volume', fresh]);
    assert.deepEqual(await snapshot(fresh), last.fingerprint);
  });

  it('a damaged full: restoring an increment on it fails with exit 3, the live volume untouched', async () => {
    const host = readdirSync(ws.backups)[0]!;
    flipByte(path.join(ws.backups, host, 'inc', points[0]!.id, 'volume.tar.zst'));
    await inVolume(vol, 'echo live > /v/marker');
    const live = await snapshot(vol);
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'inc', '--id', points[2]!.id, '--json']);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(jobResult(r, 'inc').error ?? '', /sha256 .* does not match|damaged/);
    assert.deepEqual(await snapshot(vol), live, 'live volume unchanged, no staging dir left');
  });
});
