// The mongo plugin against a replica-set member (the stand-in snapagent-test/mongo-rs:
// FerretDB with --replSet, its oplog in local.oplog.rs and a test-only applyOps): the
// dump takes --oplog while a writer inserts, updates and deletes; the manifest records
// the oplog window; a whole restore into the wiped server replays the oplog, so the
// data is exactly the writer's state as of the window's last entry (not as mongodump
// happened to read each document); a selective restore says it does not replay; a
// restore drill replays into a throwaway server.
// Standalone servers are covered by mongo.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BSON, type MongoClient, Timestamp } from 'mongodb';
import { docker, requireDocker, snapagent, workspace, type Workspace } from '../helpers/harness.ts';
import { MONGO_RS_IMAGE, shopEvent, startMongoReplicaSet, type Mongo } from '../helpers/mongo.ts';
import { canon, ledger, Writer, type LedgerDoc } from '../helpers/mongo-writer.ts';

const USER = 'root';
const SECRET = 'Rs-s3cret/with:@chars';
const EVENTS = 10_000;

/** Counts, indexes and a sample of the collections nobody writes during the backup. */
async function staticPrint(client: MongoClient): Promise<string> {
  const out: string[] = [];
  for (const [db, coll] of [['shop', 'events'], ['shop', 'users']] as const) {
    const c = client.db(db).collection(coll);
    const indexes = (await c.listIndexes().toArray()).map((i) => `${i.name}${i.unique ? '!' : ''}`).sort();
    const sample = await c.find({}, { sort: { _id: 1 } }).skip(1234 % (await c.countDocuments({}))).limit(20).toArray();
    out.push(`${db}.${coll} ${await c.countDocuments({})} ${indexes.join(',')} ${canon(sample)}`);
  }
  return out.join('\n');
}

describe('mongo plugin on a replica-set member (oplog stand-in)', () => {
  let m: Mongo;
  let ws: Workspace;
  let writer: Writer;
  let original: string;
  let asOf: number;
  let expected: string;
  const figures: Record<string, number> = {};

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', MONGO_RS_IMAGE).catch(() => {
      throw new Error(`image ${MONGO_RS_IMAGE} is missing: run \`make images\``);
    });
    m = await startMongoReplicaSet(USER, SECRET);
    const events = m.client.db('shop').collection('events');
    for (let i = 0; i < EVENTS; i += 1000) await events.insertMany(Array.from({ length: 1000 }, (_, k) => shopEvent(i + k)), { ordered: false });
    await events.createIndex({ at: 1 }, { name: 'by_at' });
    const users = m.client.db('shop').collection('users');
    await users.insertMany(Array.from({ length: 500 }, (_, i) => ({ email: `user${i}@example.com`, name: `User ${i}` })));
    await users.createIndex({ email: 1 }, { name: 'email_unique', unique: true });
    writer = new Writer(m.client);
    await writer.seedLedger();
    original = await staticPrint(m.client);
    ws = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: rs, plugin: mongo, container: ${m.name} }
discovery: { labels: false }
state_dir: \${STATE}
`);
  });

  after(async () => {
    await writer?.stop().catch(() => undefined);
    await m?.remove();
    ws?.cleanup();
    if (Object.keys(figures).length) console.log(`# figures: ${JSON.stringify(figures)}`);
  });

  it('dumps with --oplog while a writer inserts, updates and deletes; the manifest records the window', async () => {
    writer.start();
    // the writer is well under way before the dump starts, and goes on after it
    while (writer.ops.length < 50) await new Promise((r) => setTimeout(r, 20));
    const opsBefore = writer.ops.length;
    const started = Date.now();
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    const ended = Date.now();
    const opsAfter = writer.ops.length;
    while (writer.ops.length < opsAfter + 20) await new Promise((r) => setTimeout(r, 20));
    await writer.stop();
    assert.equal(b.code, 0, b.stdout + b.stderr);
    figures.backup_ms = ended - started;
    figures.writer_ops_during_backup = opsAfter - opsBefore;

    const stats = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups[0].stats;
    assert.equal(stats.replica_set, 'rs0');
    assert.equal(stats.oplog, true, 'a replica-set member is dumped with --oplog');
    assert.ok(stats.oplog_entries > 1, `the dump saw the writer's writes (${stats.oplog_entries} oplog entries)`);
    figures.oplog_entries = stats.oplog_entries;
    const w = stats.oplog_window;
    assert.ok(w && w.first && w.last, 'the oplog window is recorded');
    for (const p of [w.first, w.last]) assert.equal(p.time, new Date(p.t * 1000).toISOString());
    assert.ok(w.first.t < w.last.t || (w.first.t === w.last.t && w.first.i < w.last.i), 'first before last');
    assert.ok(w.first.t * 1000 >= started - 1000 && w.last.t * 1000 <= ended, 'the window lies within the backup');
    figures.window_seconds = w.last.t - w.first.t;

    // The window's last entry is one of the writer's operations: the restore must give
    // the state right after it.
    // Both ends are writer's operations: the newest before mongodump started, and the
    // last one it copied (the restore must give the state right after that one).
    const oplog = m.client.db('local').collection('oplog.rs');
    const [first, last] = await Promise.all([w.first, w.last].map((p) => oplog.findOne({ ts: new Timestamp({ t: p.t, i: p.i }) })));
    assert.ok(first && last, 'both ends of the window are in the server\'s oplog');
    assert.equal(last.ns, 'app.ledger');
    const from = writer.opOf(first as unknown as { op: string; o: BSON.Document });
    asOf = writer.opOf(last as unknown as { op: string; o: BSON.Document });
    assert.ok(opsBefore <= from && from < asOf && asOf < writer.ops.length, `the dump spans writer's operations ${from} to ${asOf} (${opsBefore} before the backup, ${writer.ops.length} in all)`);
    figures.window_ops = asOf - from;
  });

  it('a whole restore into the wiped server replays the oplog: the data as of the window\'s last entry', async () => {
    const finalState = canon(writer.state(Number.MAX_SAFE_INTEGER));
    expected = canon(writer.state(asOf));
    assert.notEqual(expected, finalState, 'the writer went on after the dump: the two states differ');
    for (const db of ['shop', 'app']) await m.client.db(db).dropDatabase();
    const started = Date.now();
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'rs', '--json']);
    figures.restore_ms = Date.now() - started;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const oplogStats = r.json.results[0].stats.oplog;
    assert.equal(oplogStats.replayed, true);
    assert.ok(oplogStats.entries >= 1);
    assert.equal(canon(await ledger(m.client)), expected, 'app.ledger is the writer\'s state right after the last oplog entry of the dump');
    assert.equal(await staticPrint(m.client), original);
    // the accounts were left alone: the root user still logs in, and no other appeared
    const users = await m.client.db('admin').command({ usersInfo: 1 });
    assert.deepEqual(users.users.map((u: { user: string }) => u.user), [USER]);
  });

  it('a selective restore does not replay the oplog, and says so', async () => {
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'rs', '--database', 'app', '--collection', 'ledger', '--rename-to', 'ledger_raw', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.json.results[0].stats.oplog.replayed, false);
    assert.match(r.json.results[0].stats.oplog.skipped, /selective restore/);
    assert.match(r.stdout + r.stderr, /oplog is not replayed/);
    // what mongodump read, document by document during the writes: not one point in time
    const raw = await m.client.db('app').collection<LedgerDoc>('ledger_raw').find({}, { sort: { _id: 1 } }).toArray();
    assert.ok(raw.length > 0);
    assert.notEqual(canon(raw), expected, 'without the oplog, the collection is not as of the dump\'s end point');
  });

  it('a restore drill (a throwaway server of the same image) replays the oplog too', async () => {
    const d = await snapagent(['verify', '--drill', '--config', ws.config, '--json']);
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.equal(d.stdout.includes(SECRET) || d.stderr.includes(SECRET), false, 'the password appears in no output');
  });
});
