// The rclone target against a real OpenSSH server: backup, list and restore read and
// write only the remote; uploads are published by rename and leave no ".partial".
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { docker, inVolume, removeVolume, requireDocker, snapagent, uniq, workspace, type Workspace } from '../helpers/harness.ts';
import { startSftpServer, type SftpServer } from '../helpers/sftp-server.ts';
import { AWKWARD_TREE, snapshot } from '../helpers/tree.ts';

describe('rclone target over SFTP (real OpenSSH)', () => {
  const vol = uniq('sa-sftp');
  let sftp: SftpServer;
  let ws: Workspace;
  let env: Record<string, string>;

  before(async () => {
    await requireDocker();
    sftp = await startSftpServer();
    env = sftp.env('testsftp');
    await docker('volume', 'create', vol);
    await inVolume(vol, AWKWARD_TREE);
    ws = workspace(`
host: sftp-test-host
targets:
  - { name: offsite, type: rclone, remote: "testsftp:${sftp.root}/snapagent" }
jobs:
  - { name: data, plugin: volume, volume: ${vol}, tier: medium }
discovery: { labels: false }
state_dir: \${STATE}
`);
  });

  after(async () => {
    await removeVolume(vol);
    await sftp?.stop();
    ws?.cleanup();
  });

  it('round-trips a volume through the remote alone', async () => {
    const original = await snapshot(vol);
    const b = await snapagent(['backup', '--config', ws.config, '--json'], env);
    assert.equal(b.code, 0, b.stderr);
    const id = b.json.results[0].id as string;
    assert.match(id, /^\d{8}T\d{6}Z-medium$/);

    const dir = path.join(sftp.root, 'snapagent', 'sftp-test-host', 'data', id);
    assert.deepEqual(readdirSync(dir).sort(), ['manifest.json', 'manifest.json.sig', 'volume.tar.zst']);

    const l = await snapagent(['list', '--config', ws.config, '--json'], env);
    assert.equal(l.code, 0, l.stderr);
    assert.deepEqual(l.json.backups.map((x: { id: string }) => x.id), [id]);

    await docker('volume', 'rm', vol);
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'data', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await snapshot(vol), original);
  });
});
