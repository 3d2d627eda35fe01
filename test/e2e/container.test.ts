// The agent as a container (compose/agent): the compose service runs the daemon with the
// Docker socket mounted; it catches up the missed slot at once (a fresh state volume),
// backs up a volume of the host, and `docker-compose stop` (SIGTERM) ends it with exit 0.
// The host's CLI then restores that backup from the target alone, identical.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { docker, inVolume, logLines, removeVolume, requireDocker, ROOT, snapagent, uniq, workspace, type Workspace } from '../helpers/harness.ts';
import { snapshot, type Snapshot } from '../helpers/tree.ts';

const pexec = promisify(execFile);
const HOST = 'sa-container';

describe('the agent container (compose service)', () => {
  const vol = uniq('sa-ctr');
  const restored = uniq('sa-ctr-restored');
  const project = uniq('sactr').replace('-', '');
  let ws: Workspace;
  let env: NodeJS.ProcessEnv;
  let original: Snapshot;
  const containerLogs = async (id: string) => {
    const { stdout, stderr } = await pexec('docker', ['logs', id], { maxBuffer: 64 << 20 });
    return stdout + stderr; // the agent logs on stderr
  };
  const compose = (...args: string[]) => pexec('docker-compose', ['-p', project, '-f', path.join(ROOT, 'compose', 'agent', 'docker-compose.yml'), ...args], { env, maxBuffer: 64 << 20 });

  before(async () => {
    await requireDocker();
    // the image of the code under test (cached by content hash: seconds when up to date)
    await pexec('bash', [path.join(ROOT, 'compose', 'images', 'build.sh'), 'agent'], { maxBuffer: 64 << 20 });
    await docker('volume', 'create', vol);
    await inVolume(vol, 'mkdir -p /v/d && seq 1 4000 > /v/d/n');
    original = await snapshot(vol);
    // the host's view of the same target: the same host name, the backups directory
    ws = workspace(`
host: ${HOST}
targets: [{ name: local, type: local, path: \${BACKUPS} }]
discovery: { labels: false }
state_dir: \${STATE}
`);
    mkdirSync(ws.backups, { recursive: true });
    const inside = path.join(ws.dir, 'agent.yml'); // paths inside the container
    writeFileSync(inside, `
host: ${HOST}
targets: [{ name: local, type: local, path: /backups }]
jobs:
  - { name: data, plugin: volume, volume: ${vol}, tier: critical }
discovery: { labels: false }
state_dir: /var/lib/snapagent
`);
    env = { ...process.env, SNAPAGENT_CONFIG_FILE: inside, SNAPAGENT_BACKUPS: ws.backups, TZ: 'UTC' };
  });

  after(async () => {
    await compose('down', '-v', '--timeout', '5').catch(() => undefined);
    await removeVolume(vol);
    await removeVolume(restored);
    ws?.cleanup();
  });

  it('runs the daemon, backs up at once (missed slot), stops on SIGTERM with exit 0', async () => {
    await compose('up', '-d', '--no-build');
    const { stdout: id } = await compose('ps', '-q', 'snapagent');
    let logs = '';
    for (let i = 0; i < 120 && !logLines(logs).some((l) => l.msg?.startsWith('tier run finished') && l.tier === 'critical'); i++) {
      await new Promise((r) => setTimeout(r, 500));
      logs = await containerLogs(id.trim());
    }
    const done = logLines(logs).find((l) => l.msg?.startsWith('tier run finished') && l.tier === 'critical');
    assert.ok(done, logs);
    assert.equal(done.ok, true, logs);
    await compose('stop', '--timeout', '60');
    assert.equal((await docker('inspect', '--format', '{{.State.ExitCode}}', id.trim())).trim(), '0');
    assert.ok(logLines(await containerLogs(id.trim())).some((l) => l.msg === 'daemon stopped'));
  });

  it('the host restores what the container stored, identical', async () => {
    // the host trusts the container agent's signing key, as `snapagent key` prints it there
    const { stdout: key } = await compose('run', '--rm', '--no-deps', '-T', 'snapagent', 'key');
    assert.match(key.trim(), /^ssh-ed25519 \S+ snapagent@/);
    writeFileSync(ws.config, `
host: ${HOST}
targets: [{ name: local, type: local, path: ${ws.backups} }]
discovery: { labels: false }
state_dir: ${path.join(ws.dir, 'state')}
trusted_keys: ["${key.trim()}"]
`);
    const l = await snapagent(['list', '--config', ws.config, '--json']);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.json.backups.length, 1);
    assert.match(l.json.backups[0].id, /^\d{8}T020000Z-critical$/, 'the slot id of the missed 02:00 run');
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'data', '--to-volume', restored, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await snapshot(restored), original);
  });
});
