// Incremental backups of the cassandra plugin against a real Cassandra 5.0 node, through
// the CLI: a first backup (a full, with the index of every snapshot file); ~3 % more rows,
// a few deletes and updates (flushed by the next snapshot); a second backup ships only the
// new SSTables (its tar a small fraction of the first, its index naming the first for
// every file it reuses); the keyspace dropped and the second backup restored (rows and
// fingerprint as at the second backup, files staged from both tars); dropped again and
// the first restored (as at the first); a restore drill of the incremental; after a
// restore and a major compaction every table's SSTables are new and shipped again. Prints the measured sizes
// and times. The logic without a node: test/unit/cassandra-incremental.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { zstdDecompressSync } from 'node:zlib';
import cassandra from 'cassandra-driver';
import { CASSANDRA_IMAGE, startCassandra, tableDigest, type CassandraNode } from '../helpers/cassandra.ts';
import { docker, requireDocker, snapagent, workspace, type Workspace } from '../helpers/harness.ts';

const EVENTS = 40_000;
const NEW = Math.round(EVENTS * 0.03);
const TABLES = ['inc.events', 'inc.users', 'inc.counts'];

const SCHEMA = [
  "CREATE KEYSPACE inc WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
  'CREATE TABLE inc.events (sensor int, seq int, payload text, tags set<text>, PRIMARY KEY ((sensor), seq))',
  'CREATE TABLE inc.users (id int PRIMARY KEY, name text, email text)',
  'CREATE INDEX users_name ON inc.users (name)',
  'CREATE TABLE inc.counts (page text PRIMARY KEY, hits counter)',
];

const events = (from: number, n: number) => Array.from({ length: n }, (_, k) => [(from + k) % 500, from + k, randomBytes(300).toString('base64'), [`t${(from + k) % 7}`]]);

async function digest(client: cassandra.Client): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) out[t] = await tableDigest(client, t);
  return out;
}

interface Stored {
  manifest: { id: string; kind?: string; depends_on?: string[]; represented_size?: number; stats: Record<string, any>; artifacts: { name: string; size: number; raw_size: number; role?: string }[] };
  index: { backup: string; files: { keyspace: string; table: string; name: string; size: number; sha256: string; backup: string }[] };
  data: { size: number; raw_size: number };
}

describe('cassandra incremental backups (real Cassandra 5.0)', () => {
  let node: CassandraNode;
  let ws: Workspace;
  const figures: Record<string, unknown> = {};
  let first: Stored;
  let second: Stored;
  let atFirst: Record<string, string>;
  let atSecond: Record<string, string>;

  const stored = (id: string): Stored => {
    const dir = path.join(ws.backups, 'cass-incr', 'inc', id);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const ix = manifest.artifacts.find((a: { role?: string }) => a.role === 'index');
    assert.ok(ix, 'an index artifact');
    const data = manifest.artifacts.find((a: { role?: string }) => (a.role ?? 'data') === 'data');
    return { manifest, index: JSON.parse(zstdDecompressSync(readFileSync(path.join(dir, ix.name))).toString('utf8')), data };
  };
  const backup = async () => {
    const t0 = Date.now();
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal(b.code, 0, b.stderr);
    return { id: b.json.results[0].id as string, seconds: (Date.now() - t0) / 1000, stderr: b.stderr };
  };
  const restore = async (id: string) => {
    const t0 = Date.now();
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'inc', '--id', id, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return { seconds: (Date.now() - t0) / 1000, stderr: r.stderr, result: r.json.results[0] };
  };

  before(async () => {
    await requireDocker(CASSANDRA_IMAGE);
    node = await startCassandra();
    for (const s of SCHEMA) await node.client.execute(s);
    // the test decides when SSTables are rewritten (the last case compacts)
    await docker('exec', node.name, 'nodetool', 'disableautocompaction', '--', 'inc');
    await cassandra.concurrent.executeConcurrent(node.client, 'INSERT INTO inc.events (sensor, seq, payload, tags) VALUES (?, ?, ?, ?)', events(0, EVENTS), { concurrencyLevel: 128 });
    const users = Array.from({ length: 500 }, (_, i) => [i, `user ${i % 50}`, `u${i}@example.com`]);
    await cassandra.concurrent.executeConcurrent(node.client, 'INSERT INTO inc.users (id, name, email) VALUES (?, ?, ?)', users, { concurrencyLevel: 64 });
    for (let i = 0; i < 20; i++) await node.client.execute('UPDATE inc.counts SET hits = hits + ? WHERE page = ?', [cassandra.types.Long.fromNumber(i + 1), `/p/${i}`], { prepare: true });
    ws = workspace(`
host: cass-incr
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: inc, plugin: cassandra, container: ${node.name}, full_every: 7d }
discovery: { labels: false }
state_dir: \${STATE}
`);
  });

  after(async () => {
    console.log(`cassandra incremental figures: ${JSON.stringify(figures)}`);
    await node?.remove();
    ws?.cleanup();
  });

  it('the first backup is a full with the index of every snapshot file', async () => {
    const b = await backup();
    first = stored(b.id);
    atFirst = await digest(node.client);
    const s = first.manifest.stats;
    assert.equal(first.manifest.kind, 'full');
    assert.equal(first.manifest.depends_on, undefined);
    assert.equal(first.index.backup, b.id);
    assert.equal(first.index.files.length, s.files);
    assert.ok(first.index.files.every((f) => f.backup === b.id));
    assert.equal(s.files_shipped, s.files);
    assert.equal(s.files_reused, 0);
    assert.equal(first.manifest.represented_size, s.bytes);
    assert.ok(first.index.files.some((f) => f.name.startsWith('.users_name/')), 'the secondary index\'s files are listed');
    assert.equal(s.keyspaces.inc.tables.events.rows, EVENTS);
    Object.assign(figures, { first: { id: b.id, seconds: b.seconds, stored: first.data.size, raw: first.data.raw_size, files: s.files, bytes: s.bytes, list_seconds: s.list_seconds } });
  });

  it('~3 % new rows later, the second backup ships only the new SSTables', async () => {
    await cassandra.concurrent.executeConcurrent(node.client, 'INSERT INTO inc.events (sensor, seq, payload, tags) VALUES (?, ?, ?, ?)', events(EVENTS, NEW), { concurrencyLevel: 128 });
    for (let seq = 0; seq < 50; seq++) await node.client.execute('DELETE FROM inc.events WHERE sensor = ? AND seq = ?', [seq % 500, seq], { prepare: true });
    await node.client.execute("UPDATE inc.users SET email = 'changed@example.com' WHERE id = 7");
    await node.client.execute("UPDATE inc.counts SET hits = hits + 5 WHERE page = '/p/3'");
    const b = await backup();
    second = stored(b.id);
    atSecond = await digest(node.client);
    const s = second.manifest.stats;
    assert.equal(second.manifest.kind, 'incremental');
    assert.deepEqual(second.manifest.depends_on, [first.manifest.id]);
    assert.equal(second.index.files.length, s.files);
    assert.equal(s.files_shipped + s.files_reused, s.files);
    // every SSTable of the first is still live (no compaction yet) and reused
    const sstables = first.index.files.filter((f) => f.name !== 'manifest.json' && f.name !== 'schema.cql');
    for (const f of sstables) {
      const now = second.index.files.find((g) => g.keyspace === f.keyspace && g.table === f.table && g.name === f.name);
      assert.ok(now, `${f.table}/${f.name} is in the second index`);
      assert.equal(now.backup, first.manifest.id, `${f.table}/${f.name} is taken from the first backup`);
      assert.equal(now.sha256, f.sha256);
    }
    assert.equal(s.files_reused, sstables.length);
    assert.ok(second.data.size < first.data.size * 0.15, `the second data artifact (${second.data.size} B) is much smaller than the first (${first.data.size} B)`);
    assert.ok(second.manifest.represented_size! > first.manifest.represented_size!, 'it represents the whole state');
    assert.equal(s.keyspaces.inc.tables.events.rows, EVENTS + NEW - 50);
    Object.assign(figures, { second: { id: b.id, seconds: b.seconds, stored: second.data.size, raw: second.data.raw_size, files: s.files, files_shipped: s.files_shipped, bytes_shipped: s.bytes_shipped, files_reused: s.files_reused, bytes_reused: s.bytes_reused, represented: second.manifest.represented_size, list_seconds: s.list_seconds } });
  });

  it('restores the second backup after the keyspace was dropped: the state at the second backup', async () => {
    await node.client.execute('DROP KEYSPACE inc');
    const r = await restore(second.manifest.id);
    assert.deepEqual(await digest(node.client), atSecond);
    assert.equal(r.result.stats.rows, EVENTS + NEW - 50 + 500 + 20);
    const staged = r.stderr.split('\n').find((l) => l.includes('"msg":"staged files match the index"'));
    assert.ok(staged, 'the files were checked against the index');
    assert.match(staged, new RegExp(`${first.manifest.id}: \\d+`));
    assert.match(staged, new RegExp(`${second.manifest.id}: \\d+`));
    assert.equal((await node.client.execute("SELECT id FROM inc.users WHERE name = 'user 3'")).rowLength, 10, 'the secondary index answers');
    figures.restore_second_seconds = r.seconds;
  });

  it('restores the first backup (a full) after the keyspace was dropped again: the state at the first backup', async () => {
    await node.client.execute('DROP KEYSPACE inc');
    const r = await restore(first.manifest.id);
    assert.deepEqual(await digest(node.client), atFirst);
    assert.notDeepEqual(atFirst, atSecond);
    figures.restore_first_seconds = r.seconds;
  });

  it('a restore drill of the incremental passes', async () => {
    const v = await snapagent(['verify', '--config', ws.config, '--job', 'inc', '--id', second.manifest.id, '--drill', '--json']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  it('after a restore and a major compaction, the next backup ships every SSTable of the tables again', async () => {
    await node.client.execute('DROP KEYSPACE inc');
    await restore(second.manifest.id);
    await docker('exec', node.name, 'nodetool', 'compact', '--', 'inc');
    const b = await backup();
    const third = stored(b.id);
    // the restore imported the SSTables under new names and the compaction rewrote them:
    // no table file is reused; a file still reused is byte for byte one stored before
    const reused = third.index.files.filter((f) => f.backup !== b.id);
    figures.third = { id: b.id, kind: third.manifest.kind, depends_on: third.manifest.depends_on, stored: third.data.size, files_reused: third.manifest.stats.files_reused, reused: reused.map((f) => `${f.table}/${f.name}@${f.backup}`) };
    assert.deepEqual(reused.filter((f) => !f.name.startsWith('.')), [], JSON.stringify(figures.third));
    for (const f of reused) {
      const was = [first, second].find((x) => x.manifest.id === f.backup)!.index.files.find((g) => g.table === f.table && g.name === f.name)!;
      assert.equal(was.sha256, f.sha256);
    }
    assert.deepEqual(third.manifest.depends_on ?? [], [...new Set(reused.map((f) => f.backup))].sort());
});
});
