// Bad input the config tests (test/unit/config.test.ts, volume-failures "bad
// configuration") do not cover: bad label values, an unknown plugin, jobs pointing at a
// missing or stopped container, an rclone remote rclone does not know, unknown --tier
// and --target, and corrupted or foreign manifests in the target. What must hold: each
// is a clear message naming what to fix, the other jobs of the same run still run and
// restore, and nothing unreadable in the target is ever trusted, listed or deleted.
// The labelled volumes and containers are the test's own; runs select them by a tier of
// this test's config, so labels elsewhere on the shared engine are never backed up.
import assert from 'node:assert/strict';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, containerJob, localTarget, rcloneTarget, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { docker, HELPER, removeContainer, removeVolume, requireDocker, SLEEPER, snapagent, uniq, backupIds } from '../helpers/harness.ts';
import { expectRun, jobResult, restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, type Snapshot } from '../helpers/tree.ts';

describe('bad input: labels, jobs, remotes, manifests', () => {
  const tier = `t${uniq('f').replace('-', '')}`;
  const good = uniq('sa-in-good');
  const badVolumes: Record<string, string[]> = {
    [uniq('sa-in-stop')]: ['snapagent.stop=maybe'],
    [uniq('sa-in-order')]: ['snapagent.order=first'],
    [uniq('sa-in-job')]: ['snapagent.job=bad name!'],
    [uniq('sa-in-plugin')]: ['snapagent.plugin=mariadb'],
  };
  const badContainer = uniq('sa-in-ctr');
  const stopped = uniq('sa-in-stopped');
  const missing = uniq('sa-in-missing');
  const copy = uniq('sa-in-copy');
  let ws: ConfigWorkspace;
  let original: Snapshot;
  let host: string;

  before(async () => {
    await requireDocker();
    original = await filledVolume(good, 'seq 1 100000 > /v/numbers; mkdir /v/d; echo ok > /v/d/f', ['--label', `snapagent.tier=${tier}`]);
    for (const [v, labels] of Object.entries(badVolumes)) await docker('volume', 'create', '--label', `snapagent.tier=${tier}`, ...labels.flatMap((l) => ['--label', l]), v);
    await docker('run', '-d', '--name', badContainer, '--network', 'none', '--label', 'snapagent.plugin=nosuch', '--label', `snapagent.tier=${tier}`, HELPER, ...SLEEPER);
    await docker('create', '--name', stopped, '--network', 'none', HELPER, ...SLEEPER);
    ws = config({
      tiers: { [tier]: { schedule: '0 5 * * *', keep: { last: 10 } } },
      jobs: [
        { name: 'weird', plugin: 'nosuch', volume: missing, tier },
        containerJob('ghost', 'mariadb', missing, { tier }),
        containerJob('asleep', 'mariadb', stopped, { tier }),
      ],
      discovery: { labels: true },
    });
  });

  after(async () => {
    for (const c of [badContainer, stopped]) await removeContainer(c);
    for (const v of [good, copy, ...Object.keys(badVolumes)]) await removeVolume(v);
    ws?.cleanup();
  });

  it('bad labels and an unknown plugin are named problems, missing and stopped containers fail their jobs clearly, the good job still runs and restores', async () => {
    const b = await snapagent(['backup', '--config', ws.config, '--tier', tier, '--json']);
    assert.equal(b.code, 1, b.stderr);
    const problems = Object.fromEntries(b.json.problems.map((p: { where: string; message: string }) => [p.where, p.message]));
    const [stopVol, orderVol, jobVol, pluginVol] = Object.keys(badVolumes);
    assert.match(problems[`volume ${stopVol}`], /label snapagent\.stop="maybe": expected true or false/);
    assert.match(problems[`volume ${orderVol}`], /label snapagent\.order="first": expected an integer/);
    assert.match(problems[`volume ${jobVol}`], /label snapagent\.job="bad name!": expected letters, digits/);
    assert.match(problems[`volume ${pluginVol}`], /label snapagent\.plugin="mariadb" on a volume: expected "volume" \(datastore plugins are set on containers\)/);
    assert.match(problems[`container ${badContainer}`], /label snapagent\.plugin="nosuch": expected one of volume, mariadb/);
    assert.match(problems[`${ws.config}: jobs[0]`], /plugin: unknown plugin "nosuch", expected one of /);

    const [ghost, asleep] = [jobResult(b, 'ghost'), jobResult(b, 'asleep')];
    assert.equal(jobResult(b, good).status, 'ok', 'the good labelled job ran');
    assert.match(ghost.error!, new RegExp(`job ghost: container "${missing}" does not exist`));
    assert.match(ghost.hint!, /fix the job's "container" key/);
    assert.match(asleep.error!, new RegExp(`job asleep: container "${stopped}" is not running \\(created\\)`));
    assert.match(asleep.hint!, new RegExp(`docker start ${stopped}`));
    assert.equal(b.json.results.length, 3, 'the bad ones never became jobs');

    await restoresIdentical(ws.config, good, copy, original, { hashesOnly: true });
  });

  it('unknown --tier, --target and --job: exit 2 naming what exists', async () => {
    const t = await snapagent(['backup', '--config', ws.config, '--tier', 'hourly']);
    assert.equal(t.code, 2);
    assert.match(t.stderr, /unknown tier "hourly"/);
    assert.match(t.stderr, new RegExp(`critical, medium, low, ${tier}`));
    const g = await snapagent(['backup', '--config', ws.config, '--target', 'offsite']);
    assert.equal(g.code, 2);
    assert.match(g.stderr, /unknown target "offsite"[\s\S]*configured targets: local/);
    const j = await snapagent(['backup', '--config', ws.config, '--job', 'nope']);
    assert.equal(j.code, 2);
    assert.match(j.stderr, /no job named "nope" in the plan/);
  });

  it('an rclone remote rclone does not know: that target fails at once saying what to fix, the local one gets the backup', async () => {
    const w = config((w) => ({ targets: [localTarget(w), rcloneTarget('nowhere', 'nosuchremote:backups')], jobs: [volumeJob('data', good)] }));
    const b = await snapagent(['backup', '--config', w.config, '--json']);
    w.cleanup();
    assert.equal(b.code, 1, b.stderr);
    const res = b.json.results[0];
    const nowhere = res.targets.find((t: { target: string }) => t.target === 'nowhere');
    assert.match(nowhere.error, /target nowhere \(rclone nosuchremote:backups\): creating the target directory failed: .*didn't find section in config file/);
    assert.equal(res.targets.find((t: { target: string }) => t.target === 'local').status, 'ok');
    assert.match(b.stderr, /fix the rclone configuration of nosuchremote \(rclone\.conf or RCLONE_CONFIG_NOSUCHREMOTE_\* env vars\)/);
    assert.doesNotMatch(b.stderr, /trying again/);
  });

  it('corrupted and foreign manifests are named and ignored: never listed, restored or deleted; the good backup restores', async () => {
    host = readdirSync(ws.backups)[0]!;
    const jobDir = path.join(ws.backups, host, good);
    const [goodId] = backupIds(jobDir);
    const fake = (id: string, manifest: string) => {
      cpSync(path.join(jobDir, goodId!), path.join(jobDir, id), { recursive: true });
      writeFileSync(path.join(jobDir, id, 'manifest.json'), manifest);
      return `${host}/${good}/${id}/manifest.json`;
    };
    // all newer than the good one: "latest" would pick them if they were trusted
    const broken = fake(`20990101T000000Z-${tier}`, '{ "format": "snapagent.manifest/1", "id": ');
    const foreign = fake(`20990102T000000Z-${tier}`, JSON.stringify({ format: 'restic.snapshot/2', time: '2099-01-02' }));
    const moved = fake(`20990103T000000Z-${tier}`, readFileSync(path.join(jobDir, goodId!, 'manifest.json'), 'utf8'));

    const l = await snapagent(['list', '--config', ws.config, '--job', good, '--json']);
    assert.equal(l.code, 0, l.stderr);
    assert.deepEqual(l.json.backups.map((b: { id: string }) => b.id), [goodId]);
    assert.match(l.stderr, new RegExp(`"key":"${broken}","msg":"ignoring invalid manifest: .*JSON`));
    assert.match(l.stderr, new RegExp(`"key":"${foreign}","msg":"ignoring invalid manifest: not a snapagent.manifest/1 manifest: format: `));
    assert.match(l.stderr, new RegExp(`"key":"${moved}","msg":"ignoring invalid manifest: manifest host/job/id do not match its location"`));

    await removeVolume(copy);
    // latest is the newest valid backup
    await restoresIdentical(ws.config, good, copy, original, { hashesOnly: true });
    const bad = await snapagent(['restore', '--config', ws.config, '--job', good, '--id', `20990102T000000Z-${tier}`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, new RegExp(`job "${good}" has no committed backup "20990102T000000Z-${tier}"`));

    await expectRun(['backup', '--config', ws.config, '--job', good]);
    for (const k of [broken, foreign, moved]) assert.ok(existsSync(path.join(ws.backups, k)), `${k} is left for a person to look at`);
  });
});
