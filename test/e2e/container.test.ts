// The agent as a container (compose/agent): the compose service runs the daemon with the
// Docker socket mounted; it catches up the missed slot at once (a fresh state volume),
// backs up a volume of the host, and `docker-compose stop` (SIGTERM) ends it with exit 0.
// The host's CLI then restores that backup from the target alone, identical.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { config, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { docker, logLines, removeVolume, requireDocker, ROOT, uniq } from '../helpers/harness.ts';
import { expectRun, restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, type Snapshot } from '../helpers/tree.ts';
import { until } from '../helpers/wait.ts';

const pexec = promisify(execFile);
const HOST = 'sa-container';

describe('the agent container (compose service)', () => {
  const vol = uniq('sa-ctr');
  const restored = uniq('sa-ctr-restored');
  const project = uniq('sactr').replace('-', '');
  let ws: ConfigWorkspace;
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
    original = await filledVolume(vol, 'mkdir -p /v/d && seq 1 4000 > /v/d/n');
    // the host's view of the same target: the same host name, the backups directory
    ws = config({ host: HOST });
    mkdirSync(ws.backups, { recursive: true });
    // paths inside the container
    const inside = ws.variant('agent.yml', {
      host: HOST,
      targets: [{ name: 'local', type: 'local', path: '/backups' }],
      jobs: [volumeJob('data', vol, { tier: 'critical' })],
      state_dir: '/var/lib/snapagent',
    });
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
    const done = await until('the tier run to finish', async () => {
      logs = await containerLogs(id.trim());
      return logLines(logs).find((l) => l.msg?.startsWith('tier run finished') && l.tier === 'critical');
    }, { timeoutMs: 75_000, intervalMs: 500 }).catch((err: Error) => assert.fail(`${err.message}\n${logs}`));
    assert.equal(done.ok, true, logs);
    await compose('stop', '--timeout', '60');
    assert.equal((await docker('inspect', '--format', '{{.State.ExitCode}}', id.trim())).trim(), '0');
    assert.ok(logLines(await containerLogs(id.trim())).some((l) => l.msg === 'daemon stopped'));
  });

  it('the host restores what the container stored, identical', async () => {
    // the host trusts the container agent's signing key, as `snapagent key` prints it there
    const { stdout: key } = await compose('run', '--rm', '--no-deps', '-T', 'snapagent', 'key');
    assert.match(key.trim(), /^ssh-ed25519 \S+ snapagent@/);
    ws.rewrite({ host: HOST, trusted_keys: [key.trim()] });
    const l = await expectRun(['list', '--config', ws.config, '--json']);
    assert.equal(l.json.backups.length, 1);
    assert.match(l.json.backups[0].id, /^\d{8}T020000Z-critical$/, 'the slot id of the missed 02:00 run');
    await restoresIdentical(ws.config, 'data', restored, original);
  });
});
