// The cassandra plugin runs the plugin contract suite (test/contract/plugin-suite.ts)
// against one real Cassandra 5.0 node: clustering keys, collections, a UDT, a counter
// table, a secondary index and an empty table, a small seed. One keyspace, one table,
// another node with authentication on, a wrong password and a failed upload:
// test/e2e/cassandra.test.ts; a two-node ring: test/e2e/cassandra-ring.test.ts.
import cassandra from 'cassandra-driver';
import { CASSANDRA_IMAGE, startCassandra, type CassandraNode } from '../helpers/cassandra.ts';
import { cassandraFingerprint } from '../helpers/fingerprints.ts';
import { docker } from '../helpers/harness.ts';
import { runPluginSuite } from './plugin-suite.ts';

const TABLES = ['shop.customers', 'shop.orders', 'shop.visits', 'metrics.readings', 'metrics.spare'];
const SCHEMA = [
  "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
  'CREATE TYPE shop.address (street text, city text, zip int)',
  'CREATE TABLE shop.customers (id int PRIMARY KEY, name text, emails set<text>, addresses map<text, frozen<address>>)',
  'CREATE INDEX customers_name ON shop.customers (name)',
  `CREATE TABLE shop.orders (customer int, placed timestamp, id int, items list<text>, attrs map<text, int>, ship frozen<address>, total decimal,
     PRIMARY KEY ((customer), placed, id)) WITH CLUSTERING ORDER BY (placed DESC, id ASC)`,
  'CREATE TABLE shop.visits (page text PRIMARY KEY, hits counter)',
  "CREATE KEYSPACE metrics WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
  'CREATE TABLE metrics.readings (sensor text, day date, ts timeuuid, value double, PRIMARY KEY ((sensor, day), ts))',
  'CREATE TABLE metrics.spare (k int PRIMARY KEY, v text)',
];
let node: CassandraNode;

const run = (cql: string, params: unknown[] = []) => node.client.execute(cql, params, { prepare: true });

runPluginSuite({
  name: 'cassandra',
  images: [CASSANDRA_IMAGE],
  start: async () => void (node = await startCassandra()),
  job: () => ({ container: node.name }),
  container: () => node.name,
  seed: async () => {
    for (const s of SCHEMA) await node.client.execute(s);
    const { executeConcurrent } = cassandra.concurrent;
    const customers = Array.from({ length: 50 }, (_, i) => [i, i % 7 === 0 ? `Zoë ${i} 😀` : `customer ${i}`, i % 5 === 0 ? null : [`c${i}@example.com`],
      { home: { street: `${i} Main St`, city: i % 2 ? 'Lyon' : "O'Neil", zip: i % 3 ? 10000 + i : null } }]);
    await executeConcurrent(node.client, 'INSERT INTO shop.customers (id, name, emails, addresses) VALUES (?, ?, ?, ?)', customers);
    const orders = Array.from({ length: 200 }, (_, n) => [n % 50, new Date(Date.UTC(2024, 0, 1) + n * 60_000), n, [`item-${n % 13}`], { qty: n % 9 },
      { street: `${n} Side Rd`, city: 'Paris', zip: n }, cassandra.types.BigDecimal.fromString(`${n}.${n % 100}`)]);
    await executeConcurrent(node.client, 'INSERT INTO shop.orders (customer, placed, id, items, attrs, ship, total) VALUES (?, ?, ?, ?, ?, ?, ?)', orders);
    for (let i = 0; i < 5; i++) await run('UPDATE shop.visits SET hits = hits + ? WHERE page = ?', [cassandra.types.Long.fromNumber(i * 3 + 1), `/page/${i}`]);
    const readings = Array.from({ length: 100 }, (_, i) => [`sensor-${i % 4}`, cassandra.types.LocalDate.fromDate(new Date(Date.UTC(2024, 5, 1 + (i % 3)))),
      cassandra.types.TimeUuid.fromDate(new Date(Date.UTC(2024, 5, 1) + i * 1000), i), i % 11 === 0 ? null : i / 7]);
    await executeConcurrent(node.client, 'INSERT INTO metrics.readings (sensor, day, ts, value) VALUES (?, ?, ?, ?)', readings);
    return { 'shop.customers': 50, 'shop.orders': 200, 'shop.visits': 5, 'metrics.readings': 100, 'metrics.spare': 0 };
  },
  manifestCounts: (m) => Object.fromEntries(TABLES.map((t) => [t, m.stats.keyspaces[t.split('.')[0]!].tables[t.split('.')[1]!].rows])),
  liveCounts: async () => Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, (await run(`SELECT COUNT(*) FROM ${t}`)).first()!.count.toNumber()]))),
  // every row of every table, and the secondary index answering
  fingerprint: async () => {
    const out = await cassandraFingerprint(node.client, TABLES);
    out.index = await run("SELECT id FROM shop.customers WHERE name = 'customer 1'").then((r) => String(r.rowLength), () => 'no index');
    return out;
  },
  drop: async () => {
    await node.client.execute('DROP KEYSPACE shop');
    await node.client.execute('DROP KEYSPACE metrics');
  },
  inUse: {
    make: async () => {
      await node.client.execute(SCHEMA[6]!);
      await node.client.execute(SCHEMA[8]!);
      await run('INSERT INTO metrics.spare (k, v) VALUES (?, ?)', [1, 'after the backup']);
    },
    undo: async () => void (await node.client.execute('DROP KEYSPACE metrics')),
    refused: /table\(s\) metrics\.spare on .* hold data; nothing was changed/,
  },
  replaceFlags: ['--force'],
  secrets: { skip: 'the node runs without authentication here (wrong credentials: test/e2e/cassandra.test.ts)' },
  // a staging dir next to the data dir, a snapshot named after a backup id
  leftovers: async () => [
    ...(await docker('exec', node.name, 'ls', '-A', '/var/lib/cassandra')).split('\n').filter((n) => n.startsWith('snapagent')),
    ...(await node.snapshots()).filter((s) => /\/\d{8}T\d{6}Z-[^/]*$/.test(s)),
  ],
  stop: async () => node?.remove(),
});
