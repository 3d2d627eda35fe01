// Option injection through names and dumps, tried as the attacker would: whoever controls
// a datastore container's root (or its server) picks the names the agent reads and the
// bytes of the dumps it later restores. Real servers; the attacker is the only fake.
//   - MariaDB: a database named like a mariadb-dump option is refused by name before any
//     dump runs, and nothing is committed; leaving it out (options.databases) works.
//   - MariaDB: a dump carrying client commands (\! and system, without the sandbox line
//     mariadb-dump >= 10.11.8 writes first) runs none of them when it is restored.
//   - MongoDB (FerretDB): a database and a collection named "-x" are refused by name.
//   - Cassandra: CQL itself refuses option-like keyspace names, and directories planted in
//     the node's data dir (option-like, or holding a newline) are never read or listed.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CASSANDRA_IMAGE, startCassandra, type CassandraNode } from '../helpers/cassandra.ts';
import { configs, containerJob } from '../helpers/config.ts';
import { docker, requireDocker, snapagent, type Workspace } from '../helpers/harness.ts';
import { MARIADB_IMAGE, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';
import { MONGO_IMAGE, startMongo, type Mongo } from '../helpers/mongo.ts';
import { backupCount, expectRun } from '../helpers/runs.ts';

function manifests(ws: Workspace): string[] {
  try {
    return readdirSync(ws.backups, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name === 'manifest.json').map((e) => e.parentPath);
  } catch {
    return [];
  }
}

async function exists(container: string, file: string): Promise<boolean> {
  return docker('exec', container, 'test', '-e', file).then(() => true, () => false);
}

describe('names and dumps cannot steer the tools (real MariaDB)', () => {
  let db: MariaDb;
  const spaces = configs();

  before(async () => {
    await requireDocker(MARIADB_IMAGE);
    db = await startMariaDb('Inj3ct-pw');
    await db.sql("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO shop.t VALUES (1, 'a'), (2, 'b');");
  });

  after(async () => {
    await db?.remove();
    spaces.cleanup();
  });

  it('a database named like a mariadb-dump option is refused by name; nothing is committed', async () => {
    // Before the fix, "--no-data" after --databases made mariadb-dump drop every row and
    // the backup committed as a success: silent loss, worse than a failure.
    await db.sql('CREATE DATABASE `--no-data`; CREATE TABLE `--no-data`.x (id INT PRIMARY KEY); INSERT INTO `--no-data`.x VALUES (1);');
    const all = spaces.add({ jobs: [containerJob('db', 'mariadb', db.name)] });
    const r = await snapagent(['backup', '--config', all.config, '--json']);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.json.results[0].error, new RegExp(`^database "--no-data" in container ${db.name} is refused: it starts with "-"`));
    assert.match(r.json.results[0].hint, /options\.databases/);
    assert.deepEqual(manifests(all), []);
    assert.equal(await backupCount(all.config), 0);

    // The hint works: leave it out, and the rest is backed up with its rows.
    const ok = spaces.add({ jobs: [containerJob('db', 'mariadb', db.name, { options: { databases: ['shop'] } })] });
    await expectRun(['backup', '--config', ok.config, '--json']);
    const l = await snapagent(['list', '--config', ok.config, '--json']);
    assert.equal(l.json.backups[0].stats.databases.shop.t.rows, 2);
  });

  it('client commands in a dump (\\! and system) do not run when it is restored', async () => {
    // The attacker's mariadb-dump: the real one, without the sandbox line, plus commands.
    const wrapper = [
      '#!/bin/sh',
      '/usr/bin/mariadb-dump "$@" > /tmp/real-dump.sql || exit $?',
      "grep -v 'enable the sandbox mode' /tmp/real-dump.sql",
      "printf '%s\\n' '\\! touch /tmp/pwned-bang' 'system touch /tmp/pwned-system' 'SELECT 1;'",
    ].join('\n');
    await docker('exec', db.name, 'sh', '-c', `printf '%s\\n' "$1" > /usr/local/bin/mariadb-dump && chmod 755 /usr/local/bin/mariadb-dump`, 'sh', wrapper);
    assert.equal(await docker('exec', db.name, 'sh', '-c', 'command -v mariadb-dump').then((s) => s.trim()), '/usr/local/bin/mariadb-dump');
    const shop = spaces.add({ jobs: [containerJob('db', 'mariadb', db.name, { options: { databases: ['shop'] } })] });
    await expectRun(['backup', '--config', shop.config, '--json']);

    const r = await snapagent(['restore', '--config', shop.config, '--job', 'db', '--json']);
    assert.equal(await exists(db.name, '/tmp/pwned-bang'), false, '\\! ran a shell command');
    assert.equal(await exists(db.name, '/tmp/pwned-system'), false, 'system ran a shell command');
    // The lines reach the server as SQL, which refuses them: the restore fails cleanly.
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.json.results[0].error, /the client in .* failed while loading the dump .*(syntax|ERROR)/);
    assert.equal((await db.sql('SELECT COUNT(*) FROM shop.t')).trim(), '2');
    await docker('exec', db.name, 'rm', '-f', '/usr/local/bin/mariadb-dump');
  });
});

describe('names cannot steer the tools (real MongoDB stand-in)', () => {
  let mongo: Mongo;
  const spaces = configs();

  before(async () => {
    await requireDocker(MONGO_IMAGE);
    mongo = await startMongo('root', 'M0ngo-pw');
    await mongo.client.db('shop').collection('orders').insertMany([{ n: 1 }, { n: 2 }]);
  });

  after(async () => {
    await mongo?.remove();
    spaces.cleanup();
  });

  it('a database and a collection named "-x" are refused by name; nothing is committed', async () => {
    await mongo.client.db('-x').collection('c').insertOne({ n: 1 });
    const m = spaces.add({ jobs: [containerJob('m', 'mongo', mongo.name)] });
    let r = await snapagent(['backup', '--config', m.config, '--json']);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.json.results[0].error, new RegExp(`^database "-x" in container ${mongo.name} is refused: it starts with "-"`));
    await mongo.client.db('-x').dropDatabase();

    // A collection is known only from the archive: refused before the backup commits.
    await mongo.client.db('shop').collection('-y').insertOne({ n: 1 });
    r = await snapagent(['backup', '--config', m.config, '--json']);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.json.results[0].error, new RegExp(`^collection "-y" in database "shop" in container ${mongo.name} is refused`));
    assert.deepEqual(manifests(m), []);
    await mongo.client.db('shop').collection('-y').drop();

    await expectRun(['backup', '--config', m.config, '--json']);
    assert.equal(manifests(m).length, 1);
  });
});

describe('names cannot steer the tools (real Cassandra)', () => {
  let node: CassandraNode;
  const spaces = configs();

  before(async () => {
    await requireDocker(CASSANDRA_IMAGE);
    node = await startCassandra();
    await node.client.execute("CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    await node.client.execute('CREATE TABLE shop.t (id int PRIMARY KEY, v text)');
    for (let i = 0; i < 10; i++) await node.client.execute('INSERT INTO shop.t (id, v) VALUES (?, ?)', [i, `v${i}`], { prepare: true });
  });

  after(async () => {
    await node?.remove();
    spaces.cleanup();
  });

  it('CQL refuses keyspace and table names a tool could read as options', async () => {
    await assert.rejects(node.client.execute(`CREATE KEYSPACE "--help" WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`), /name|invalid|Invalid/);
    await assert.rejects(node.client.execute('CREATE TABLE shop."-x" (id int PRIMARY KEY)'), /name|invalid|Invalid/);
  });

  it('directories planted in the data dir are neither read nor listed', async () => {
    const id = String((await node.client.execute("SELECT id FROM system_schema.tables WHERE keyspace_name = 'shop' AND table_name = 't'")).first().id).replaceAll('-', '');
    const data = '/var/lib/cassandra/data';
    // Option-like names beside the keyspaces, inside one, and as a "snapshot" of the
    // table; one shaped like a backup id but holding a newline and a line of its own
    // (the old listing reported "snapagent-forged" as a stale snapshot).
    await docker('exec', node.name, 'sh', '-c', `set -e
      mkdir -p "${data}/--help" "${data}/shop/-x" "${data}/shop/t-${id}/snapshots/-x"
      mkdir -p "${data}/shop/t-${id}/snapshots/20000101T000000Z-a
snapagent-forged"
      chown -R cassandra:cassandra "${data}/--help" "${data}/shop/-x" "${data}/shop/t-${id}/snapshots" 2>/dev/null || true`);
    const c = spaces.add({ jobs: [containerJob('c', 'cassandra', node.name)] });
    const b = await expectRun(['backup', '--config', c.config, '--json']);
    const stats = (await snapagent(['list', '--config', c.config, '--json'])).json.backups[0].stats;
    assert.deepEqual(Object.keys(stats.keyspaces), ['shop']);
    assert.deepEqual(Object.keys(stats.keyspaces.shop.tables), ['t']);
    assert.equal(stats.keyspaces.shop.tables.t.rows, 10);
    assert.ok(stats.keyspaces.shop.tables.t.files > 0);
    assert.ok(!b.stderr.includes('snapagent-forged'), 'the newline-named directory reached no log line');
    // The planted directories are still there: the agent removes only what it made.
    assert.equal(await exists(node.name, `${data}/--help`), true);
    assert.equal(await exists(node.name, `${data}/shop/t-${id}/snapshots/-x`), true);
  });
});
