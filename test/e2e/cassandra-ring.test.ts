// The cassandra plugin on a two-node ring (real Cassandra 5.0 nodes on 127.0.0.1 and
// 127.0.0.2, racks r1 and r2): one job per node, backed up by one `backup --tier` run,
// share the schedule slot's snapshot tag; each manifest records its node (host id,
// tokens, datacenter, rack); the keyspaces are dropped cluster-wide and `restore --all`
// brings every row back, node after node (the second node is not refused for the rows
// the first one restored: the occupancy check is the node's own).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import cassandra from 'cassandra-driver';
import { docker, requireDocker, snapagent, workspace, type Workspace } from '../helpers/harness.ts';
import { CASSANDRA_IMAGE, startCassandra, tableDigest, type CassandraNode } from '../helpers/cassandra.ts';

const TABLES = ['spread.events', 'spread.tags', 'copies.events'];
const ROWS = 3000;

async function load(client: cassandra.Client): Promise<void> {
  // spread: one replica per row (each node holds its own share); copies: every node holds all
  await client.execute("CREATE KEYSPACE spread WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 1}");
  await client.execute("CREATE KEYSPACE copies WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 2}");
  await client.execute('CREATE TYPE spread.origin (host text, port int)');
  for (const ks of ['spread', 'copies']) {
    await client.execute(`CREATE TABLE ${ks}.events (sensor int, ts timestamp, value double, labels map<text, text>, PRIMARY KEY ((sensor), ts)) WITH CLUSTERING ORDER BY (ts DESC)`);
  }
  await client.execute('CREATE TABLE spread.tags (name text PRIMARY KEY, seen set<int>, origin frozen<origin>)');
  const events = Array.from({ length: ROWS }, (_, i) => [i % 300, new Date(Date.UTC(2025, 0, 1) + i * 1000), i / 3, { k: `v${i % 7}` }]);
  for (const ks of ['spread', 'copies']) {
    await cassandra.concurrent.executeConcurrent(client, `INSERT INTO ${ks}.events (sensor, ts, value, labels) VALUES (?, ?, ?, ?)`, events, { concurrencyLevel: 64 });
  }
  const tags = Array.from({ length: 500 }, (_, i) => [`tag-${i}`, [i, i + 1], { host: `h${i % 9}`, port: 9000 + i }]);
  await cassandra.concurrent.executeConcurrent(client, 'INSERT INTO spread.tags (name, seen, origin) VALUES (?, ?, ?)', tags, { concurrencyLevel: 64 });
}

describe('cassandra plugin on a two-node ring', () => {
  let a: CassandraNode;
  let b: CassandraNode;
  let ws: Workspace;
  const original: Record<string, string> = {};

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', CASSANDRA_IMAGE).catch(() => {
      throw new Error(`image ${CASSANDRA_IMAGE} is missing: run \`make images\``);
    });
    a = await startCassandra({ rack: 'r1' });
    b = await startCassandra({ rack: 'r2', join: { seed: a, address: '127.0.0.2' } });
    await load(a.client);
    for (const t of TABLES) original[t] = await tableDigest(a.client, t);
    ws = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: node-a, plugin: cassandra, container: ${a.name}, tier: critical }
  - { name: node-b, plugin: cassandra, container: ${b.name}, tier: critical }
discovery: { labels: false }
state_dir: \${STATE}
`);
  });

  after(async () => {
    await b?.remove();
    await a?.remove();
    ws?.cleanup();
  });

  it('backs up both nodes under one snapshot tag, drops the keyspaces, restores every row', async () => {
    assert.match(original['spread.events']!, new RegExp(`^${ROWS} `));
    const run = await snapagent(['backup', '--config', ws.config, '--tier', 'critical', '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const [ra, rb] = ['node-a', 'node-b'].map((j) => run.json.results.find((r: { job: string }) => r.job === j));
    assert.equal(ra.id, rb.id, 'both nodes are backed up under the schedule slot\'s id');
    const listed = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups;
    const ma = listed.find((m: { job: string }) => m.job === 'node-a').stats;
    const mb = listed.find((m: { job: string }) => m.job === 'node-b').stats;
    assert.equal(ma.snapshot, ra.id);
    assert.equal(mb.snapshot, ra.id, 'one snapshot tag across the ring');
    assert.notEqual(ma.node.host_id, mb.node.host_id);
    assert.deepEqual([ma.node.rack, mb.node.rack], ['r1', 'r2']);
    assert.deepEqual([ma.node.datacenter, mb.node.datacenter], ['datacenter1', 'datacenter1']);
    assert.deepEqual([ma.node.address, mb.node.address], ['127.0.0.1', '127.0.0.2']);
    assert.equal(ma.ring_nodes, 2);
    assert.ok(ma.node.tokens.length >= 1 && mb.node.tokens.length >= 1);
    assert.equal(new Set([...ma.node.tokens, ...mb.node.tokens]).size, ma.node.tokens.length + mb.node.tokens.length, 'each node records its own tokens');
    for (const n of [a, b]) assert.deepEqual(await n.snapshots(), [], `no snapshot left on ${n.name}`);
    // each node's snapshot holds its share of the spread keyspace, and all of copies
    const rows = (m: typeof ma, t: string) => m.keyspaces[t.split('.')[0]!].tables[t.split('.')[1]!].files;
    assert.ok(rows(ma, 'spread.events') > 0 && rows(mb, 'spread.events') > 0, 'both nodes hold SSTables of spread.events');

    await a.client.execute('DROP KEYSPACE spread');
    await a.client.execute('DROP KEYSPACE copies');
    const r = await snapagent(['restore', '--config', ws.config, '--all', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(r.json.results.map((x: { job: string; status: string }) => `${x.job} ${x.status}`).sort(), ['node-a ok', 'node-b ok']);
    for (const t of TABLES) assert.equal(await tableDigest(a.client, t), original[t], `${t} after the restore`);
  });
});
