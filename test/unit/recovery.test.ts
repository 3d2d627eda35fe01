// Killed runs as the next start sees them: process records (agent/runtime/inflight.ts) whose
// process is gone are repaired once, even by two agents starting together; a record of
// a live process is left alone; what needs an unreachable Docker stays for later; a
// restore killed before it changed live data is told apart from one killed during the
// change; what a plugin recorded it would have to undo goes to its repairKilled (every
// backup's, a restore's only before live data changed), checked again before use: the
// Cassandra snapshot of a killed backup, the staged repository of a killed
// Elasticsearch restore.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { parseConfigText } from '../../agent/config/load.ts';
import { connectDocker, type DockerClient } from '../../agent/docker/client.ts';
import { log } from '../../agent/log.ts';
import type { DatastorePlugin, KilledWork, PluginContext, PluginRegistry } from '../../agent/plugin/contract.ts';
import { interruptedRestores, PROC_FORMAT, processAlive, repairSchema, stageSchema, type ProcRecord } from '../../agent/runtime/inflight.ts';
import { readJobState } from '../../agent/observe/run-state.ts';
import { interruptedMessage, pluginRepairs, recoverKilledRuns, restoreUndone } from '../../agent/runtime/recovery.ts';
import { plugins } from '../../plugins/index.ts';
import { clearKilledSnapshot, recordedSnapshot } from '../../plugins/cassandra/repair.ts';
import { CLEAR } from '../../plugins/cassandra/scripts.ts';
import { recordedStage, removeKilledStage } from '../../plugins/elasticsearch/repair.ts';
import type { EsOptions } from '../../plugins/elasticsearch/options.ts';
import { MOUNT, REMOVE } from '../../plugins/elasticsearch/scripts.ts';

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
    await Promise.all([recoverKilledRuns({ config: s.config, docker: s.docker, registry: plugins }), recoverKilledRuns({ config: s.config, docker: s.docker, registry: plugins })]);
    const st = await readJobState(s.config.stateDir, 'h1', 'db');
    assert.equal(st?.last_status, 'failed');
    assert.equal(st?.run, 'deadbeef');
    assert.equal(st?.failures_in_a_row, 1, 'recorded once');
    assert.match(st?.last_error ?? '', new RegExp(`^killed: the agent \\(pid ${deadPid}, run deadbeef\\) was killed during this backup \\(20260101T020001Z-critical\\)`));
    assert.equal(st?.targets.local?.status, 'failed');
    const notes = await interruptedRestores(s.config.stateDir, 'h1');
    assert.deepEqual(notes.map((n) => [n.job, n.id, n.destination, n.pid]), [['files', '20251231T020000Z-critical', 'volume files', deadPid]]);
    assert.deepEqual(readdirSync(s.procs), []);

    await recoverKilledRuns({ config: s.config, docker: s.docker, registry: plugins });
    assert.equal((await readJobState(s.config.stateDir, 'h1', 'db'))?.failures_in_a_row, 1, 'nothing left to repair');
  });

  it('a later run recorded meanwhile is not overwritten by the killed one', async () => {
    const s = setup();
    spaces.push(s);
    mkdirSync(path.join(s.config.stateDir, 'runs'));
    const later = { format: 'snapagent.run-state/1', host: 'h1', job: 'db', plugin: 'mariadb', tier: 'critical', run: 'cafe0001', last_attempt_at: '2026-01-02T02:00:00.000Z', last_status: 'ok', last_duration_seconds: 3, failures_in_a_row: 0, targets: {} };
    writeFileSync(path.join(s.config.stateDir, 'runs', 'h1--db.json'), JSON.stringify(later));
    s.write(s.record({ work: [{ kind: 'backup', job: 'db', plugin: 'mariadb', tier: 'critical', since: '2026-01-01T02:00:01.000Z', targets: [] }] }));
    await recoverKilledRuns({ config: s.config, docker: s.docker, registry: plugins });
    assert.equal((await readJobState(s.config.stateDir, 'h1', 'db'))?.last_status, 'ok');
  });

  it('leaves a live process alone; keeps stopped containers for the next start while Docker cannot be reached', async () => {
    const s = setup();
    spaces.push(s);
    s.write(s.record({ run: 'a11ve000', pid: process.pid, work: [{ kind: 'backup', job: 'x', plugin: 'volume', tier: 'critical', since: '2026-01-01T02:00:00.000Z', targets: [] }] }));
    s.write(s.record({ stopped: [{ id: 'c0ffee', name: 'app', at: '2026-01-01T02:00:03.000Z' }] }));
    await recoverKilledRuns({ config: s.config, docker: s.docker, registry: plugins });
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
    await recoverKilledRuns({ config: s.config, docker: s.docker, registry: plugins });
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

  it('hands what a plugin recorded to its repairKilled: every backup\'s, a restore\'s only before live data changed; keeps what it could not do for the next start', async () => {
    const s = setup();
    spaces.push(s);
    const calls: KilledWork[] = [];
    const answers: Record<string, boolean | Error> = { done: true, later: false, broken: new Error('no answer'), staged: true };
    const fake: DatastorePlugin = {
      ...plugins.volume!,
      name: 'fake',
      async repairKilled(_ctx, killed) {
        calls.push(killed);
        const a = answers[killed.job]!;
        if (a instanceof Error) throw a;
        return a;
      },
    };
    const registry: PluginRegistry = { ...plugins, fake, plain: { ...plugins.volume!, name: 'plain' } };
    const work = (kind: 'backup' | 'restore', job: string, over: object = {}) => ({ kind, job, plugin: 'fake', tier: 'critical', since: '2026-01-01T02:00:01.000Z', id: '20260101T020001Z-critical', targets: [], repair: { thing: job }, ...over });
    s.write(
      s.record({
        work: [
          work('backup', 'done'),
          work('backup', 'later'),
          work('backup', 'broken', { id: 'not an id' }),
          work('restore', 'staged'),
          work('restore', 'changing', { live: true }),
          work('backup', 'noplugin', { plugin: 'plain' }),
        ],
      }),
    );
    await recoverKilledRuns({ config: s.config, docker: s.docker, registry });
    assert.deepEqual(calls.map((c) => [c.kind, c.job, c.id, c.data.thing]), [
      ['backup', 'done', '20260101T020001Z-critical', 'done'],
      ['backup', 'later', '20260101T020001Z-critical', 'later'],
      ['backup', 'broken', undefined, 'broken'],
      ['restore', 'staged', '20260101T020001Z-critical', 'staged'],
    ], 'not the restore that changed live data; an id that is no backup id is not handed on');
    const notes = await interruptedRestores(s.config.stateDir, 'h1');
    assert.deepEqual(notes.map((n) => [n.job, n.untouched]), [['changing', undefined], ['staged', true]]);
    const kept = JSON.parse(readFileSync(path.join(s.procs, 'deadbeef.json'), 'utf8')) as ProcRecord;
    assert.deepEqual(kept.work.map((w) => [w.job, w.repair?.thing]), [['later', 'later'], ['broken', 'broken']], 'tried again at the next start');
    assert.deepEqual(kept.stopped, []);
    for (const job of ['done', 'later', 'broken', 'noplugin']) assert.equal((await readJobState(s.config.stateDir, 'h1', job))?.failures_in_a_row, 1, job);

    answers.later = true;
    answers.broken = true;
    calls.length = 0;
    await recoverKilledRuns({ config: s.config, docker: s.docker, registry });
    assert.deepEqual(calls.map((c) => c.job), ['later', 'broken']);
    assert.deepEqual(readdirSync(s.procs), [], 'nothing left to do');
    for (const job of ['later', 'broken']) assert.equal((await readJobState(s.config.stateDir, 'h1', job))?.failures_in_a_row, 1, `${job}: reported once`);
  });

  it('decides which killed work the plugin repairs and when a restore left the data as it was', () => {
    assert.equal(pluginRepairs({ kind: 'backup' }), true);
    assert.equal(pluginRepairs({ kind: 'backup', live: true }), true);
    assert.equal(pluginRepairs({ kind: 'restore' }), true);
    assert.equal(pluginRepairs({ kind: 'restore', live: true }), false);
    const stage = { kind: 'volume' as const, volume: 'v', dir: '.snapagent-restore-20251231T020000Z' };
    assert.equal(restoreUndone({}, undefined, undefined), false, 'nothing staged or recorded: unknown');
    assert.equal(restoreUndone({ stage }, true, undefined), true);
    assert.equal(restoreUndone({ stage }, false, undefined), false);
    assert.equal(restoreUndone({ repair: { a: 'b' } }, undefined, true), true);
    assert.equal(restoreUndone({ repair: { a: 'b' } }, undefined, false), false);
    assert.equal(restoreUndone({ stage, repair: { a: 'b' } }, true, false), false);
    assert.equal(restoreUndone({ stage, repair: { a: 'b' }, live: true }, true, true), false);
  });

  it('records only plain values for a plugin\'s repair', () => {
    assert.equal(repairSchema.safeParse({ container: 'db', snapshot: '20260101T020001Z-critical' }).success, true);
    for (const bad of [{ container: 1 }, { Container: 'x' }, { 'a b': 'x' }, { cmd: ['rm', '-rf'] }, { x: 'y'.repeat(5000) }, Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${String.fromCharCode(97 + i)}`, 'v']))]) {
      assert.equal(repairSchema.safeParse(bad).success, false, JSON.stringify(bad).slice(0, 80));
    }
  });
});

/** A Docker client that answers from `containers`/`volumes` and records what it is asked to run. */
function fakeDocker(containers: Record<string, { running: boolean }>, volumes: string[] = []) {
  const ran: { where: string; cmd: string[]; mounts?: unknown }[] = [];
  const done = () => {
    const stdout = new PassThrough();
    stdout.end();
    return { stdout, done: Promise.resolve({ exitCode: 0, stderr: '' }), kill: async () => undefined };
  };
  const docker = {
    inspectContainer: async (name: string) => (containers[name] ? { name, running: containers[name].running } : undefined),
    inspectVolume: async (name: string) => (volumes.includes(name) ? { name } : undefined),
    exec: async (where: string, spec: { cmd: string[] }) => (ran.push({ where, cmd: spec.cmd }), done()),
    runHelper: async (spec: { cmd: string[]; mounts: unknown }) => (ran.push({ where: 'helper', cmd: spec.cmd, mounts: spec.mounts }), { id: 'h', ...done() }),
  } as unknown as DockerClient;
  const ctx: PluginContext = { docker, log, signal: new AbortController().signal, helperImage: 'helper:test', host: 'h1' };
  return { ctx, ran };
}

describe('repair of a killed Cassandra backup: its snapshot', () => {
  const ID = '20260101T020001Z-critical';
  const killed = (data: Record<string, string>, over: Partial<KilledWork> = {}): KilledWork => ({ kind: 'backup', job: 'cass', id: ID, data, ...over });

  it('accepts only a Docker container name and the backup\'s own id as the tag', () => {
    assert.deepEqual(recordedSnapshot(killed({ container: 'cass-1', snapshot: ID })), { container: 'cass-1', tag: ID });
    assert.deepEqual(recordedSnapshot(killed({ container: 'cass-1', snapshot: ID }, { id: undefined })), { container: 'cass-1', tag: ID });
    for (const [data, over, why] of [
      [{ container: 'cass-1', snapshot: '20260101T020002Z-critical' }, {}, /not the backup's id/],
      [{ container: 'cass-1', snapshot: '-h' }, {}, /not a backup id/],
      [{ container: 'cass-1', snapshot: `${ID} x` }, {}, /not a backup id/],
      [{ container: '-cass', snapshot: ID }, {}, /not a Docker container name/],
      [{ container: 'a/b', snapshot: ID }, {}, /not a Docker container name/],
      [{ snapshot: ID }, {}, /not a Docker container name/],
      [{ container: 'cass-1', snapshot: ID, cmd: 'rm -rf /' }, {}, /unexpected values \(cmd\)/],
      [{ container: 'cass-1', snapshot: ID }, { kind: 'restore' }, /not a backup/],
    ] as const) assert.match(String(recordedSnapshot(killed(data, over))), why, JSON.stringify(data));
  });

  it('clears it in the running container; keeps it for the next start while the container is stopped; refuses a bad record without asking Docker', async () => {
    const live = fakeDocker({ 'cass-1': { running: true } });
    assert.equal(await clearKilledSnapshot(live.ctx, killed({ container: 'cass-1', snapshot: ID })), true);
    assert.deepEqual(live.ran, [{ where: 'cass-1', cmd: ['sh', '-c', CLEAR, 'snapagent', ID] }]);

    const stopped = fakeDocker({ 'cass-1': { running: false } });
    assert.equal(await clearKilledSnapshot(stopped.ctx, killed({ container: 'cass-1', snapshot: ID })), false);
    assert.deepEqual(stopped.ran, []);

    const gone = fakeDocker({});
    assert.equal(await clearKilledSnapshot(gone.ctx, killed({ container: 'cass-1', snapshot: ID })), true);
    assert.deepEqual(gone.ran, []);

    const bad = fakeDocker({ 'cass-1': { running: true } });
    assert.equal(await clearKilledSnapshot(bad.ctx, killed({ container: 'cass-1', snapshot: '--all' })), true, 'refused: dropped');
    assert.deepEqual(bad.ran, []);
  });
});

describe('repair of a killed Elasticsearch restore: its staged repository', () => {
  const ID = '20260101T020001Z-critical';
  const sfx = `-restore-${ID.toLowerCase()}`;
  const good = { container: 'es-1', volume: 'es-snapshots', subpath: `snapagent${sfx}`, location: `/usr/share/elasticsearch/snapshots/snapagent${sfx}` };
  const killed = (data: Record<string, string>, over: Partial<KilledWork> = {}): KilledWork<EsOptions> => ({ kind: 'restore', job: 'es', id: ID, data, ...over, planned: undefined });

  it('accepts only Docker names and a directory (and repository) named after the restored backup', () => {
    assert.deepEqual(recordedStage(killed(good)), good);
    assert.deepEqual(recordedStage(killed({ ...good, repository: `snapagent${sfx}` })), { ...good, repository: `snapagent${sfx}` });
    assert.equal(typeof recordedStage(killed({ ...good, subpath: `repos/snapagent${sfx}`, location: `/snap/repos/snapagent${sfx}` })), 'object', 'a location deeper in the volume');
    for (const [data, over, why] of [
      [{ ...good, subpath: 'snapagent', location: '/usr/share/elasticsearch/snapshots/snapagent' }, {}, /not named <location>-restore-/],
      [{ ...good, subpath: sfx.slice(1), location: `/usr/share/elasticsearch/snapshots/${sfx.slice(1)}` }, {}, /not named/],
      [{ ...good, subpath: `snapagent-restore-20260101t020002z-critical`, location: '/usr/share/elasticsearch/snapshots/snapagent-restore-20260101t020002z-critical' }, {}, /not named/],
      [{ ...good, subpath: `../snapagent${sfx}` }, {}, /not a plain path/],
      [{ ...good, subpath: `/snapagent${sfx}` }, {}, /not a plain path/],
      [{ ...good, subpath: `a//snapagent${sfx}` }, {}, /not a plain path/],
      [{ ...good, subpath: `./snapagent${sfx}` }, {}, /not a plain path/],
      [{ ...good, subpath: `x\nsnapagent${sfx}` }, {}, /not a plain path/],
      [{ ...good, location: `/elsewhere/other${sfx}` }, {}, /location is not the staged directory/],
      [{ ...good, location: `/usr/share/../share/elasticsearch/snapshots/snapagent${sfx}` }, {}, /location is not/],
      [{ ...good, location: `snapshots/snapagent${sfx}` }, {}, /location is not/],
      [{ ...good, volume: '../v' }, {}, /volume is not a Docker volume name/],
      [{ ...good, container: '' }, {}, /container is not/],
      [{ ...good, repository: 'snapagent' }, {}, /repository is not named/],
      [{ ...good, repository: `Snap${sfx}` }, {}, /repository is not named/],
      [{ ...good, extra: 'x' }, {}, /unexpected values \(extra\)/],
      [good, { id: undefined }, /backup is not known/],
      [good, { kind: 'backup' }, /not a restore/],
    ] as const) assert.match(String(recordedStage(killed(data, over))), why, JSON.stringify(data));
  });

  it('removes the staged directory through a helper container; keeps the record while the container that may hold its registration is stopped; refuses a bad record without asking Docker', async () => {
    const stopped = fakeDocker({ 'es-1': { running: false } }, ['es-snapshots']);
    assert.equal(await removeKilledStage(stopped.ctx, killed(good)), true, 'nothing registered yet: the directory alone');
    assert.deepEqual(stopped.ran, [{ where: 'helper', cmd: ['sh', '-c', REMOVE, 'snapagent', MOUNT, good.subpath], mounts: [{ volume: 'es-snapshots', target: MOUNT, readOnly: false }] }]);

    const registered = fakeDocker({ 'es-1': { running: false } }, ['es-snapshots']);
    assert.equal(await removeKilledStage(registered.ctx, killed({ ...good, repository: `snapagent${sfx}` })), false);
    assert.deepEqual(registered.ran, []);

    const noVolume = fakeDocker({}, []);
    assert.equal(await removeKilledStage(noVolume.ctx, killed({ ...good, repository: `snapagent${sfx}` })), true, 'container and volume gone: nothing left');
    assert.deepEqual(noVolume.ran, []);

    const bad = fakeDocker({ 'es-1': { running: true } }, ['es-snapshots']);
    assert.equal(await removeKilledStage(bad.ctx, killed({ ...good, subpath: '.', location: '/usr/share/elasticsearch/snapshots' })), true, 'refused: dropped');
    assert.deepEqual(bad.ran, []);
  });
});
