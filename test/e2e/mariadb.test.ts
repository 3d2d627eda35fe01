// The mariadb plugin against a real MariaDB, what the plugin contract suite
// (test/contract/mariadb.test.ts) does not cover: a hot dump while a writer keeps
// inserting, then drop → restore → everything back and equal to the manifest's counts
// and checksums; one database; another container; wrong password; the dump dying.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { docker, requireDocker, snapagent, workspace, type Workspace } from '../helpers/harness.ts';
import { MARIADB_IMAGE, shopSchema, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';

const SECRET = 'S3cret-pw-4-tests';

// shop plus the table a writer keeps filling and a bigger database
const SCHEMA = shopSchema(5000, String.raw`
CREATE TABLE writes (id INT PRIMARY KEY AUTO_INCREMENT, at DATETIME(6)) ENGINE=InnoDB;
CREATE DATABASE big;
CREATE TABLE big.t (id INT PRIMARY KEY, payload VARCHAR(64), n DOUBLE NULL, b VARBINARY(32)) ENGINE=InnoDB;
INSERT INTO big.t SELECT seq, MD5(seq), IF(seq % 10 = 0, NULL, seq / 3), UNHEX(SHA2(seq, 256)) FROM seq_1_to_20000;
`);

// Everything except the table the writer keeps filling, in a comparable form.
async function fingerprint(db: MariaDb): Promise<string> {
  return [
    await db.sql('CHECKSUM TABLE shop.customers, shop.orders, shop.legacy, shop.audit, big.t EXTENDED'),
    await db.sql("SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop' ORDER BY 1"),
    await db.sql("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop'"),
    await db.sql("SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'shop'"),
    await db.sql('SELECT customer, spent FROM shop.big_spenders ORDER BY 1'),
    await db.sql('SELECT name, HEX(photo) FROM shop.customers ORDER BY id'),
  ].join('\n');
}

describe('mariadb plugin (real MariaDB)', () => {
  let db: MariaDb;
  let fresh: MariaDb | undefined;
  let ws: Workspace;
  let original: string;
  let bigChecksum: string;

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', MARIADB_IMAGE).catch(() => {
      throw new Error(`image ${MARIADB_IMAGE} is missing: run \`make images\``);
    });
    db = await startMariaDb(SECRET);
    await db.sql(SCHEMA);
    original = await fingerprint(db);
    bigChecksum = await db.sql('CHECKSUM TABLE big.t EXTENDED');
    ws = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: db, plugin: mariadb, container: ${db.name} }
discovery: { labels: false }
state_dir: \${STATE}
`);
  });

  after(async () => {
    await db?.remove();
    await fresh?.remove();
    ws?.cleanup();
  });

  it('dumps while a writer keeps inserting; drop; restore; equal to the manifest', async () => {
    // the writer: inserts in a loop inside the container until its pid file is removed
    await docker('exec', '-d', '-e', `MYSQL_PWD=${SECRET}`, db.name, 'sh', '-c', 'echo $$ > /tmp/writer.pid; while [ -f /tmp/writer.pid ]; do mariadb -uroot -e "INSERT INTO shop.writes (at) VALUES (NOW(6))"; done');
    await new Promise((r) => setTimeout(r, 500));
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    await docker('exec', db.name, 'rm', '-f', '/tmp/writer.pid');
    assert.equal(b.code, 0, b.stderr);
    const l = await snapagent(['list', '--config', ws.config, '--json']);
    const stats = l.json.backups[0].stats;
    assert.equal(stats.databases.big.t.rows, 20000);
    assert.equal(stats.databases.shop.customers.rows, 3);
    assert.equal(stats.databases.shop.orders.rows, 5000);
    assert.ok(stats.databases.shop.writes.rows > 0, 'the writer was inserting during the dump');
    assert.deepEqual(stats.non_transactional, ['shop.legacy (MyISAM)']);
    assert.match(b.stderr, /non-transactional tables/);
    assert.match(stats.server_version, /MariaDB/);

    await db.sql('DROP DATABASE shop; DROP DATABASE big;');
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'db', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await fingerprint(db), original);
    assert.equal((await db.sql('SELECT COUNT(*) FROM shop.writes')).trim(), String(stats.databases.shop.writes.rows));
    await db.sql('CALL shop.add_order(2, 9.99)');
    assert.equal((await db.sql("SELECT COUNT(*) FROM shop.audit WHERE msg LIKE 'order %'")).trim(), '1', 'the restored trigger fires');
    assert.equal((await db.sql('SELECT shop.double_it(21)')).trim(), '42');
  });

  it('restores one database, leaving the others alone', async () => {
    await db.sql('DROP DATABASE shop; INSERT INTO big.t VALUES (200001, "new", NULL, NULL);');
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'db', '--database', 'shop', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((await db.sql('SELECT COUNT(*) FROM shop.customers')).trim(), '3');
    assert.equal((await db.sql('SELECT COUNT(*) FROM big.t')).trim(), '20001', 'big was not touched');
  });

  it('restores into a fresh container with its own credentials (--to-container)', async () => {
    fresh = await startMariaDb('another-Pw-99');
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'db', '--to-container', fresh.name, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await fresh.sql('CHECKSUM TABLE big.t EXTENDED'), bigChecksum);
    assert.equal((await fresh.sql('SELECT COUNT(*) FROM big.t')).trim(), '20000');
  });

  it('a wrong password: clear error, nothing committed', async () => {
    const w = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: db, plugin: mariadb, container: ${db.name}, options: { password_env: WRONG_PW } }
discovery: { labels: false }
state_dir: \${STATE}
`);
    const r = await snapagent(['backup', '--config', w.config, '--json'], { WRONG_PW: 'not-the-password' });
    assert.equal(r.code, 1);
    assert.match(r.json.results[0].error, /cannot connect to MariaDB .* ER_ACCESS_DENIED_ERROR/);
    assert.match(r.json.results[0].hint, /password is wrong/);
    assert.equal((await snapagent(['list', '--config', w.config, '--json'])).json.backups.length, 0);
    w.cleanup();
  });

  it('the dump tool killed: the backup fails and nothing is committed', async () => {
    const before = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups.length;
    // a watcher in the container kills mariadb-dump as soon as it runs
    await docker('exec', '-d', db.name, 'sh', '-c', 'until pid=$(pidof mariadb-dump); do sleep 0.01; done; kill -9 $pid; echo killed > /tmp/dump-killed');
    const r = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal((await docker('exec', db.name, 'cat', '/tmp/dump-killed')).trim(), 'killed', 'mariadb-dump was seen and killed');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.json.results[0].error, /mariadb-dump in .* failed/);
    assert.equal((await snapagent(['list', '--config', ws.config, '--json'])).json.backups.length, before);
  });
});
