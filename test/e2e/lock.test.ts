// Runs that meet: two `backup` runs of one job never interleave (the second waits for
// the lock), a run gives up after lock_wait_seconds saying who holds the lock, a lock
// left by a killed run is taken over (also when its pid now belongs to someone else),
// and the jobs of one run go in parallel up to `concurrency`, stopping jobs one at a time.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, volumeJob, type ConfigWorkspace, type TestConfig } from '../helpers/config.ts';
import { logLines, removeVolume, requireDocker, ROOT, snapagent, startSnapagent, uniq } from '../helpers/harness.ts';
import { backupCount, restoresIdentical, statuses } from '../helpers/runs.ts';
import { filledVolume, type Snapshot } from '../helpers/tree.ts';

const HOST = 'sa-lock';

// [start, end] of each job's copy, from the JSON logs of one or more runs
function intervals(outputs: string[]): { job: string; run: string; from: number; to: number }[] {
  const lines = outputs.flatMap(logLines);
  return lines
    .filter((l) => l.msg === 'backup started')
    .map((s) => {
      const end = lines.find((l) => l.msg === 'backup committed' && l.run === s.run && l.job === s.job && l.id === s.id);
      assert.ok(end, `no commit for ${s.job} ${s.id}`);
      return { job: s.job, run: s.run, from: s.time, to: end.time };
    });
}

function maxOverlap(iv: { from: number; to: number }[]): number {
  return Math.max(...iv.map((a) => iv.filter((b) => b.from <= a.from && a.from < b.to).length));
}

function holdLock(stateDir: string, job: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, 'test', 'helpers', 'hold-lock.ts'), stateDir, HOST, job], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (c) => String(c).includes('locked') && resolve(child));
    child.on('exit', (code) => reject(new Error(`lock holder exited with ${code}`)));
  });
}

describe('locks and parallel jobs', () => {
  const vols = [uniq('sa-lock-a'), uniq('sa-lock-b'), uniq('sa-lock-c')];
  const restored = uniq('sa-lock-restored');
  let ws: ConfigWorkspace;
  let spec: TestConfig;
  let holder: ChildProcess | undefined;
  const originals: Snapshot[] = [];

  before(async () => {
    await requireDocker();
    for (const v of vols) originals.push(await filledVolume(v, `head -c 60M /dev/urandom > /v/blob && echo ${v} > /v/name`));
    const [a, b, c] = vols as [string, string, string];
    spec = {
      host: HOST,
      jobs: [volumeJob('a', a), volumeJob('b', b), volumeJob('c', c), volumeJob('sa', a, { stop: true, order: 1 }), volumeJob('sb', b, { stop: true, order: 1 })],
      concurrency: 2,
      lock_wait_seconds: 600,
    };
    ws = config(spec);
  });

  after(async () => {
    holder?.kill('SIGKILL');
    for (const v of [...vols, restored]) await removeVolume(v);
    ws?.cleanup();
  });

  it('two backup runs of one job at once: the second waits, the copies never interleave', async () => {
    const runs = [startSnapagent(['backup', '--config', ws.config, '--job', 'a', '--json']), startSnapagent(['backup', '--config', ws.config, '--job', 'a', '--json'])];
    const codes = await Promise.all(runs.map((r) => r.exited));
    assert.deepEqual(codes, [0, 0], runs.map((r) => r.output()).join('\n'));
    const iv = intervals(runs.map((r) => r.output()));
    assert.equal(iv.length, 2);
    assert.notEqual(iv[0]!.run, iv[1]!.run);
    assert.equal(maxOverlap(iv), 1, JSON.stringify(iv));
    assert.ok(runs.some((r) => logLines(r.output()).some((l) => l.msg === 'job is locked by another run: waiting')));
    const [first, second] = [...runs].sort((x, y) => intervals([x.output()])[0]!.from - intervals([y.output()])[0]!.from).map((r) => JSON.parse(r.stdout()).results[0]);
    assert.notEqual(first.id, second.id, 'two distinct backups');
    // the second ran after the first committed: an increment on it, which retention
    // keeps although the daily rule keeps only the newest of the day
    assert.deepEqual([second.kind, second.depends_on], ['incremental', [first.id]]);
    assert.deepEqual(second.retention, [{ target: 'local', status: 'ok', removed: [] }]);
  });

  it('gives up after lock_wait_seconds, naming the holder; then takes over the lock once its holder is killed', async () => {
    holder = await holdLock(ws.state, 'b');
    const cfg = ws.variant('short-wait.yml', { ...spec, lock_wait_seconds: 2 });
    const r = await snapagent(['backup', '--config', cfg, '--job', 'b', '--json']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.json.results[0].error, new RegExp(`^job b is locked by another run \\(pid ${holder.pid}, since .+\\); gave up after waiting 2s$`));
    assert.match(r.json.results[0].hint, /raise lock_wait_seconds; the lock is .*sa-lock--b\.lock/);
    assert.equal(await backupCount(ws.config, { job: 'b' }), 0);

    holder.kill('SIGKILL');
    await new Promise((res) => holder!.once('exit', res));
    const ok = await snapagent(['backup', '--config', cfg, '--job', 'b', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(logLines(ok.stderr).some((l) => l.msg === 'taking over a stale lock left by a run that was killed'));
  });

  it('takes over a lock whose pid now belongs to another process (an agent in a container is pid 1 every time)', async () => {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    mkdirSync(path.join(ws.state, 'locks'), { recursive: true });
    // our own pid is alive, but it was not us who took this lock: the start time differs
    writeFileSync(path.join(ws.state, 'locks', `${HOST}--c.lock`), JSON.stringify({ pid: process.pid, since: '2020-01-01T00:00:00.000Z', boot, start: '1' }));
    const r = await snapagent(['backup', '--config', ws.config, '--job', 'c', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(logLines(r.stderr).some((l) => l.msg === 'taking over a stale lock left by a run that was killed'));
  });

  it('runs jobs in parallel up to concurrency, and stopping jobs one at a time', async () => {
    const r = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(statuses(r), ['a ok', 'b ok', 'c ok', 'sa ok', 'sb ok']);
    const iv = intervals([r.stderr]);
    assert.equal(maxOverlap(iv), 2, `at most 2 at once, and 2 did run together: ${JSON.stringify(iv)}`);
    assert.equal(maxOverlap(iv.filter((x) => x.job.startsWith('s'))), 1, 'stopping jobs never together');
  });

  it('restores what the racing runs stored', async () => {
    for (const [i, job] of (['a', 'b', 'c'] as const).entries()) await restoresIdentical(ws.config, job, restored, originals[i]!);
  });
});
