// A remote that fails: a real S3 server (`rclone serve s3`) reached through a FAKE
// flaky proxy (test/helpers/fake-flaky-proxy.ts) that breaks some requests on demand.
// What must hold: transient failures (a third of the requests answered 503, slow answers)
// are retried with backoff and the backup still restores identical; permanent ones
// (refused credentials, a missing bucket) fail at once with a message naming the target
// and what to fix, without a retry storm; a remote that is down or stalls fails after
// bounded retries; every failure exits non-zero and shows in status and the metrics; and
// an upload cut by kill -9 (which rclone then completes, truncated) is never listed.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFakeFlakyProxy, type FakeFlakyProxy } from '../helpers/fake-flaky-proxy.ts';
import { configs, KEEP_EVERY_BACKUP, localTarget, rcloneTarget, volumeJob, type ConfigWorkspace, type Job, type RcloneSettings } from '../helpers/config.ts';
import { killAt } from '../helpers/faults.ts';
import { backupIds, removeVolume, requireDocker, snapagent, uniq } from '../helpers/harness.ts';
import { backupCount, expectRun, restoresIdentical } from '../helpers/runs.ts';
import { startS3Server, type S3Server } from '../helpers/s3-server.ts';
import { filledVolume, type Snapshot } from '../helpers/tree.ts';
import { until } from '../helpers/wait.ts';

describe('a flaky, slow, refusing or missing S3 remote', () => {
  const vol = uniq('sa-remote');
  const copy = uniq('sa-remote-copy');
  let s3: S3Server;
  let proxy: FakeFlakyProxy;
  let env: Record<string, string>;
  let original: Snapshot;
  const spaces = configs();
  // the job on one rclone target `remote`; retention keeps every test backup
  const space = (remote: string, target: RcloneSettings = {}, metrics = true, job: Partial<Job> = {}) =>
    spaces.add({
      targets: [rcloneTarget('offsite', remote, target)],
      jobs: [volumeJob('data', vol, job)],
      tiers: KEEP_EVERY_BACKUP,
      ...(metrics ? { metrics: { textfile_dir: './metrics' } } : {}),
    });
  const metrics = (w: ConfigWorkspace) => readFileSync(path.join(w.dir, 'metrics', 'snapagent.prom'), 'utf8');

  async function roundTrip(w: ConfigWorkspace): Promise<void> {
    await expectRun(['backup', '--config', w.config, '--json'], env);
    await removeVolume(copy);
    await restoresIdentical(w.config, 'data', copy, original, { env, hashesOnly: true });
  }

  before(async () => {
    await requireDocker();
    s3 = await startS3Server();
    proxy = await startFakeFlakyProxy(s3.port);
    env = { ...s3.env('flaky'), RCLONE_CONFIG_FLAKY_ENDPOINT: `http://127.0.0.1:${proxy.port}` };
    // 12 MB of random bytes: a streamed S3 upload of three 5 MiB parts
    original = await filledVolume(vol, 'head -c 12000000 /dev/urandom > /v/blob; seq 1 20000 > /v/numbers; mkdir /v/d; echo ok > /v/d/f');
  });

  after(async () => {
    await proxy?.close();
    await s3?.stop();
    await removeVolume(vol);
    await removeVolume(copy);
    spaces.cleanup();
  });

  it('a third of the requests answered 503: retried with backoff, the backup restores identical', async () => {
    proxy.set({ failEvery: 3, status: 503 });
    await roundTrip(space('flaky:bkt/snap'));
    const { requests, broken } = proxy.stats();
    assert.ok(broken >= 3 && broken >= Math.floor(requests / 3), `${broken} of ${requests} requests failed, and still everything worked`);
  });

  it('every answer delayed: slower, still correct', async () => {
    proxy.set({ delayMs: 300 });
    await roundTrip(space('flaky:bkt/slow'));
    assert.ok(proxy.stats().requests > 5);
  });

  it('refused credentials (403): fails at once naming the target and the keys to fix; no retry storm; status and metrics say failed', async () => {
    proxy.set({});
    const w = space('flaky:bkt/snap');
    const b = await snapagent(['backup', '--config', w.config, '--json'], { ...env, RCLONE_CONFIG_FLAKY_SECRET_ACCESS_KEY: 'not-the-secret' });
    assert.equal(b.code, 1, b.stderr);
    const res = b.json.results[0];
    assert.match(res.error, /^no target could be reached; nothing was backed up: target offsite \(rclone flaky:bkt\/snap\): creating the target directory failed: .*(SignatureDoesNotMatch|status code: 403)/);
    assert.match(res.hint, /the remote refused the credentials: check the keys .* of remote "flaky" in rclone.conf or RCLONE_CONFIG_FLAKY_\* env vars/);
    assert.doesNotMatch(b.stderr, /trying again/);
    assert.ok(proxy.stats().requests <= 6, `${proxy.stats().requests} requests for a refused key`);
    assert.match(metrics(w), /^snapagent_last_status\{job="data",[^}]*target="offsite"\} 0$/m);
    const s = await snapagent(['status', '--config', w.config, '--json'], env);
    assert.equal(s.code, 1);
    assert.equal(s.json.jobs[0].status, 'failed');
  });

  it('a missing bucket that these credentials may not create (--s3-no-check-bucket): fails at once saying to create it', async () => {
    proxy.set({});
    const w = space('flaky:nobucket/snap', { flags: ['--s3-no-check-bucket'] });
    const b = await snapagent(['backup', '--config', w.config, '--json'], env);
    assert.equal(b.code, 1, b.stderr);
    const res = b.json.results[0];
    assert.match(res.error, /target offsite \(rclone flaky:nobucket\/snap\): listing the target failed: .*directory not found/);
    assert.match(res.hint, /the bucket or directory \(or file\) does not exist on the remote: create the bucket, or fix the target's remote "flaky:nobucket\/snap"/);
    assert.doesNotMatch(b.stderr, /trying again/);
    assert.ok(proxy.stats().requests <= 6, `${proxy.stats().requests} requests for a missing bucket`);
    assert.ok(!existsSync(path.join(s3.root, 'nobucket')), 'nothing was created');
  });

  it('the remote down (connection refused): bounded retries with backoff, then a clear failure; the local target still gets the backup', async () => {
    const w = spaces.add((w) => ({ targets: [localTarget(w), rcloneTarget('offsite', 'down:bkt/snap')], jobs: [volumeJob('data', vol)] }));
    const closed = await startFakeFlakyProxy(s3.port);
    await closed.close(); // a port nobody listens on any more
    const downEnv = { ...env, ...s3.env('down'), RCLONE_CONFIG_DOWN_ENDPOINT: `http://127.0.0.1:${closed.port}` };
    const b = await snapagent(['backup', '--config', w.config, '--json'], downEnv);
    assert.equal(b.code, 1, b.stderr);
    const res = b.json.results[0];
    assert.match(res.error, /offsite \(rclone down:bkt\/snap\): .*connection refused.*\(3 attempts\)/);
    assert.equal(b.stderr.split('\n').filter((l) => l.includes('trying again')).length, 2, 'two retries, then it gives up');
    assert.equal(res.targets.find((t: { target: string }) => t.target === 'local').status, 'ok');
    await removeVolume(copy);
    await restoresIdentical(w.config, 'data', copy, original, { env: downEnv, args: ['--target', 'local'], hashesOnly: true });
  });

  it("a remote that stalls: rclone's timeout ends each call, the job fails with a clear message", async () => {
    proxy.set({ stall: true });
    // no metrics (they would list the stalled target too) and no retries: one bounded wait
    const w = space('flaky:bkt/stall', { flags: ['--timeout', '2s', '--low-level-retries', '1'], retries: 0 }, false);
    const b = await snapagent(['backup', '--config', w.config, '--json'], env);
    proxy.set({});
    assert.equal(b.code, 1, b.stderr);
    assert.match(b.json.results[0].error, /offsite .*failed: .*(timeout|deadline exceeded|Timeout)/i);
  });

  it('kill -9 during the upload: what rclone then uploads on its own (truncated) is never listed, and the next backup removes it', async () => {
    proxy.set({});
    // fulls: the killed backup must be a multi-part upload, not an increment of a few KB
    const w = space('flaky:bkt/kill', {}, true, { incremental: false });
    await roundTrip(w);
    await killAt('backup-stream:1048576', ['backup', '--config', w.config], env);
    // rclone rcat, orphaned, sees the end of its input and completes the upload
    const jobDir = () => path.join(s3.root, 'bkt', 'kill', readdirSync(path.join(s3.root, 'bkt', 'kill'))[0]!, 'data');
    await until('the orphaned upload', () => backupIds(jobDir()).length >= 2, { timeoutMs: 20_000 }).catch(() => undefined);
    assert.equal(await backupCount(w.config, { env }), 1, 'only the committed backup is listed');
    const s = await snapagent(['status', '--config', w.config, '--json'], env);
    assert.equal(s.json.jobs[0].status, 'failed');
    assert.match(s.json.jobs[0].last_error, /^killed: /);
    await roundTrip(w);
    assert.equal(backupIds(jobDir()).length, 2, 'the truncated upload is gone; two committed backups');
  });
});
