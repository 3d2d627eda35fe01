// What must hold when things go wrong: nothing half-written is ever listed or
// restored, good backups stay intact, live data is untouched, and the message says
// what to fix. Uses the real engine; the one fake (a tar that dies mid-stream) is an
// image named "fake-failing-tar".
import assert from 'node:assert/strict';
import { readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, localTarget, rcloneTarget, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { backupIds, flipByte, inVolume, removeVolume, requireDocker, snapagent, uniq, workspace, type Workspace } from '../helpers/harness.ts';
import { backupCount, expectRun, jobResult, restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, snapshot } from '../helpers/tree.ts';

function storedArtifact(ws: Workspace): string {
  const host = readdirSync(ws.backups)[0]!;
  const ids = backupIds(path.join(ws.backups, host, 'f'));
  return path.join(ws.backups, host, 'f', ids[ids.length - 1]!, 'volume.tar.zst');
}

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

describe('volume backups under faults', () => {
  const vol = uniq('sa-fail');
  const restored = uniq('sa-fail-restored');
  let ws: ConfigWorkspace;

  before(async () => {
    await requireDocker();
    await filledVolume(vol, 'head -c 8000000 /dev/urandom > /v/blob; seq 1 100000 > /v/numbers; mkdir /v/d; echo ok > /v/d/f');
    ws = config({ jobs: [volumeJob('f', vol)] });
  });
  after(async () => {
    await removeVolume(vol);
    await removeVolume(restored);
    ws?.cleanup();
  });

  it('a producer that exits non-zero mid-stream commits nothing and keeps earlier backups', async () => {
    await expectRun(['backup', '--config', ws.config]);
    const before = allFiles(ws.backups).sort();

    // same target and state as the good run, but the FAKE helper image
    const fake = ws.variant('fake.yml', { jobs: [volumeJob('f', vol)], docker: { helper_image: 'snapagent-test/fake-failing-tar:latest' } });
    const bad = await snapagent(['backup', '--config', fake, '--json']);
    assert.equal(bad.code, 1, bad.stderr);
    assert.equal(bad.json.results[0].status, 'failed');
    assert.match(bad.json.results[0].error, /tar of volume .* failed \(exit code 2\).*injected failure/);
    assert.deepEqual(allFiles(ws.backups).sort(), before, 'no partial file or directory is left behind');

    assert.equal(await backupCount(ws.config), 1);
    await restoresIdentical(ws.config, 'f', restored, await snapshot(vol), { hashesOnly: true });
    await removeVolume(restored);
  });

  it('an incomplete backup directory (killed run) is not listed and is cleaned by the next backup', async () => {
    const host = readdirSync(ws.backups)[0]!;
    const stale = path.join(ws.backups, host, 'f', '20200101T000000Z-critical');
    await import('node:fs/promises').then((fs) => fs.mkdir(stale, { recursive: true }));
    writeFileSync(path.join(stale, 'volume.tar.zst.partial'), 'half');
    const l = await snapagent(['list', '--config', ws.config, '--json']);
    assert.ok(!l.json.backups.some((b: { id: string }) => b.id.startsWith('2020')));
    const b = await expectRun(['backup', '--config', ws.config]);
    assert.throws(() => statSync(stale), /ENOENT/);
    assert.match(b.stderr, /removing an incomplete backup/);
  });

  it('one flipped byte: restore refuses and the live volume is untouched', async () => {
    flipByte(storedArtifact(ws));
    await inVolume(vol, 'echo live > /v/marker');
    const live = await snapshot(vol);
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'f']);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /sha256 .* does not match|damaged/);
    assert.deepEqual(await snapshot(vol), live, 'live volume unchanged, no staging dir left');
  });

  it('a truncated archive: restore refuses, live volume untouched', async () => {
    const file = storedArtifact(ws);
    truncateSync(file, Math.floor(statSync(file).size / 3));
    const live = await snapshot(vol);
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'f', '--json']);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.json.results[0].error, /truncated|damaged/);
    assert.deepEqual(await snapshot(vol), live);
  });

  it('an unreachable rclone target: clear message, non-zero exit, the other target still gets the backup', async () => {
    const two = config((w) => ({ targets: [localTarget(w), rcloneTarget('offsite', 'deadsftp:backups')], jobs: [volumeJob('f', vol)] }));
    const env = { RCLONE_CONFIG_DEADSFTP_TYPE: 'sftp', RCLONE_CONFIG_DEADSFTP_HOST: '127.0.0.1', RCLONE_CONFIG_DEADSFTP_PORT: '9', RCLONE_CONFIG_DEADSFTP_USER: 'nobody' };
    const r = await snapagent(['backup', '--config', two.config, '--json'], env);
    assert.equal(r.code, 1, r.stderr);
    const res = r.json.results[0];
    assert.equal(res.status, 'failed');
    assert.match(res.error, /offsite \(rclone deadsftp:backups\)/);
    assert.match(res.error, /connection refused|couldn't connect|dial tcp/i);
    assert.deepEqual(res.targets.find((t: { target: string }) => t.target === 'local').status, 'ok');
    const only = await snapagent(['backup', '--config', two.config, '--target', 'offsite'], env);
    assert.equal(only.code, 1);
    assert.match(only.stderr, /no target could be reached|offsite/);
    two.cleanup();
  });

  it('a job whose volume is missing fails clearly while the other jobs still run', async () => {
    const missing = uniq('sa-missing');
    const w = config({ jobs: [volumeJob('gone', missing), volumeJob('f', vol)] });
    const r = await snapagent(['backup', '--config', w.config, '--json']);
    assert.equal(r.code, 1);
    const gone = jobResult(r, 'gone');
    assert.equal(jobResult(r, 'f').status, 'ok');
    assert.equal(gone.status, 'failed');
    assert.match(gone.error!, new RegExp(`volume "${missing}" does not exist`));
    w.cleanup();
  });
});

describe('bad configuration', () => {
  const cases: [string, string, RegExp][] = [
    ['malformed YAML', 'targets:\n  - { name: x, type: local, path: ./b\njobs: []\n', /snapagent\.yml: invalid YAML at line \d+, column \d+/],
    ['wrong type', 'targets:\n  - { name: x, type: local, path: 5 }\n', /snapagent\.yml: targets\[0\]\.path: expected string, got number 5/],
    ['unknown key', 'targets:\n  - { name: x, type: local, pathh: ./b }\n', /snapagent\.yml: targets\[0\].*unknown key "pathh"|targets\[0\]\.path: expected string/],
    ['unknown top-level key', 'target: []\n', /snapagent\.yml: \(top level\): unknown key "target"/],
    ['unknown tier in a job', 'jobs:\n  - { name: a, plugin: volume, volume: v, tier: hourly }\n', /snapagent\.yml: jobs\[0\]\.tier: unknown tier "hourly", expected one of critical, medium, low/],
    ['bad job option', 'jobs:\n  - { name: a, plugin: volume, volume: v, options: { exclude: "x" } }\n', /jobs\[0\]\.options: exclude: expected array/],
  ];
  for (const [name, yaml, expected] of cases) {
    it(`${name}: names the file and the key, exit code 2`, async () => {
      const w = workspace(yaml);
      const r = await snapagent(['plan', '--config', w.config]);
      w.cleanup();
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, expected);
    });
  }

  it('a missing config file says so', async () => {
    const r = await snapagent(['plan', '--config', '/nonexistent/snapagent.yml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\/nonexistent\/snapagent\.yml: cannot read the config file \(ENOENT\)/);
  });
});
