// The rclone target against a real OpenSSH server: backup, list and restore read and
// write only the remote; uploads are published by rename and leave no ".partial".
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { docker, removeVolume, requireDocker, uniq } from '../helpers/harness.ts';
import { expectRun, restoresIdentical } from '../helpers/runs.ts';
import { startSftpServer, type SftpServer } from '../helpers/sftp-server.ts';
import { AWKWARD_TREE, filledVolume, type Snapshot } from '../helpers/tree.ts';

describe('rclone target over SFTP (real OpenSSH)', () => {
  const vol = uniq('sa-sftp');
  let sftp: SftpServer;
  let ws: ConfigWorkspace;
  let original: Snapshot;
  let env: Record<string, string>;

  before(async () => {
    await requireDocker();
    sftp = await startSftpServer();
    env = sftp.env('testsftp');
    original = await filledVolume(vol, AWKWARD_TREE);
    ws = config({
      host: 'sftp-test-host',
      targets: [{ name: 'offsite', type: 'rclone', remote: `testsftp:${sftp.root}/snapagent` }],
      jobs: [volumeJob('data', vol, { tier: 'medium' })],
    });
  });

  after(async () => {
    await removeVolume(vol);
    await sftp?.stop();
    ws?.cleanup();
  });

  it('round-trips a volume through the remote alone', async () => {
    const b = await expectRun(['backup', '--config', ws.config, '--json'], env);
    const id = b.json.results[0].id as string;
    assert.match(id, /^\d{8}T\d{6}Z-medium$/);

    const dir = path.join(sftp.root, 'snapagent', 'sftp-test-host', 'data', id);
    assert.deepEqual(readdirSync(dir).sort(), ['index.snar.zst', 'manifest.json', 'manifest.json.sig', 'volume.tar.zst']);

    const l = await expectRun(['list', '--config', ws.config, '--json'], env);
    assert.deepEqual(l.json.backups.map((x: { id: string }) => x.id), [id]);

    await docker('volume', 'rm', vol);
    await restoresIdentical(ws.config, 'data', vol, original, { inPlace: true, env });
  });
});
