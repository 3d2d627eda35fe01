// kill -9 of the agent at chosen points (frozen there by the test-only fault points of
// agent/testing.ts, then SIGKILL): while the volume is streamed to the target, right
// before the manifest, while a stop: true job has its containers stopped, and in the
// middle of a restore. What must hold: the next start reports the run as failed (and
// the metrics say so), no partial backup is ever listed or restored, the next run removes
// what the killed one left (partial files, helper containers, named pipes), stopped
// containers are restarted, earlier backups still restore, and an interrupted restore
// leaves the live volume's content alone (the next start removes its staging directory)
// and can be run again to completion.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, KEEP_EVERY_BACKUP, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { killAt, runUntil } from '../helpers/faults.ts';
import { docker, HELPER, inVolume, isRunning, removeContainer, removeVolume, requireDocker, SLEEPER, snapagent, uniq, backupIds } from '../helpers/harness.ts';
import { expectRun, restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, snapshot, type Snapshot } from '../helpers/tree.ts';

const STAGE = './.snapagent-restore-';

function withoutStaging(s: Snapshot): Snapshot {
  const keep = <T>(o: Record<string, T>) => Object.fromEntries(Object.entries(o).filter(([p]) => !p.startsWith(STAGE)));
  const { ['.']: _root, ...entries } = keep(s.entries); // the root's mtime changes with the staging dir
  return { ...s, entries, hashes: keep(s.hashes) };
}

const killedRunOf = (stderr: string) => /"killed_run":"([0-9a-f]{8})"/.exec(stderr)?.[1];

describe('kill -9 of the agent', () => {
  const vol = uniq('sa-kill');
  const appVol = uniq('sa-kill-app');
  const app = uniq('sa-kill-app');
  const copies = [uniq('sa-kill-copy'), uniq('sa-kill-copy')];
  let ws: ConfigWorkspace;
  let host: string;
  let original: Snapshot;
  let firstId: string;
  const jobDir = () => path.join(ws.backups, host, 'data');
  const metrics = () => readFileSync(path.join(ws.dir, 'metrics', 'snapagent.prom'), 'utf8');

  before(async () => {
    await requireDocker();
    original = await filledVolume(vol, 'head -c 24000000 /dev/urandom > /v/blob; seq 1 50000 > /v/numbers; mkdir /v/d; echo ok > /v/d/f');
    // more than the pipeline holds while the upload is frozen at 1 MiB (zstd -T0 alone takes
    // in several MiB before its first output): else tar could finish, and the container be
    // restarted, before the freeze
    await filledVolume(appVol, 'head -c 64000000 /dev/urandom > /v/app.bin; echo config > /v/app.conf');
    await docker('run', '-d', '--name', app, '--network', 'none', '-v', `${appVol}:/data`, HELPER, ...SLEEPER);
    ws = config({
      jobs: [volumeJob('data', vol), volumeJob('app', appVol, { stop: true })],
      metrics: { textfile_dir: './metrics' },
      tiers: KEEP_EVERY_BACKUP, // retention keeps every test backup
    });
    const b = await expectRun(['backup', '--config', ws.config, '--job', 'data', '--json']);
    firstId = b.json.results[0].id;
    host = readdirSync(ws.backups)[0]!;
  });

  after(async () => {
    await removeContainer(app);
    for (const v of [vol, appVol, ...copies]) await removeVolume(v);
    ws?.cleanup();
  });

  it('while streaming: the next start reports the run failed; nothing partial is listed; the next backup cleans up; the earlier backup restores', async () => {
    // an increment on the first backup: it must have more than the 1 MiB to freeze at
    await inVolume(vol, 'head -c 3000000 /dev/urandom > /v/more');
    const p = await runUntil('backup-stream:1048576', ['backup', '--config', ws.config, '--job', 'data']);
    const killedId = backupIds(jobDir()).find((d) => d !== firstId)!;
    assert.ok(existsSync(path.join(jobDir(), killedId, 'volume.tar.zst.partial')), 'frozen mid-upload');
    await p.kill();

    const s = await snapagent(['status', '--config', ws.config, '--json']);
    assert.equal(s.code, 1, s.stdout);
    const job = s.json.jobs.find((j: { job: string }) => j.job === 'data');
    assert.equal(job.status, 'failed');
    assert.match(job.last_error, new RegExp(`^killed: the agent \\(pid ${p.pid}, run [0-9a-f]{8}\\) was killed during this backup \\(${killedId}\\)`));
    assert.match(s.stderr, /an earlier agent run was killed .*repairing what it left/);
    assert.match(metrics(), /^snapagent_last_status\{job="data",[^}]*\} 0$/m, 'metrics updated at the next start');
    const run = killedRunOf(s.stderr)!;
    assert.equal((await docker('ps', '-aq', '--filter', `label=snapagent.run=${run}`)).trim(), '', 'its helper container is removed');
    assert.deepEqual(readdirSync(path.join(ws.state, 'pipes')), [], 'its named pipe is removed');
    assert.deepEqual(readdirSync(path.join(ws.state, 'procs')), [], 'no process record left');

    const l = await snapagent(['list', '--config', ws.config, '--json']);
    assert.deepEqual(l.json.backups.map((b: { id: string }) => b.id), [firstId], 'the killed backup is not listed');
    const again = await snapagent(['status', '--config', ws.config, '--json']);
    assert.doesNotMatch(again.stderr, /was killed/, 'repaired once');
    assert.equal(again.json.jobs.find((j: { job: string }) => j.job === 'data').failures_in_a_row, 1);

    const b = await expectRun(['backup', '--config', ws.config, '--job', 'data', '--json']);
    assert.match(b.stderr, /removing an incomplete backup left by an interrupted run/);
    assert.ok(!existsSync(path.join(jobDir(), killedId)), 'the partial backup is gone');

    await restoresIdentical(ws.config, 'data', copies[0]!, original, { id: firstId, hashesOnly: true });
  });

  it('right before the manifest: the published artifact is never listed or restored, and the next backup removes it', async () => {
    const p = await runUntil('backup-before-manifest', ['backup', '--config', ws.config, '--job', 'data']);
    const ids = backupIds(jobDir());
    const killedId = ids.at(-1)!;
    assert.deepEqual(readdirSync(path.join(jobDir(), killedId)).sort(), ['index.snar.zst', 'volume.tar.zst'], 'the whole artifact and its index, no manifest');
    await p.kill();

    const r = await snapagent(['restore', '--config', ws.config, '--job', 'data', '--id', killedId]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`job "data" has no committed backup "${killedId}"`));
    assert.match(r.stderr, /an earlier agent run was killed/, 'any command repairs first');
    const l = await snapagent(['list', '--config', ws.config, '--json']);
    assert.ok(!l.json.backups.some((b: { id: string }) => b.id === killedId));

    await expectRun(['backup', '--config', ws.config, '--job', 'data']);
    assert.ok(!existsSync(path.join(jobDir(), killedId)));
  });

  it('while a stop: true job has its container stopped: the next start restarts it and says so', async () => {
    const p = await runUntil('backup-stream:1048576', ['backup', '--config', ws.config, '--job', 'app']);
    const running = await isRunning(app);
    await p.kill(); // first: a frozen agent left behind would hold this file open for ever
    // (the agent's log says whether it stopped the container, and when it restarted it)
    assert.equal(running, false, `stopped for the copy; the agent said:\n${(await p.result).stderr.slice(-3000)}`);
    assert.equal(await isRunning(app), false, 'still stopped after the kill');

    const plan = await expectRun(['plan', '--config', ws.config]);
    assert.equal(await isRunning(app), true, 'restarted by the next start');
    assert.match(plan.stderr, new RegExp(`restarted container ${app}: the killed run \\(pid ${p.pid}, run [0-9a-f]{8}\\) had stopped it`));

    const appOriginal = await snapshot(appVol);
    await expectRun(['backup', '--config', ws.config, '--job', 'app']);
    assert.equal(await isRunning(app), true);
    await restoresIdentical(ws.config, 'app', copies[1]!, appOriginal, { hashesOnly: true });
  });

  it('in the middle of a restore, before the live data changed: the next start removes the staging dir, the live volume is exactly as before, status does not claim a partial restore, a re-run completes', async () => {
    await inVolume(vol, 'echo changed > /v/d/f; rm /v/numbers');
    const live = await snapshot(vol);
    const p = await killAt('restore-stream:1048576', ['restore', '--config', ws.config, '--job', 'data', '--id', firstId]);

    const killed = await snapshot(vol);
    assert.ok(Object.keys(killed.entries).some((e) => e.startsWith(STAGE)), 'the half-extracted staging dir is there (an application reading the volume would see it)');
    assert.deepEqual(withoutStaging(killed), withoutStaging(live), 'the live content is untouched');

    const s = await snapagent(['status', '--config', ws.config, '--json']);
    assert.equal(s.code, 1, s.stdout);
    assert.match(s.stderr, new RegExp(`removed the staging directory \\${STAGE.slice(2)}${firstId} in volume ${vol} of the killed restore of job data`));
    assert.deepEqual(await snapshot(vol), live, 'the staging dir is gone and the volume is exactly as before the restore (its root mtime too)');
    const problem = s.json.problems.find((x: { where: string }) => x.where === 'restore of job data');
    assert.match(problem?.message ?? '', new RegExp(`restore of job data \\(backup ${firstId}\\) into volume ${vol}, started .*, was interrupted \\(agent pid ${p.pid} killed\\): before it changed the data there .*the data is as it was before the restore; run \`snapagent restore --job data --id ${firstId}\` again`));
    assert.doesNotMatch(problem.message, /partly restored/);
    const run = killedRunOf(s.stderr)!;
    assert.equal((await docker('ps', '-aq', '--filter', `label=snapagent.run=${run}`)).trim(), '', 'its restore helper is removed');
    assert.deepEqual(readdirSync(path.join(ws.dir, 'state', 'procs')), [], 'nothing left for the next start');

    // restored completely; no staging dir left
    await restoresIdentical(ws.config, 'data', vol, original, { id: firstId, inPlace: true });
    const fine = await snapagent(['status', '--config', ws.config, '--json']);
    assert.deepEqual(fine.json.problems, [], 'a successful restore clears the note');
  });
});
