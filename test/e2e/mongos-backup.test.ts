// A backup of a job whose server is a mongos, through the real CLI: the agent's driver
// checks go to a FAKE mongos (test/helpers/fake-mongos.py on python3-mockupdb: no real
// sharded cluster can be had here), set as the job's host/port, while mongodump runs in
// a real container (FerretDB, no authentication: the fake has none) and dumps its data.
// That checks the wiring of plugins/mongo/balancer.ts into the backup: the balancer
// stopped before the dump and restarted after it, recorded in the manifest; a failed
// restart commits the good backup and fails the job; a SIGTERM mid-dump restarts it, and
// after a kill -9 mid-dump the next start of the agent does (plugins/mongo/repair.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { type Command, DRIVER_HOUSEKEEPING, type FakeMongos, startFakeMongos } from '../helpers/fake-mongos.ts';
import { runUntil } from '../helpers/faults.ts';
import { docker, removeContainer, removeVolume, requireDocker, snapagent, uniq, workspace, type Workspace } from '../helpers/harness.ts';
import { MONGO_IMAGE } from '../helpers/mongo.ts';
import { waitForServer } from '../helpers/wait.ts';

// ~16 MiB: the dump streams long enough for a SIGTERM to land in the middle of it.
const DOCS = 16_000;

const balancerCommands = (cmds: Command[]) => cmds.filter((c) => !DRIVER_HOUSEKEEPING.has(c.cmd) && c.cmd.startsWith('balancer')).map((c) => c.cmd);

describe('mongo plugin through a mongos (fake mongos, mongodump in a real container)', () => {
  const name = uniq('sa-mongos');
  const port = 29300 + Math.floor(Math.random() * 500);
  let client: MongoClient | undefined;
  const fakes: FakeMongos[] = [];
  const workspaces: Workspace[] = [];

  before(async () => {
    await requireDocker(MONGO_IMAGE);
    await docker('run', '-d', '--name', name, '--network', 'host', '-v', `${name}-db:/data/db`, MONGO_IMAGE, '--bind_ip', '127.0.0.1', '--port', String(port));
    client = new MongoClient(`mongodb://127.0.0.1:${port}/`, { directConnection: true, serverSelectionTimeoutMS: 2000 });
    await waitForServer(name, 'mongo', () => client!.db('admin').command({ ping: 1 }), { intervalMs: 300 });
    const items = client.db('shop').collection('items');
    for (let i = 0; i < DOCS; i += 1000) {
      await items.insertMany(Array.from({ length: 1000 }, (_, k) => ({ n: i + k, blob: randomBytes(768).toString('base64') })));
    }
  });

  after(async () => {
    for (const f of fakes) await f.stop();
    for (const w of workspaces) w.cleanup();
    await client?.close().catch(() => undefined);
    await removeContainer(name);
    await removeVolume(`${name}-db`);
  });

  async function setup(opts: Parameters<typeof startFakeMongos>[0]): Promise<{ fake: FakeMongos; ws: Workspace; commands: () => Promise<Command[]> }> {
    const fake = await startFakeMongos(opts);
    fakes.push(fake);
    const ws = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: cluster, plugin: mongo, container: ${name}, options: { host: 127.0.0.1, port: ${fake.port} } }
discovery: { labels: false }
state_dir: \${STATE}
`);
    workspaces.push(ws);
    return { fake, ws, commands: () => (fakes.splice(fakes.indexOf(fake), 1), fake.stop()) };
  }

  const listed = async (ws: Workspace) => (await snapagent(['list', '--config', ws.config, '--json'])).json.backups as { id: string; stats: Record<string, any> }[];

  it('stops the running balancer before the dump, restarts it after, and the manifest says so', async () => {
    const { ws, commands } = await setup({ balancer: 'full' });
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.deepEqual(balancerCommands(await commands()), ['balancerStatus', 'balancerStop', 'balancerStatus', 'balancerStart']);
    const [backup] = await listed(ws);
    const { stats } = backup!;
    assert.equal(stats.sharded, true);
    assert.equal(stats.oplog, false, 'no --oplog through a mongos');
    assert.equal(stats.balancer.was, 'full');
    assert.equal(stats.balancer.restarted, true);
    assert.ok(!Number.isNaN(Date.parse(stats.balancer.stopped_at)));
    assert.equal(stats.databases.shop.items.documents, DOCS, 'the dump itself came from the container');
    assert.match(b.stderr, /a mongos: no --oplog/);
  });

  it('leaves a balancer the operator turned off alone', async () => {
    const { ws, commands } = await setup({ balancer: 'off' });
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.deepEqual(balancerCommands(await commands()), ['balancerStatus']);
    assert.deepEqual((await listed(ws))[0]!.stats.balancer, { was: 'off', restarted: false });
  });

  it('a balancer that cannot be stopped: nothing is dumped, the job fails naming it', async () => {
    const { ws, commands } = await setup({ balancer: 'full', fail: ['balancerStop'] });
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.notEqual(b.code, 0);
    assert.match(b.json.results[0].error, /could not stop the balancer \(operation exceeded time limit\), it is running again; nothing was dumped/);
    assert.deepEqual(balancerCommands(await commands()), ['balancerStatus', 'balancerStop', 'balancerStart']);
    assert.deepEqual(await listed(ws), []);
  });

  it('a failed restart: the good backup is committed, the job fails naming the stopped balancer', async () => {
    const { ws, commands } = await setup({ balancer: 'full', fail: ['balancerStart'] });
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.notEqual(b.code, 0, 'alerts must fire: the cluster is left without its balancer');
    const r = b.json.results[0];
    assert.equal(r.status, 'failed');
    assert.match(r.error, /the balancer is stopped: restarting it after the dump failed .*; run sh\.startBalancer\(\)/);
    assert.match(r.hint, /the data of the dump is good/);
    assert.ok(r.targets.every((t: { status: string }) => t.status === 'ok'), JSON.stringify(r.targets));
    assert.match(b.stderr, /"level":40[^\n]*the balancer is stopped/, 'a warning in the log too');
    assert.deepEqual(balancerCommands(await commands()), ['balancerStatus', 'balancerStop', 'balancerStatus', 'balancerStart']);
    const [backup] = await listed(ws);
    assert.equal(backup!.id, r.id);
    assert.deepEqual({ ...backup!.stats.balancer, stopped_at: undefined }, { was: 'full', restarted: false, stopped_at: undefined });
  });

  it('a SIGTERM in the middle of the dump restarts the balancer before the agent exits; nothing is committed', async () => {
    const { ws, commands } = await setup({ balancer: 'full' });
    const p = await runUntil('backup-stream:1', ['backup', '--config', ws.config, '--json']);
    // delivered while the agent is frozen mid-stream: it takes effect as soon as it goes on
    process.kill(p.pid, 'SIGTERM');
    p.resume();
    const r = await p.result;
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /SIGTERM/);
    assert.deepEqual(balancerCommands(await commands()), ['balancerStatus', 'balancerStop', 'balancerStatus', 'balancerStart']);
    assert.deepEqual(await listed(ws), []);
  });

  it('a kill -9 in the middle of the dump: the next start of the agent restarts the balancer', async () => {
    const { ws, commands } = await setup({ balancer: 'full' });
    const p = await runUntil('backup-stream:1', ['backup', '--config', ws.config, '--json']);
    await p.kill();
    const next = await snapagent(['list', '--config', ws.config, '--json']);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /restarted the balancer of mongos 127\.0\.0\.1:\d+, stopped by the killed backup of job cluster/);
    assert.deepEqual(balancerCommands(await commands()), ['balancerStatus', 'balancerStop', 'balancerStatus', 'balancerStart']);
    // repaired once: a later start finds nothing to do
    const again = await snapagent(['list', '--config', ws.config, '--json']);
    assert.doesNotMatch(again.stderr, /balancer/);
  });
});
