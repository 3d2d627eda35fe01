// Killed runs as the next start sees them: process records (agent/runtime/inflight.ts) whose
// process is gone are repaired once, even by two agents starting together; a record of
// a live process is left alone; what needs an unreachable Docker stays for later; a
// restore killed before it changed live data is told apart from one killed during the change.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfigText } from '../../agent/config/load.ts';
import { connectDocker } from '../../agent/docker/client.ts';
import { interruptedRestores, PROC_FORMAT, processAlive, stageSchema, type ProcRecord } from '../../agent/runtime/inflight.ts';
import { readJobState } from '../../agent/observe/run-state.ts';
import { interruptedMessage, recoverKilledRuns } from '../../agent/runtime/recovery.ts';

// A pid that no process has any more: a child that already exited.
const deadPid = spawnSync('true').pid!;

function setup() {
  const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-recovery-'));
  const config = parseConfigText(`host: h1\nstate_dir: ${dir}/state\ntargets: [{ name: local, type: local, path: ${dir}/backups }]\n`, 'f.yml');
  const docker = connectDocker({ socket: path.join(dir, 'no-docker.sock'), transfer: 'attach', pipeDir: path.join(dir, 'pipes') });
  const procs = path.join(config.stateDir, 'procs');
  mkdirSync(procs, { recursive: true });
  const record = (over: Partial<ProcRecord>): ProcRecord => ({
    format: PROC_FORMAT,
    run: 'deadbeef',
    pid: deadPid,
    since: '2026-01-01T02:00:00.000Z',
    command: 'backup',
    host: 'h1',
    work: [],
    stopped: [],
    ...over,
  });
  const write = (r: ProcRecord) => writeFileSync(path.join(procs, `${r.run}.json`), JSON.stringify(r));
  return { dir, config, docker, procs, record, write, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('recovery after killed runs', () => {
  const spaces: { cleanup(): void }[] = [];
  after(() => spaces.forEach((s) => s.cleanup()));

  it('tells a live process from a gone one (pid, start time, boot)', () => {
    assert.equal(processAlive({ pid: process.pid }), true);
    assert.equal(processAlive({ pid: deadPid }), false);
    assert.equal(processAlive({ pid: process.pid, start: '1' }), false, 'same pid, another start time: reused');
    assert.equal(processAlive({ pid: process.pid, boot: 'another-boot' }), false);
  });

  it('a killed backup is recorded failed once, a killed restore leaves a note, the record goes (even with two agents starting at once)', async () => {
    const s = setup();
    spaces.push(s);
    s.write(
      s.record({
        work: [
          { kind: 'backup', job: 'db', plugin: 'mariadb', tier: 'critical', since: '2026-01-01T02:00:01.000Z', id: '20260101T020001Z-critical', targets: ['local'] },
          { kind: 'restore', job: 'files', plugin: 'volume', tier: 'critical', since: '2026-01-01T02:00:02.000Z', id: '20251231T020000Z-critical', destination: 'volume files', targets: ['local'] },
        ],
      }),
    );
    await Promise.all([recoverKilledRuns(s.config, s.docker), recoverKilledRuns(s.config, s.docker)]);
    const st = await readJobState(s.config.stateDir, 'h1', 'db');
    assert.equal(st?.last_status, 'failed');
    assert.equal(st?.run, 'deadbeef');
    assert.equal(st?.failures_in_a_row, 1, 'recorded once');
    assert.match(st?.last_error ?? '', new RegExp(`^killed: the agent \\(pid ${deadPid}, run deadbeef\\) was killed during this backup \\(20260101T020001Z-critical\\)`));
    assert.equal(st?.targets.local?.status, 'failed');
    const notes = await interruptedRestores(s.config.stateDir, 'h1');
    assert.deepEqual(notes.map((n) => [n.job, n.id, n.destination, n.pid]), [['files', '20251231T020000Z-critical', 'volume files', deadPid]]);
    assert.deepEqual(readdirSync(s.procs), []);

    await recoverKilledRuns(s.config, s.docker);
    assert.equal((await readJobState(s.config.stateDir, 'h1', 'db'))?.failures_in_a_row, 1, 'nothing left to repair');
  });

  it('a later run recorded meanwhile is not overwritten by the killed one', async () => {
    const s = setup();
    spaces.push(s);
    mkdirSync(path.join(s.config.stateDir, 'runs'));
    const later = { format: 'snapagent.run-state/1', host: 'h1', job: 'db', plugin: 'mariadb', tier: 'critical', run: 'cafe0001', last_attempt_at: '2026-01-02T02:00:00.000Z', last_status: 'ok', last_duration_seconds: 3, failures_in_a_row: 0, targets: {} };
    writeFileSync(path.join(s.config.stateDir, 'runs', 'h1--db.json'), JSON.stringify(later));
    s.write(s.record({ work: [{ kind: 'backup', job: 'db', plugin: 'mariadb', tier: 'critical', since: '2026-01-01T02:00:01.000Z', targets: [] }] }));
    await recoverKilledRuns(s.config, s.docker);
    assert.equal((await readJobState(s.config.stateDir, 'h1', 'db'))?.last_status, 'ok');
  });

  it('leaves a live process alone; keeps stopped containers for the next start while Docker cannot be reached', async () => {
    const s = setup();
    spaces.push(s);
    s.write(s.record({ run: 'a11ve000', pid: process.pid, work: [{ kind: 'backup', job: 'x', plugin: 'volume', tier: 'critical', since: '2026-01-01T02:00:00.000Z', targets: [] }] }));
    s.write(s.record({ stopped: [{ id: 'c0ffee', name: 'app', at: '2026-01-01T02:00:03.000Z' }] }));
    await recoverKilledRuns(s.config, s.docker);
    assert.deepEqual(readdirSync(s.procs).sort(), ['a11ve000.json', 'deadbeef.json']);
    const kept = JSON.parse(readFileSync(path.join(s.procs, 'deadbeef.json'), 'utf8')) as ProcRecord;
    assert.deepEqual(kept.stopped.map((c) => c.name), ['app'], 'to restart once Docker answers');
    assert.equal(await readJobState(s.config.stateDir, 'h1', 'x'), undefined);
  });

  it('a restore killed while changing live data keeps the "partly restored" note; one killed while staging keeps its staging dir to remove while Docker cannot be reached', async () => {
    const s = setup();
    spaces.push(s);
    const restore = { kind: 'restore' as const, plugin: 'volume', tier: 'critical', since: '2026-01-01T02:00:02.000Z', id: '20251231T020000Z-critical', targets: ['local'] };
    s.write(
      s.record({
        work: [
          { ...restore, job: 'swapping', destination: 'volume a', stage: { kind: 'volume', volume: 'a', dir: '.snapagent-restore-20251231T020000Z-critical' }, live: true },
          { ...restore, job: 'staging', destination: 'volume b', stage: { kind: 'volume', volume: 'b', dir: '.snapagent-restore-20251231T020000Z-critical' } },
        ],
      }),
    );
    await recoverKilledRuns(s.config, s.docker);
    const notes = await interruptedRestores(s.config.stateDir, 'h1');
    assert.deepEqual(notes.map((n) => [n.job, n.untouched]), [['staging', undefined], ['swapping', undefined]]);
    for (const n of notes) assert.match(interruptedMessage(n), /may be partly restored/);
    const kept = JSON.parse(readFileSync(path.join(s.procs, 'deadbeef.json'), 'utf8')) as ProcRecord;
    assert.deepEqual(kept.work.map((w) => w.job), ['staging'], 'its staging dir is removed once Docker answers');
  });

  it('says the data is as it was for a restore whose staging dir was removed', () => {
    const msg = interruptedMessage({ job: 'files', id: 'X', destination: 'volume files', since: 'then', pid: 7, untouched: true });
    assert.match(msg, /was interrupted \(agent pid 7 killed\): before it changed the data there .*as it was before the restore; run `snapagent restore --job files --id X` again/);
    assert.doesNotMatch(msg, /partly/);
  });

  it('records only staging places named like a restore stage', () => {
    assert.equal(stageSchema.safeParse({ kind: 'volume', volume: 'v', dir: '.snapagent-restore-20251231T020000Z' }).success, true);
    assert.equal(stageSchema.safeParse({ kind: 'container', container: 'c', path: '/var/lib/cassandra/snapagent-restore-20251231T020000Z' }).success, true);
    for (const bad of [
      { kind: 'volume', volume: 'v', dir: '.' },
      { kind: 'volume', volume: 'v', dir: '../x/.snapagent-restore-1' },
      { kind: 'volume', volume: 'v', dir: 'data' },
      { kind: 'container', container: 'c', path: '/var/lib/cassandra' },
      { kind: 'container', container: 'c', path: '/a/../snapagent-restore-1' },
      { kind: 'container', container: 'c', path: 'snapagent-restore-1' },
    ]) assert.equal(stageSchema.safeParse(bad).success, false, JSON.stringify(bad));
  });
});
