// A real MariaDB under faults the plugin tests do not cover (they kill the dump tool):
// the datastore's container stopped in the middle of the dump, and a restore killed
// half-way. What must hold: the backup fails clearly and commits nothing, the earlier
// backup still restores; a killed restore (SQL is applied to the live server: it leaves
// the databases partly loaded) is never reported as a success, `status` says it was
// interrupted, and running it again completes and verifies every table.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { runUntil } from '../helpers/faults.ts';
import { docker, jobWorkspace, requireDocker, snapagent, type Workspace } from '../helpers/harness.ts';
import { MARIADB_IMAGE, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';

const SCHEMA = `
CREATE DATABASE shop;
USE shop;
CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(64), digest CHAR(64)) ENGINE=InnoDB;
INSERT INTO shop.items SELECT seq, MD5(seq), SHA2(seq, 256) FROM seq_1_to_300000;
CREATE DATABASE crm;
USE crm;
CREATE TABLE crm.people (id INT PRIMARY KEY, name VARCHAR(64)) ENGINE=InnoDB;
INSERT INTO crm.people SELECT seq, CONCAT('person ', seq) FROM seq_1_to_1000;
`;

describe('mariadb under faults (real MariaDB)', () => {
  let db: MariaDb;
  let ws: Workspace;
  let original: string;
  let firstId: string;
  const fingerprint = () => db.sql('CHECKSUM TABLE shop.items, crm.people EXTENDED');

  async function ready(): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        await db.sql('SELECT 1');
        return;
      } catch (err) {
        if (i > 180) throw err;
        await sleep(500);
      }
    }
  }

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', MARIADB_IMAGE).catch(() => {
      throw new Error(`image ${MARIADB_IMAGE} is missing: run \`make images\``);
    });
    db = await startMariaDb('Fault-pw-77');
    await db.sql(SCHEMA);
    original = await fingerprint();
    ws = jobWorkspace('db', 'mariadb', db.name);
    const b = await snapagent(['backup', '--config', ws.config, '--json']);
    assert.equal(b.code, 0, b.stderr);
    firstId = b.json.results[0].id;
  });

  after(async () => {
    await db?.remove();
    ws?.cleanup();
  });

  it('the container stopped in the middle of the dump: the backup fails clearly, nothing is committed, the earlier backup restores', async () => {
    const p = await runUntil('backup-stream:1048576', ['backup', '--config', ws.config, '--json']);
    await docker('stop', '-t', '5', db.name);
    p.resume();
    const b = await p.result;
    assert.equal(b.code, 1, b.stderr);
    assert.match(b.json.results[0].error, new RegExp(`mariadb-dump in ${db.name} failed \\(exit code \\d+\\)`));
    const host = readdirSync(ws.backups)[0]!;
    assert.deepEqual(readdirSync(path.join(ws.backups, host, 'db')), [firstId], 'nothing of it is left');

    await docker('start', db.name);
    await ready();
    await db.sql('DROP DATABASE shop');
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'db', '--id', firstId]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fingerprint(), original);
  });

  it('a restore killed half-way: never reported restored, status says so, running it again completes and verifies', async () => {
    await db.sql('DELETE FROM shop.items WHERE id > 1000; UPDATE crm.people SET name = "changed"');
    const p = await runUntil('restore-stream:2097152', ['restore', '--config', ws.config, '--job', 'db', '--id', firstId]);
    await p.kill();
    // the dump was being applied to the live server: shop is dropped and partly loaded again
    for (let i = 0; i < 40 && (await db.sql('SHOW PROCESSLIST')).includes('INSERT'); i++) await sleep(250);
    const rows = Number((await db.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop'")).trim()) ? Number((await db.sql('SELECT COUNT(*) FROM shop.items')).trim()) : 0;
    assert.ok(rows < 300000, `partly restored: ${rows} of 300000 rows`);
    assert.notEqual(await fingerprint().catch(() => 'missing'), original);

    const s = await snapagent(['status', '--config', ws.config, '--json']);
    assert.equal(s.code, 1, s.stdout);
    const problem = s.json.problems.find((x: { where: string }) => x.where === 'restore of job db');
    assert.match(problem?.message ?? '', new RegExp(`into container ${db.name}, started .*, was interrupted \\(agent pid ${p.pid} killed\\): the data there may be partly restored; run \`snapagent restore --job db --id ${firstId}\` again`));

    const r = await snapagent(['restore', '--config', ws.config, '--job', 'db', '--id', firstId]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /restored row counts and checksums match the backup/);
    assert.equal(await fingerprint(), original);
    const fine = await snapagent(['status', '--config', ws.config, '--json']);
    assert.deepEqual(fine.json.problems, []);
  });
});
