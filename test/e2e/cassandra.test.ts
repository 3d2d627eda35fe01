// The cassandra plugin against real Cassandra 5.0 nodes, what the plugin contract suite
// (test/contract/cassandra.test.ts) does not cover: what the manifest records of the node
// and its tables; the snapshot cleared after every backup, also when the upload fails
// (rclone's own --max-transfer limit); one keyspace; one table; an unknown keyspace; onto
// a second, fresh node with authentication on (zero configuration: the default
// superuser); a wrong password, never written anywhere.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import cassandra from 'cassandra-driver';
import { docker, requireDocker, snapagent, workspace, type Workspace } from '../helpers/harness.ts';
import { CASSANDRA_IMAGE, startCassandra, tableDigest, type CassandraNode } from '../helpers/cassandra.ts';

const SECRET = 'Wr0ng-cql-Pw-for-tests';
const CUSTOMERS = 100;
const ORDERS_PER_CUSTOMER = 10;
const READINGS = 2000;

const SCHEMA = [
  "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
  'CREATE TYPE shop.address (street text, city text, zip int)',
  'CREATE TABLE shop.customers (id int PRIMARY KEY, name text, emails set<text>, addresses map<text, frozen<address>>)',
  'CREATE INDEX customers_name ON shop.customers (name)',
  `CREATE TABLE shop.orders (customer int, placed timestamp, id int, items list<text>, tags set<text>, attrs map<text, int>, ship frozen<address>, total decimal,
     PRIMARY KEY ((customer), placed, id)) WITH CLUSTERING ORDER BY (placed DESC, id ASC)`,
  'CREATE TABLE shop.visits (page text PRIMARY KEY, hits counter)',
  "CREATE KEYSPACE metrics WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1} AND durable_writes = true",
  'CREATE TABLE metrics.readings (sensor text, day date, ts timeuuid, value double, flags list<int>, PRIMARY KEY ((sensor, day), ts))',
  'CREATE TABLE metrics.spare (k int PRIMARY KEY, v text)',
];
const TABLES = ['shop.customers', 'shop.orders', 'shop.visits', 'metrics.readings', 'metrics.spare'];

async function load(client: cassandra.Client): Promise<void> {
  for (const s of SCHEMA) await client.execute(s);
  const { executeConcurrent } = cassandra.concurrent;
  const customers = Array.from({ length: CUSTOMERS }, (_, i) => [
    i,
    i % 7 === 0 ? `Zoë ${i} 😀` : `customer ${i}`,
    i % 5 === 0 ? null : [`c${i}@example.com`, `alt${i}@example.org`],
    { home: { street: `${i} Main St`, city: i % 2 ? 'Lyon' : 'Oslo', zip: 10000 + i }, ...(i % 3 ? {} : { work: { street: "O'Neil Ave", city: 'Kyoto', zip: null } }) },
  ]);
  await executeConcurrent(client, 'INSERT INTO shop.customers (id, name, emails, addresses) VALUES (?, ?, ?, ?)', customers, { concurrencyLevel: 64 });
  const orders: unknown[][] = [];
  for (let c = 0; c < CUSTOMERS; c++) {
    for (let o = 0; o < ORDERS_PER_CUSTOMER; o++) {
      const n = c * ORDERS_PER_CUSTOMER + o;
      orders.push([c, new Date(Date.UTC(2024, 0, 1) + n * 60_000), o, [`item-${n % 13}`, `item-${n % 17}`], n % 4 ? ['gift'] : ['gift', 'rush'], { qty: n % 9, rank: o }, { street: `${n} Side Rd`, city: 'Paris', zip: n % 99999 }, cassandra.types.BigDecimal.fromString(`${n}.${n % 100}`)]);
    }
  }
  await executeConcurrent(client, 'INSERT INTO shop.orders (customer, placed, id, items, tags, attrs, ship, total) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', orders, { concurrencyLevel: 128 });
  for (let i = 0; i < 20; i++) await client.execute('UPDATE shop.visits SET hits = hits + ? WHERE page = ?', [cassandra.types.Long.fromNumber(i * 3 + 1), `/page/${i}`], { prepare: true });
  const readings = Array.from({ length: READINGS }, (_, i) => [
    `sensor-${i % 40}`,
    cassandra.types.LocalDate.fromDate(new Date(Date.UTC(2024, 5, 1 + (i % 30)))),
    cassandra.types.TimeUuid.fromDate(new Date(Date.UTC(2024, 5, 1) + i * 1000), i % 10000),
    i % 11 === 0 ? null : i / 7,
    [i % 3, i % 5],
  ]);
  await executeConcurrent(client, 'INSERT INTO metrics.readings (sensor, day, ts, value, flags) VALUES (?, ?, ?, ?, ?)', readings, { concurrencyLevel: 128 });
}

async function digest(client: cassandra.Client, tables = TABLES): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of tables) out[t] = await tableDigest(client, t);
  return out;
}

function everything(ws: Workspace, outputs: string[]): string {
  const files = readdirSync(ws.dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.json'));
  return outputs.join('\n') + files.map((f) => readFileSync(path.join(f.parentPath, f.name), 'utf8')).join('\n');
}

const logged = (stderr: string, msg: string) => stderr.split('\n').filter((l) => l.includes(`"msg":"${msg}"`));

describe('cassandra plugin (real Cassandra 5.0)', () => {
  let node: CassandraNode;
  let fresh: CassandraNode | undefined;
  let ws: Workspace;
  let original: Record<string, string>;
  const outputs: string[] = [];

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', CASSANDRA_IMAGE).catch(() => {
      throw new Error(`image ${CASSANDRA_IMAGE} is missing: run \`make images\``);
    });
    node = await startCassandra();
    await load(node.client);
    original = await digest(node.client);
    ws = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: ring, plugin: cassandra, container: ${node.name} }
discovery: { labels: false }
state_dir: \${STATE}
`);
  });

  after(async () => {
    await node?.remove();
    await fresh?.remove();
    ws?.cleanup();
  });

  it('backs up: the snapshot is cleared; the manifest records the node and every table', async () => {
    assert.equal(original['shop.orders']!.split(' ')[0], String(CUSTOMERS * ORDERS_PER_CUSTOMER));
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    outputs.push(b.stdout, b.stderr);
    assert.equal(b.code, 0, b.stderr);
    const id = b.json.results[0].id;
    assert.equal(logged(b.stderr, 'snapshot taken').length, 1);
    assert.equal(logged(b.stderr, 'snapshot cleared').length, 1);
    assert.deepEqual((await node.snapshots()).filter((s) => s.endsWith(`/${id}`)), [], 'the snapshot is cleared from the node');
    const m = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups[0];
    const s = m.stats;
    assert.equal(s.snapshot, id, 'the snapshot tag is the backup id');
    assert.equal(s.cassandra_version, '5.0.9');
    assert.match(s.node.host_id, /^[0-9a-f-]{36}$/);
    assert.equal(s.node.datacenter, 'datacenter1');
    assert.equal(s.node.rack, 'rack1');
    assert.ok(s.node.tokens.length >= 1);
    assert.equal(s.ring_nodes, 1);
    assert.deepEqual(Object.keys(s.keyspaces).sort(), ['metrics', 'shop']);
    assert.equal(s.keyspaces.shop.tables.orders.rows, CUSTOMERS * ORDERS_PER_CUSTOMER);
    assert.equal(s.keyspaces.shop.tables.customers.rows, CUSTOMERS);
    assert.equal(s.keyspaces.metrics.tables.readings.rows, READINGS);
    assert.equal(s.keyspaces.metrics.tables.spare.rows, 0);
    assert.equal(s.tables, 5);
    assert.equal(s.rows, CUSTOMERS * ORDERS_PER_CUSTOMER + CUSTOMERS + 20 + READINGS);
  });

  it('restores one keyspace, leaving the other alone', async () => {
    await node.client.execute('DROP KEYSPACE metrics');
    await node.client.execute("INSERT INTO shop.customers (id, name) VALUES (999999, 'after the backup')");
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'ring', '--database', 'metrics', '--json']);
    outputs.push(r.stdout, r.stderr);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await tableDigest(node.client, 'metrics.readings'), original['metrics.readings']);
    assert.equal((await node.client.execute('SELECT id FROM shop.customers WHERE id = 999999')).rowLength, 1, 'shop was not touched');
  });

  it('restores one table into its truncated self; an unknown keyspace is a usage error', async () => {
    await node.client.execute('TRUNCATE shop.orders');
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'ring', '--database', 'shop', '--collection', 'orders', '--json']);
    outputs.push(r.stdout, r.stderr);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await tableDigest(node.client, 'shop.orders'), original['shop.orders']);
    const bad = await snapagent(['restore', '--config', ws.config, '--job', 'ring', '--database', 'nope', '--json']);
    assert.equal(bad.code, 2);
    assert.match(bad.json.results[0].error, /no keyspace "nope"/);
  });

  it('restores onto a fresh node with authentication on (zero configuration)', async () => {
    fresh = await startCassandra({ auth: true });
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'ring', '--to-container', fresh.name, '--json']);
    outputs.push(r.stdout, r.stderr);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(await digest(fresh.client), original);
  });

  it('a wrong CQL password: clear error, nothing changed', async () => {
    const w = workspace(`
targets: [{ name: local, type: local, path: ${ws.backups} }]
jobs:
  - { name: ring, plugin: cassandra, container: ${node.name}, options: { user: cassandra, password_env: CQL_PW } }
discovery: { labels: false }
state_dir: ${path.join(ws.dir, 'state')}
`); // the state dir (and so the signing key) of the host that made the backups
    await fresh!.client.execute('DROP KEYSPACE metrics');
    const r = await snapagent(['restore', '--config', w.config, '--job', 'ring', '--to-container', fresh!.name, '--json'], { CQL_PW: SECRET });
    outputs.push(r.stdout, r.stderr);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.json.results[0].error, /cannot connect to Cassandra at 127\.0\.0\.1:\d+ as cassandra/);
    assert.match(r.json.results[0].hint, /credentials were refused/);
    assert.match(await tableDigest(fresh!.client, 'metrics.readings'), /^missing/);
    w.cleanup();
  });

  it('the upload fails mid-stream: nothing committed, the snapshot is cleared', async () => {
    const w = workspace(`
targets: [{ name: small, type: rclone, remote: "small:${ws.dir}/small" }]
jobs:
  - { name: ring, plugin: cassandra, container: ${node.name} }
discovery: { labels: false }
state_dir: \${STATE}
`);
    // rclone's own quota: it stops the upload after 8 KiB (a real rclone failure, no fake)
    const env = { RCLONE_CONFIG_SMALL_TYPE: 'local', RCLONE_MAX_TRANSFER: '8K', RCLONE_CUTOFF_MODE: 'HARD' };
    const r = await snapagent(['backup', '--config', w.config, '--json'], env);
    outputs.push(r.stdout, r.stderr);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.json.results[0].error, /target small .*: uploading .*snapshot\.tar\.zst failed/);
    assert.equal(logged(r.stderr, 'snapshot taken').length, 1);
    assert.equal(logged(r.stderr, 'snapshot cleared').length, 1);
    const id = r.json.results[0].id;
    assert.deepEqual((await node.snapshots()).filter((s) => s.endsWith(`/${id}`)), []);
    assert.equal((await snapagent(['list', '--config', w.config, '--json'], env)).json.backups.length, 0);
    w.cleanup();
  });

  it('never writes the password into output, logs or manifests', () => {
    assert.ok(!everything(ws, outputs).includes(SECRET));
  });
});
