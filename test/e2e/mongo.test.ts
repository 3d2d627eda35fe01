// The mongo plugin against a real MongoDB-wire server (FerretDB with mongodump and
// mongorestore in the container, official-image conventions), what the plugin contract
// suite (test/contract/mongo.test.ts) does not cover: what the manifest records of
// collections and indexes; --force over a live collection; one collection into another
// database; another container; a wrong password; mongodump dying. Small data: FerretDB
// is slow to load, and size proves nothing here.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BSON, type MongoClient } from 'mongodb';
import { docker, requireDocker, snapagent, workspace, type Workspace } from '../helpers/harness.ts';
import { MONGO_IMAGE, shopEvent, startMongo, type Mongo } from '../helpers/mongo.ts';

const USER = 'root';
const SECRET = 'M0ngo-s3cret/with:@chars';
const BIG = 3000;

async function seed(client: MongoClient): Promise<void> {
  const events = client.db('shop').collection('events');
  for (let i = 0; i < BIG; i += 1000) {
    await events.insertMany(Array.from({ length: 1000 }, (_, k) => shopEvent(i + k)), { ordered: false });
  }
  await events.createIndex({ at: 1 }, { name: 'by_at' });
  await events.createIndex({ tags: 1, n: -1 }, { name: 'by_tags_n' });
  const users = client.db('shop').collection('users');
  await users.insertMany(Array.from({ length: 500 }, (_, i) => ({ email: `user${i}@example.com`, name: `User ${i}`, joined: new Date(Date.UTC(2020, 0, 1 + i)) })));
  await users.createIndex({ email: 1 }, { name: 'email_unique', unique: true });
  const notes = client.db('blog').collection('posts');
  await notes.insertMany(Array.from({ length: 2000 }, (_, i) => ({ title: `Post ${i}`, body: 'lorem '.repeat(i % 50), votes: i % 13 })));
  await notes.createIndex({ votes: -1 }, { name: 'by_votes' });
}

/** Counts, index names and a sample of documents (canonical Extended JSON). */
async function fingerprint(client: MongoClient, map: Record<string, string> = {}): Promise<string> {
  const out: string[] = [];
  for (const ns of ['shop.events', 'shop.users', 'blog.posts']) {
    const [db, coll] = (map[ns] ?? ns).split('.') as [string, string];
    const c = client.db(db).collection(coll);
    const indexes = (await c.listIndexes().toArray()).map((i) => `${i.name}${i.unique ? '!' : ''}`).sort();
    const sample = await c.find({}, { sort: { _id: 1 } }).skip(97).limit(25).toArray();
    out.push(`${ns} ${await c.countDocuments({})} ${indexes.join(',')} ${BSON.EJSON.stringify(sample.map((d) => (ns === 'shop.events' ? d : { ...d, _id: undefined })), { relaxed: false })}`);
  }
  return out.join('\n');
}

describe('mongo plugin (FerretDB, mongodump/mongorestore in the container)', () => {
  let m: Mongo;
  let fresh: Mongo | undefined;
  let ws: Workspace;
  let original: string;

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', MONGO_IMAGE).catch(() => {
      throw new Error(`image ${MONGO_IMAGE} is missing: run \`make images\``);
    });
    m = await startMongo(USER, SECRET);
    await seed(m.client);
    original = await fingerprint(m.client);
    ws = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: docs, plugin: mongo, container: ${m.name} }
discovery: { labels: false }
state_dir: \${STATE}
`);
  });

  after(async () => {
    await m?.remove();
    await fresh?.remove();
    ws?.cleanup();
  });

  it('backs up: the manifest records each collection\'s documents and indexes', async () => {
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal(b.code, 0, b.stderr);
    const stats = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups[0].stats;
    assert.equal(stats.databases.shop.events.documents, BIG);
    assert.equal(stats.databases.shop.users.documents, 500);
    assert.equal(stats.databases.blog.posts.documents, 2000);
    assert.deepEqual(stats.databases.shop.users.indexes.find((i: { name: string }) => i.name === 'email_unique'), { name: 'email_unique', key: { email: 1 }, unique: true });
    assert.deepEqual(stats.databases.shop.events.indexes.map((i: { name: string }) => i.name), ['_id_', 'by_at', 'by_tags_n']);
    assert.equal(stats.oplog, false, 'a standalone server: no oplog');
    assert.ok(stats.server_version);
  });

  it('--force replaces a live collection (mongorestore --drop), leaving the others alone', async () => {
    await m.client.db('shop').collection('users').deleteMany({ name: /^User 1/ });
    await m.client.db('shop').collection('users').insertOne({ email: 'new@example.com', name: 'not in the backup' });
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'docs', '--database', 'shop', '--collection', 'users', '--force', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await fingerprint(m.client), original);
  });

  it('restores one collection into another database (--collection, --rename-to)', async () => {
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'docs', '--database', 'shop', '--collection', 'users', '--rename-to', 'archive.users_2024', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const copy = m.client.db('archive').collection('users_2024');
    assert.equal(await copy.countDocuments({}), 500);
    assert.ok((await copy.listIndexes().toArray()).some((i) => i.name === 'email_unique' && i.unique));
    assert.deepEqual((await m.client.db('archive').listCollections().toArray()).map((c) => c.name), ['users_2024'], 'only that collection');
  });

  it('restores into a fresh container with its own credentials (--to-container)', async () => {
    fresh = await startMongo('admin2', 'Another-pw-77');
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'docs', '--to-container', fresh.name, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await fingerprint(fresh.client), original);
  });

  it('a wrong password: clear error, nothing committed', async () => {
    const w = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: docs, plugin: mongo, container: ${m.name}, options: { password_env: WRONG_PW } }
discovery: { labels: false }
state_dir: \${STATE}
`);
    const r = await snapagent(['backup', '--config', w.config, '--json'], { WRONG_PW: 'not-the-password' });
    assert.equal(r.code, 1);
    assert.match(r.json.results[0].error, /cannot authenticate to MongoDB .* as root/);
    assert.match(r.json.results[0].hint, /password is wrong/);
    assert.equal((await snapagent(['list', '--config', w.config, '--json'])).json.backups.length, 0);
    w.cleanup();
  });

  it('mongodump killed: the backup fails and nothing is committed', async () => {
    const before = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups.length;
    // a watcher in the container kills mongodump as soon as it runs
    await docker('exec', '-d', m.name, 'sh', '-c', 'until pid=$(pidof mongodump); do sleep 0.01; done; kill -9 $pid; echo killed > /tmp/dump-killed');
    const r = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal((await docker('exec', m.name, 'cat', '/tmp/dump-killed')).trim(), 'killed', 'mongodump was seen and killed');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.json.results[0].error, /mongodump in .* failed|archive ended early/);
    assert.equal((await snapagent(['list', '--config', ws.config, '--json'])).json.backups.length, before);
  });
});
