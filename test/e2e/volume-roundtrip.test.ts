// Backup → remove the volume → restore → identical tree for an awkward tree (every kind
// of entry, owners, modes, xattrs, a sparse file), through the real CLI and the real
// Docker Engine; plus restore into another volume, --stop, and transfer: attach. The
// plugin contract suite (test/contract/volume.test.ts) covers the rest: the refusal while
// in use, a tiny volume, drills, verify, kill -9.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { docker, inVolume, SLEEPER, removeContainer, removeVolume, requireDocker, snapagent, uniq, workspace, type Workspace } from '../helpers/harness.ts';
import { AWKWARD_TREE, snapshot, type Snapshot } from '../helpers/tree.ts';

describe('volume plugin round trip (local target)', () => {
  const vol = uniq('sa-rt');
  const other = uniq('sa-rt-other');
  const user = uniq('sa-rt-user');
  let ws: Workspace;
  let original: Snapshot;

  before(async () => {
    await requireDocker();
    await docker('volume', 'create', '--label', 'app=roundtrip', vol);
    await inVolume(vol, AWKWARD_TREE);
    original = await snapshot(vol);
    ws = workspace(`
targets:
  - { name: local, type: local, path: \${BACKUPS} }
jobs:
  - { name: rt, plugin: volume, volume: ${vol}, tier: critical }
discovery: { labels: false }
state_dir: \${STATE}
`);
  });

  after(async () => {
    await removeContainer(user);
    await removeVolume(vol);
    await removeVolume(other);
    ws?.cleanup();
  });

  it('backs up, lists, and restores an identical tree after the volume is removed', async () => {
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.json.results[0].status, 'ok');
    const l = await snapagent(['list', '--config', ws.config, '--json']);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.json.backups.length, 1);
    const listed = l.json.backups[0];
    assert.equal(listed.job, 'rt');
    assert.ok(listed.stats.files === 9 && listed.stats.symlinks === 3 && listed.stats.other === 1, JSON.stringify(listed.stats));
    // the 1.2 GiB sparse file is stored sparse: the archive stays small
    assert.ok(listed.size < 50 * 1024 * 1024, `archive is ${listed.size} bytes`);

    await docker('volume', 'rm', vol);
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'rt', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.results[0].status, 'ok');
    const restored = await snapshot(vol);
    assert.deepEqual(restored, original);
    const labels = JSON.parse(await docker('volume', 'inspect', '--format', '{{json .Labels}}', vol));
    assert.equal(labels.app, 'roundtrip', 'the recreated volume keeps its labels');
  });

  it('restores into another volume with --to-volume, leaving the original alone', async () => {
    await inVolume(vol, 'echo changed > /v/marker');
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'rt', '--to-volume', other, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await snapshot(other), original);
    assert.equal((await inVolume(vol, 'cat /v/marker')).trim(), 'changed');
  });

  it('restores under a running container with --stop, and restarts it', async () => {
    await docker('run', '-d', '--name', user, '--network', 'none', '-v', `${vol}:/data`, 'snapagent/helper:latest', ...SLEEPER);

    const r = await snapagent(['restore', '--config', ws.config, '--job', 'rt', '--stop', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json.results[0].restarted, [user]);
    assert.equal((await docker('inspect', '--format', '{{.State.Running}}', user)).trim(), 'true');
    assert.deepEqual(await snapshot(vol), original, 'the marker is gone, the tree is back');
  });

  it('works the same with transfer: attach (data through the Docker API instead of a named pipe)', async () => {
    const viaApi = uniq('sa-rt-api');
    const w = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs: [{ name: api, plugin: volume, volume: ${vol} }]
discovery: { labels: false }
docker: { transfer: attach }
state_dir: \${STATE}
`);
    try {
      const before = await snapshot(vol);
      const b = await snapagent(['backup', '--config', w.config]);
      assert.equal(b.code, 0, b.stderr);
      const r = await snapagent(['restore', '--config', w.config, '--job', 'api', '--to-volume', viaApi]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(await snapshot(viaApi), before);
    } finally {
      await removeVolume(viaApi);
      w.cleanup();
    }
  });
});
