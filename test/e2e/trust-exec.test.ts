// Root inside a backed-up container must not reach the host through the agent's
// transfers (SECURITY.md). Each datastore container runs an attacker (FAKE, see
// helpers/attacker.ts) that races to swap every snapagent entry in its /tmp for a
// symlink to a host canary, during backups, restores and restore drills, three times
// each; the canary is never created, written or read into an archive. The servers and
// the Docker Engine are real.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { attackerImage, attacks, makeCanary, type Canary } from '../helpers/attacker.ts';
import { CASSANDRA_IMAGE, startCassandra, type CassandraNode } from '../helpers/cassandra.ts';
import { config, containerJob, KEEP_EVERY_BACKUP, type ConfigWorkspace } from '../helpers/config.ts';
import { docker, requireDocker, snapagent } from '../helpers/harness.ts';
import { MARIADB_IMAGE, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';
import { MONGO_IMAGE, startMongo, type Mongo } from '../helpers/mongo.ts';
import { expectRun } from '../helpers/runs.ts';

const RUNS = 3;

interface Subject {
  container: string;
  /** Brings the data back to a restorable state before each restore (where the plugin refuses over data). */
  beforeRestore(): Promise<void>;
  /** Extra `restore` arguments (mongo replaces collections that hold documents only with --force). */
  restoreArgs?: string[];
  remove(): Promise<void>;
}

// One attacked datastore: a clean backup, then backups, restores and drills under attack.
function attackedPlugin(plugin: string, start: (image: string) => Promise<Subject>) {
  describe(`${plugin}: a container racing to redirect the agent's pipes`, () => {
    let canary: Canary;
    let subject: Subject;
    let ws: ConfigWorkspace;
    let clean: string;

    const archives = () =>
      readdirSync(ws.backups, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && !e.name.endsWith('.json'))
        .map((e) => path.join(e.parentPath, e.name));
    const check = (what: string) => {
      canary.assertIntact(archives());
      // the archives are zstd: the marker must not be in the decompressed bytes either
      for (const a of archives().filter((f) => f.endsWith('.zst'))) {
        const plain = execFileSync('zstd', ['-dcq', '--', a], { maxBuffer: 1 << 30 });
        assert.equal(plain.includes(canary.marker), false, `${what}: the canary was read into ${a}`);
      }
    };

    before(async () => {
      const base = { mariadb: MARIADB_IMAGE, mongo: MONGO_IMAGE, cassandra: CASSANDRA_IMAGE }[plugin]!;
      await requireDocker(base);
      canary = makeCanary();
      subject = await start(await attackerImage(base, canary));
      ws = config({ jobs: [containerJob('attacked', plugin, subject.container)], tiers: KEEP_EVERY_BACKUP });
      const b = await expectRun(['backup', '--config', ws.config, '--json']);
      clean = b.json.results[0].id;
      await docker('exec', subject.container, 'rm', '-f', '/attack-off');
    });

    after(async () => {
      await subject?.remove();
      canary?.cleanup();
      ws?.cleanup();
    });

    it('backups never read or write a host file', async () => {
      for (let i = 0; i < RUNS; i++) {
        await snapagent(['backup', '--config', ws.config, '--json']);
        check(`backup ${i + 1}`);
      }
      assert.ok((await attacks(subject.container)) > 0, 'the attacker never got to swap anything: the test proves nothing');
    });

    it('restores never create or write a host file', async () => {
      const before = await attacks(subject.container);
      for (let i = 0; i < RUNS; i++) {
        await subject.beforeRestore();
        const r = await snapagent(['restore', '--config', ws.config, '--job', 'attacked', '--id', clean, ...(subject.restoreArgs ?? []), '--json']);
        if (r.code !== 0) console.log(`restore ${i + 1} under attack: exit ${r.code}: ${r.json?.results?.[0]?.error ?? r.stderr.slice(-300)}`);
        check(`restore ${i + 1}`);
      }
      assert.ok((await attacks(subject.container)) > before, 'the attacker never got to swap anything during restores');
    });

    it('drills into a server of the same image never touch a host file', async () => {
      for (let i = 0; i < RUNS; i++) {
        await snapagent(['verify', '--drill', '--config', ws.config, '--job', 'attacked', '--id', clean, '--json']);
        check(`drill ${i + 1}`);
      }
    });
  });
}

attackedPlugin('mariadb', async (image) => {
  const db: MariaDb = await startMariaDb('Att4ck-pw', [], image);
  await docker('exec', db.name, 'touch', '/attack-off');
  await db.sql('CREATE DATABASE shop; USE shop; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_20000;');
  return { container: db.name, beforeRestore: async () => undefined, remove: () => db.remove() };
});

attackedPlugin('mongo', async (image) => {
  const m: Mongo = await startMongo('root', 'Att4ck-pw', image);
  await docker('exec', m.name, 'touch', '/attack-off');
  await m.client.db('shop').collection('t').insertMany(Array.from({ length: 2000 }, (_, i) => ({ n: i, v: `row ${i}` })));
  return { container: m.name, beforeRestore: async () => undefined, restoreArgs: ['--force'], remove: () => m.remove() };
});

attackedPlugin('cassandra', async (image) => {
  const node: CassandraNode = await startCassandra({ image });
  await docker('exec', node.name, 'touch', '/attack-off');
  const c = node.client;
  await c.execute("CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
  await c.execute('CREATE TABLE shop.t (id int PRIMARY KEY, v text)');
  for (let i = 0; i < 500; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => c.execute('INSERT INTO shop.t (id, v) VALUES (?, ?)', [i + j, `row ${i + j}`], { prepare: true })));
  return {
    container: node.name,
    // the plugin restores into empty tables only
    beforeRestore: async () => void (await c.execute('DROP KEYSPACE IF EXISTS shop')),
    remove: () => node.remove(),
  };
});
