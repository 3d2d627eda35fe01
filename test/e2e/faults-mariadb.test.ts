// A real MariaDB under faults the plugin tests do not cover (they kill the dump tool):
// the datastore's container stopped in the middle of the dump, and a restore killed
// half-way. What must hold: the backup fails clearly and commits nothing, the earlier
// backup still restores; a killed restore (SQL is applied to the live server: it leaves
// the databases partly loaded) is never reported as a success, `status` says it was
// interrupted, and running it again completes and verifies every table.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { containerJob, jobConfig, type ConfigWorkspace } from '../helpers/config.ts';
import { killAt, runUntil } from '../helpers/faults.ts';
import { mariadbFingerprint } from '../helpers/fingerprints.ts';
import { docker, requireDocker, snapagent, backupIds } from '../helpers/harness.ts';
import { MARIADB_IMAGE, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';
import { expectRun } from '../helpers/runs.ts';
import { until } from '../helpers/wait.ts';

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
  let ws: ConfigWorkspace;
  let original: string;
  let firstId: string;
  const fingerprint = () => mariadbFingerprint(db.sql, ['shop.items', 'crm.people']);

  before(async () => {
    await requireDocker(MARIADB_IMAGE);
    db = await startMariaDb('Fault-pw-77');
    await db.sql(SCHEMA);
    original = await fingerprint();
    ws = jobConfig(containerJob('db', 'mariadb', db.name));
    const b = await expectRun(['backup', '--config', ws.config, '--json']);
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
    assert.deepEqual(backupIds(path.join(ws.backups, host, 'db')), [firstId], 'nothing of it is left');

    await docker('start', db.name);
    await until('MariaDB to answer again', () => db.sql('SELECT 1'), { timeoutMs: 90_000, intervalMs: 500 });
    await db.sql('DROP DATABASE shop');
    await expectRun(['restore', '--config', ws.config, '--job', 'db', '--id', firstId]);
    assert.equal(await fingerprint(), original);
  });

  it('a restore killed half-way: never reported restored, status says so, running it again completes and verifies', async () => {
    await db.sql('DELETE FROM shop.items WHERE id > 1000; UPDATE crm.people SET name = "changed"');
    const p = await killAt('restore-stream:2097152', ['restore', '--config', ws.config, '--job', 'db', '--id', firstId]);
    // the dump was being applied to the live server: shop is dropped and partly loaded again
    await until('the killed load to end', async () => !(await db.sql('SHOW PROCESSLIST')).includes('INSERT'), { timeoutMs: 10_000, intervalMs: 250 }).catch(() => undefined);
    const rows = Number((await db.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop'")).trim()) ? Number((await db.sql('SELECT COUNT(*) FROM shop.items')).trim()) : 0;
    assert.ok(rows < 300000, `partly restored: ${rows} of 300000 rows`);
    assert.notEqual(await fingerprint().catch(() => 'missing'), original);

    const s = await snapagent(['status', '--config', ws.config, '--json']);
    assert.equal(s.code, 1, s.stdout);
    const problem = s.json.problems.find((x: { where: string }) => x.where === 'restore of job db');
    assert.match(problem?.message ?? '', new RegExp(`into container ${db.name}, started .*, was interrupted \\(agent pid ${p.pid} killed\\): the data there may be partly restored; run \`snapagent restore --job db --id ${firstId}\` again`));

    const r = await expectRun(['restore', '--config', ws.config, '--job', 'db', '--id', firstId]);
    assert.match(r.stderr, /restored row counts and checksums match the backup/);
    assert.equal(await fingerprint(), original);
    const fine = await snapagent(['status', '--config', ws.config, '--json']);
    assert.deepEqual(fine.json.problems, []);
  });
});
