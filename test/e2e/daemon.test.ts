// The daemon (`snapagent run`) with a moved clock (libfaketime): it catches up a missed
// slot once, fires the schedule, logs JSON lines, stops on SIGTERM with exit 0, and a
// SIGTERM in the middle of a job aborts it cleanly (nothing half-written stays, the slot
// runs again on the next start). The tier's drill schedule drills the latest backups.
// Then the backups restore identical.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { fakeClock, logLines, removeVolume, requireDocker, startSnapagent, uniq, type Running, backupIds } from '../helpers/harness.ts';
import { restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, type Snapshot } from '../helpers/tree.ts';

const HOST = 'sa-daemon';

describe('snapagent run (daemon)', () => {
  const small = uniq('sa-dmn-small');
  const big = uniq('sa-dmn-big');
  const restored = uniq('sa-dmn-restored');
  let ws: ConfigWorkspace;
  let daemon: Running | undefined;
  const originals: Record<string, Snapshot> = {};
  const ids = (job: string) => backupIds(path.join(ws.backups, HOST, job));
  const days = (job: string) => [...new Set(ids(job).map((id) => id.slice(0, 8)))];
  const start = (at: string) => (daemon = startSnapagent(['run', '--config', ws.config], fakeClock(at)));
  const tierDone = (slot: string) => (l: Record<string, any>) => l.tier === 'nightly' && l.slot === slot && /^tier run finished/.test(l.msg);
  async function stop(d: Running): Promise<void> {
    d.child.kill('SIGTERM');
    assert.equal(await d.exited, 0, d.output());
    assert.ok(logLines(d.output()).some((l) => l.msg === 'daemon stopped'));
    const text = d.output().trim().split('\n');
    assert.deepEqual(text.filter((l) => !l.startsWith('{')), [], 'every line is a JSON log line');
  }

  before(async () => {
    await requireDocker();
    originals.small = await filledVolume(small, 'seq 1 1000 > /v/n');
    // big enough that a SIGTERM lands while it is being copied
    originals.big = await filledVolume(big, 'head -c 200M /dev/urandom > /v/blob && seq 1 1000 > /v/n');
    ws = config({
      host: HOST,
      tiers: { nightly: { schedule: '0 0 * * *', keep: { daily: 30 }, drill: { schedule: '0 0 * * *' } } },
      jobs: [volumeJob('small', small, { tier: 'nightly' }), volumeJob('big', big, { tier: 'nightly' })],
    });
  });

  after(async () => {
    if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    for (const v of [small, big, restored]) await removeVolume(v);
    ws?.cleanup();
  });

  it('catches up the missed slot, fires at the next one, and stops on SIGTERM with exit 0', async () => {
    const d = start('2030-01-08 23:59:50');
    const started = await d.waitForLog((l) => l.msg === 'daemon started');
    assert.equal(started.tiers.nightly.next_run, '2030-01-09T00:00:00.000Z');
    const caught = await d.waitForLog((l) => l.msg === 'tier run started' && l.tier === 'nightly');
    assert.deepEqual([caught.slot, caught.reason], ['2030-01-08T00:00:00.000Z', 'catch-up']);
    assert.equal((await d.waitForLog(tierDone('2030-01-08T00:00:00.000Z'))).ok, true);
    const fired = await d.waitForLog((l) => l.msg === 'tier run started' && l.slot === '2030-01-09T00:00:00.000Z');
    assert.equal(fired.reason, 'schedule');
    assert.equal((await d.waitForLog(tierDone('2030-01-09T00:00:00.000Z'))).ok, true);
    // the tier's drill schedule fired at the same time: queued behind the backups, it
    // drills the backups just made
    const drills = await d.waitForLog((l) => l.msg === 'tier drills finished' && l.tier === 'nightly');
    assert.deepEqual([drills.drills, drills.failed], [2, []], d.output());
    await stop(d);
    for (const job of ['small', 'big']) {
      assert.deepEqual(ids(job), ['20300108T000000Z-nightly', '20300109T000000Z-nightly']);
      const rec = JSON.parse(readFileSync(path.join(ws.backups, HOST, job, '20300109T000000Z-nightly', 'drill.json'), 'utf8'));
      assert.equal(rec.status, 'ok');
    }
  });

  it('after downtime runs only the latest missed slot; SIGTERM mid-job aborts it cleanly and the slot runs again', async () => {
    let d = start('2030-01-12 10:00:00');
    await d.waitForLog((l) => l.msg === 'backup started' && l.job === 'big' && l.id === '20300112T000000Z-nightly');
    await stop(d);
    const failed = logLines(d.output()).filter((l) => /^backup failed/.test(l.msg)).map((l) => l.msg);
    assert.ok(failed.every((m) => m === 'backup failed: cancelled by SIGTERM'), failed.join('\n'));
    const files = readdirSync(ws.backups, { recursive: true }).map(String);
    assert.deepEqual(files.filter((f) => f.endsWith('.partial')), [], 'no partial upload left');
    for (const job of ['small', 'big']) {
      for (const id of ids(job)) assert.ok(files.includes(path.join(HOST, job, id, 'manifest.json')), `${job}/${id} is committed or gone`);
    }
    const state = JSON.parse(readFileSync(path.join(ws.state, 'schedule.json'), 'utf8'));
    assert.equal(state.tiers.nightly.slot, '2030-01-09T00:00:00.000Z', 'a cut-short run is not recorded');

    d = start('2030-01-12 11:00:00');
    const run = await d.waitForLog(tierDone('2030-01-12T00:00:00.000Z'));
    assert.equal(run.ok, true, d.output());
    await stop(d);
    const slots = logLines(d.output()).filter((l) => l.msg === 'tier run started' && l.tier === 'nightly').map((l) => l.slot);
    assert.deepEqual(slots, ['2030-01-12T00:00:00.000Z'], 'the 10th and 11th are not run');
    for (const job of ['small', 'big']) assert.deepEqual(days(job), ['20300108', '20300109', '20300112']);
  });

  it('the backups restore identical', async () => {
    // on the daemon's (moved) clock: a backup dated after the host's own "now" is refused as implausible
    const later = fakeClock('2030-01-13 00:00:00');
    await restoresIdentical(ws.config, 'big', restored, originals.big!, { env: later });
    await restoresIdentical(ws.config, 'small', restored, originals.small!, { id: '20300108T000000Z-nightly', env: later });
  });
});
