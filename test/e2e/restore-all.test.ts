// Point-in-time restores: `--before T` takes, for each job, the newest backup at or
// before T, with --all (a job with nothing that old is skipped and said so) and with
// --job; the summary carries each job's plugin and recovery time. And a whole-host
// restore whose compose stack does not start: the volumes are back, the run fails
// saying why.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { docker, inVolume, removeVolume, requireDocker, snapagent, uniq } from '../helpers/harness.ts';
import { expectRun, statuses } from '../helpers/runs.ts';
import { filledVolume, snapshot, type Snapshot } from '../helpers/tree.ts';

describe('restore --before', () => {
  const a = uniq('sa-pit-a');
  const b = uniq('sa-pit-b');
  let ws: ConfigWorkspace;

  before(async () => {
    await requireDocker();
    await docker('volume', 'create', a);
    // keep every backup: the default retention keeps one a day
    ws = config({ tiers: { critical: { schedule: '0 2 * * *', keep: { last: 10 } } }, jobs: [volumeJob('a', a), volumeJob('b', b)] });
  });

  after(async () => {
    await removeVolume(a);
    await removeVolume(b);
    ws?.cleanup();
  });

  it('restores the newest backup at or before a time, per job and for the whole host', async () => {
    await inVolume(a, 'echo first > /v/state && seq 1 5000 > /v/n');
    const first: Snapshot = await snapshot(a);
    await expectRun(['backup', '--config', ws.config, '--job', 'a', '--json']);
    const t1 = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups[0].finished_at as string;
    await new Promise((r) => setTimeout(r, 1100)); // backup ids have one-second resolution
    await inVolume(a, 'echo second > /v/state && rm /v/n');
    const second = await snapshot(a);
    await docker('volume', 'create', b);
    await inVolume(b, 'echo b > /v/only-later');
    await expectRun(['backup', '--config', ws.config, '--json']);

    // the whole host as of t1: a's first backup; b did not exist yet
    await inVolume(a, 'echo damaged > /v/state');
    const all = await expectRun(['restore', '--config', ws.config, '--all', '--before', t1, '--force', '--json']);
    assert.deepEqual(all.json.results.map((r: { job: string; plugin: string; status: string }) => `${r.job} ${r.plugin} ${r.status}`), ['a volume ok']);
    assert.ok(all.json.results[0].rto_seconds > 0 && all.json.rto_seconds >= all.json.results[0].rto_seconds);
    assert.equal(all.json.before, new Date(t1).toISOString());
    assert.deepEqual(all.json.skipped.map((k: { job: string }) => k.job), ['b']);
    assert.deepEqual(await snapshot(a), first);

    // one job, with and without --before; the human summary
    const one = await expectRun(['restore', '--config', ws.config, '--job', 'a', '--force']);
    assert.match(one.stdout, /^JOB\s+PLUGIN\s+ID\s+STATUS\s+RTO\s+DETAIL\n/);
    assert.match(one.stdout, /\na\s+volume\s+\d{8}T\d{6}Z-critical\s+ok\s+\d+\.\d s\s+volume sa-pit-a/);
    assert.deepEqual(await snapshot(a), second);
    await expectRun(['restore', '--config', ws.config, '--job', 'a', '--before', t1, '--force', '--json']);
    assert.deepEqual(await snapshot(a), first);

    // nothing that old: a usage error that says what the oldest is; nothing changed
    const early = await expectRun(['restore', '--config', ws.config, '--job', 'a', '--before', '2001-01-01T00:00:00Z', '--force'], {}, 2);
    assert.match(early.stderr, /job "a" has no committed backup at or before 2001-01-01T00:00:00.000Z/);
    assert.match(early.stderr, /next: its oldest is \d{8}T\d{6}Z-critical/);
    const bad = await snapagent(['restore', '--config', ws.config, '--all', '--before', 'last tuesday']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--before "last tuesday": expected an ISO 8601 time/);
    const both = await snapagent(['restore', '--config', ws.config, '--job', 'a', '--id', 'x', '--before', t1]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--before and --id exclude each other/);
    assert.deepEqual(await snapshot(a), first);
  });
});

describe('restore --all with a compose stack that does not start', () => {
  const vol = uniq('sa-stack');
  let ws: ConfigWorkspace;
  let original: Snapshot;

  before(async () => {
    await requireDocker();
    original = await filledVolume(vol, 'seq 1 3000 > /v/n', ['--label', 'keep=me']);
    ws = config({ jobs: [volumeJob('v', vol)], compose: { file: 'broken-compose.yml', project: vol } });
    writeFileSync(path.join(ws.dir, 'broken-compose.yml'), 'version: "2.4"\nservices:\n  app:\n    image: snapagent/helper:latest\n    not_a_compose_key: 1\n');
  });

  after(async () => {
    await removeVolume(vol);
    ws?.cleanup();
  });

  it('restores the volumes, then fails naming the compose error', async () => {
    await expectRun(['backup', '--config', ws.config]);
    await docker('volume', 'rm', vol);
    const r = await snapagent(['restore', '--config', ws.config, '--all', '--json']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(r.json.ok, false);
    assert.deepEqual(statuses(r), ['v ok']);
    assert.match(r.json.stack.error, /^starting the stack failed \(docker-compose -f .*broken-compose\.yml -p sa-stack-\w+ up -d\): .*not_a_compose_key/);
    assert.deepEqual(await snapshot(vol), original);
    assert.match(await docker('volume', 'inspect', '--format', '{{ index .Labels "keep" }}', vol), /^me\n/, 'recreated with its labels');
    const human = await snapagent(['restore', '--config', ws.config, '--all', '--force']);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /\nTOTAL\s+failed\s+\d+\.\d s\s+1 of 1 jobs restored and verified; the stack did not start: starting the stack failed/);
  });
});
