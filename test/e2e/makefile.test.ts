// The operator's entry points: `make backup` and `make restore` (no JOB, not on a
// terminal: the latest backup of every job), driven with CONFIG= as a user would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { config, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { docker, make, removeVolume, requireDocker, snapagent, uniq } from '../helpers/harness.ts';
import { filledVolume, snapshot, type Snapshot } from '../helpers/tree.ts';

describe('make backup / make restore', () => {
  const a = uniq('sa-make-a');
  const b = uniq('sa-make-b');
  let ws: ConfigWorkspace;
  const originals: Record<string, Snapshot> = {};

  before(async () => {
    await requireDocker();
    for (const v of [a, b]) originals[v] = await filledVolume(v, `mkdir -p /v/x && seq 1 20000 > /v/x/n && echo ${v} > /v/name`);
    ws = config({ jobs: [volumeJob('a', a, { tier: 'critical' }), volumeJob('b', b, { tier: 'medium' })] });
  });

  after(async () => {
    await removeVolume(a);
    await removeVolume(b);
    ws?.cleanup();
  });

  it('backs up every job, or one tier, and restores the latest of every job', async () => {
    const all = await make(['backup', `CONFIG=${ws.config}`]);
    assert.equal(all.code, 0, all.out);
    const first = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups;
    const tier = await make(['backup', `CONFIG=${ws.config}`, 'TIER=medium']);
    assert.equal(tier.code, 0, tier.out);
    const l = await snapagent(['list', '--config', ws.config, '--json']);
    // the tier run backed up b alone, as an increment on its first backup: retention
    // (weekly 4, the newest of the week) keeps that first one too, as its base
    type B = { job: string; id: string; finished_at: string; kind: string; depends_on?: string[] };
    const of = (backups: B[], job: string) => backups.filter((x) => x.job === job).sort((x, y) => x.finished_at.localeCompare(y.finished_at));
    assert.deepEqual(of(l.json.backups, 'a'), of(first, 'a'));
    const [bFirst, bNew] = of(l.json.backups, 'b');
    assert.equal(of(l.json.backups, 'b').length, 2);
    assert.equal(bFirst!.id, of(first, 'b')[0]!.id);
    assert.deepEqual([bNew!.kind, bNew!.depends_on], ['incremental', [bFirst!.id]], 'b was backed up again, as an increment');
    assert.match(bNew!.id, /^\d{8}T\d{4}00Z-medium$/, "the id of the tier's schedule slot");

    await docker('volume', 'rm', a, b);
    const r = await make(['restore', `CONFIG=${ws.config}`]);
    assert.equal(r.code, 0, r.out);
    for (const v of [a, b]) assert.deepEqual(await snapshot(v), originals[v]);
  });
});
