// Jobs from Docker labels, as an operator would set them: on volumes, on containers,
// with stop and order; bad labels become named problems without stopping other jobs.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { docker, HELPER, inVolume, isRunning, removeContainer, removeVolume, requireDocker, SLEEPER, snapagent, uniq } from '../helpers/harness.ts';
import { expectRun, restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, snapshot } from '../helpers/tree.ts';

/** A config whose jobs come from labels (and `jobs`). */
const LABELS = { discovery: { labels: true } } as const;


describe('discovery from labels', () => {
  const labelled = uniq('sa-lbl');
  const jobName = uniq('sa-lbl-job');
  const bogus = uniq('sa-lbl-bogus');
  const shared = uniq('sa-lbl-shared');
  const app = uniq('sa-lbl-app');
  const db = uniq('sa-lbl-db');
  let ws: ConfigWorkspace;

  before(async () => {
    await requireDocker();
    await docker('volume', 'create', '--label', 'snapagent.tier=medium', '--label', `snapagent.job=${jobName}`, labelled);
    await docker('volume', 'create', '--label', 'snapagent.tier=bogus', bogus);
    await filledVolume(shared, 'seq 1 50000 > /v/data; mkdir /v/sub; echo x > /v/sub/y');
    // the app (order 2) is stopped after the db (order 1) and restarted before it
    await docker('run', '-d', '--name', db, '--network', 'none', '--label', 'snapagent.order=1', '-v', `${shared}:/data`, HELPER, ...SLEEPER);
    await docker('run', '-d', '--name', app, '--network', 'none', '--label', 'snapagent.plugin=volume', '--label', 'snapagent.stop=true', '--label', 'snapagent.order=2', '--label', 'snapagent.tier=low', '-v', `${shared}:/data`, HELPER, ...SLEEPER);
    ws = config(LABELS);
  });

  after(async () => {
    await removeContainer(app);
    await removeContainer(db);
    for (const v of [labelled, bogus, shared]) await removeVolume(v);
    ws?.cleanup();
  });

  it('plans jobs from volume and container labels and names bad labels', async () => {
    const r = await snapagent(['plan', '--config', ws.config, '--json']);
    assert.equal(r.code, 2, 'a bad label is a configuration problem');
    const jobs = Object.fromEntries(r.json.jobs.map((j: { name: string }) => [j.name, j]));
    assert.equal(jobs[jobName]?.volume, labelled);
    assert.equal(jobs[jobName]?.tier, 'medium');
    assert.equal(jobs[shared]?.stop, true);
    assert.equal(jobs[shared]?.tier, 'low');
    assert.match(jobs[shared]?.reason, new RegExp(`container ${app}`));
    const problem = r.json.problems.find((p: { where: string }) => p.where === `volume ${bogus}`);
    assert.match(problem?.message ?? '', /label snapagent\.tier="bogus": expected one of critical, medium, low/);
  });

  it('stops the containers in order for the backup and always restarts them', async () => {
    await expectRun(['backup', '--config', ws.config, '--job', shared, '--json']);
    for (const c of [app, db]) assert.equal(await isRunning(c), true, `${c} restarted`);
    const finished = async (c: string) => Date.parse((await docker('inspect', '--format', '{{.State.FinishedAt}}', c)).trim());
    assert.ok((await finished(db)) < (await finished(app)), 'lower snapagent.order stops first');
    const started = async (c: string) => Date.parse((await docker('inspect', '--format', '{{.State.StartedAt}}', c)).trim());
    assert.ok((await started(app)) < (await started(db)), 'restart in reverse order');

    const original = await snapshot(shared);
    await inVolume(shared, 'rm -rf /v/sub; echo broken > /v/data');
    await restoresIdentical(ws.config, shared, shared, original, { inPlace: true, args: ['--stop'] });
    for (const c of [app, db]) assert.equal(await isRunning(c), true);
  });

  it('restarts the stopped containers when the backup fails', async () => {
    const fake = config({ ...LABELS, docker: { helper_image: 'snapagent-test/fake-failing-tar:latest' } });
    const b = await snapagent(['backup', '--config', fake.config, '--job', shared, '--json']);
    fake.cleanup();
    assert.equal(b.code, 1, b.stderr);
    assert.match(b.json.results[0].error, /injected failure/);
    for (const c of [app, db]) assert.equal(await isRunning(c), true, `${c} restarted after the failure`);
  });
});

// Any container on the host may set labels: a label claiming another job's name must not
// make its data that job's "latest", nor restore into that job's volume.
describe('a job name claimed twice', () => {
  const host = hostname().split('.')[0]!;
  const victim = uniq('sa-claim-victim');
  const victimVol = uniq('sa-claim-vv');
  const attackerVol = uniq('sa-claim-av');
  const attacker = uniq('sa-claim-attacker');
  const both = uniq('sa-claim-both');
  const volA = uniq('sa-claim-va');
  const volB = uniq('sa-claim-vb');
  let ws: ConfigWorkspace;

  before(async () => {
    await requireDocker();
    await filledVolume(victimVol, 'echo genuine > /v/data');
    await filledVolume(attackerVol, 'echo planted > /v/data');
    ws = config({ ...LABELS, jobs: [volumeJob(victim, victimVol)] });
    await expectRun(['backup', '--config', ws.config, '--job', victim, '--json']);
    // now the attacker: a container label claims the config job's name, and two volume labels claim one name
    await docker('run', '-d', '--name', attacker, '--network', 'none', '--label', 'snapagent.plugin=volume', '--label', `snapagent.job=${victim}`, '-v', `${attackerVol}:/data`, HELPER, ...SLEEPER);
    await docker('volume', 'create', '--label', `snapagent.job=${both}`, volA);
    await docker('volume', 'create', '--label', `snapagent.job=${both}`, volB);
  });

  after(async () => {
    await removeContainer(attacker);
    for (const v of [victimVol, attackerVol, volA, volB]) await removeVolume(v);
    ws?.cleanup();
  });

  it('is a plan problem naming every claimant, and no job', async () => {
    const r = await snapagent(['plan', '--config', ws.config, '--json']);
    assert.equal(r.code, 2, r.stderr);
    const names = r.json.jobs.map((j: { name: string }) => j.name);
    assert.ok(!names.includes(victim) && !names.includes(both), `contested names planned: ${names}`);
    const p1 = r.json.problems.find((p: { message: string }) => p.message.includes(`"${victim}"`));
    assert.match(p1?.message ?? '', /claimed 2 times/);
    assert.match(p1.message, /jobs\[0\]/);
    assert.match(p1.message, new RegExp(`container ${attacker}`));
    const p2 = r.json.problems.find((p: { message: string }) => p.message.includes(`"${both}"`));
    assert.match(p2?.message ?? '', new RegExp(`volume ${volA}.*volume ${volB}|volume ${volB}.*volume ${volA}`));
  });

  it('backs up nothing under a contested name', async () => {
    const before = readdirSync(path.join(ws.backups, host, victim)).sort();
    const all = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.notEqual(all.code, 0);
    assert.ok(!all.json.results.some((r: { job: string }) => r.job === victim || r.job === both));
    assert.ok(all.json.problems.some((p: { message: string }) => p.message.includes(`"${victim}"`)));
    const one = await snapagent(['backup', '--config', ws.config, '--job', victim, '--json']);
    assert.notEqual(one.code, 0);
    assert.deepEqual(readdirSync(path.join(ws.backups, host, victim)).sort(), before, 'a new backup appeared under the contested name');
    assert.equal(existsSync(path.join(ws.backups, host, both)), false);
  });

  it('restores nothing under a contested name', async () => {
    await inVolume(victimVol, 'echo changed > /v/data');
    const r = await snapagent(['restore', '--config', ws.config, '--job', victim, '--json']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stdout + r.stderr, /claimed 2 times/);
    assert.equal((await inVolume(victimVol, 'cat /v/data')).trim(), 'changed');
    assert.equal((await inVolume(attackerVol, 'cat /v/data')).trim(), 'planted');
  });
});
