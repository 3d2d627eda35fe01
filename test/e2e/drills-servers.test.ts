// Restore drills of the server plugins that take longest to start: a real
// Elasticsearch and a real Cassandra node are backed up, and each backup is drilled into
// a throwaway server started from the same image; the drill passes and leaves no
// container or volume behind. (Volume, mariadb and mongo drills: verify.test.ts.)
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { docker, jobWorkspace, requireDocker, snapagent, uniq, type Workspace } from '../helpers/harness.ts';
import { CASSANDRA_IMAGE, startCassandra, type CassandraNode } from '../helpers/cassandra.ts';
import { ES_IMAGE, startEs, type EsServer } from '../helpers/elasticsearch.ts';
import { drillLeftovers, exists } from '../helpers/leftovers.ts';

// Backs up, drills, and checks the record and that nothing is left.
async function backupAndDrill(ws: Workspace, job: string, image: string): Promise<void> {
  const b = await snapagent(['backup', '--config', ws.config]);
  assert.equal(b.code, 0, b.stderr);
  const r = await snapagent(['verify', '--drill', '--config', ws.config, '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const host = readdirSync(ws.backups)[0]!;
  const id = readdirSync(path.join(ws.backups, host, job))[0]!;
  const rec = JSON.parse(readFileSync(path.join(ws.backups, host, job, id, 'drill.json'), 'utf8'));
  assert.equal(rec.status, 'ok');
  assert.equal(rec.details.image, image);
  assert.ok(rec.rto_seconds > 0 && rec.details.startup_seconds > 0, JSON.stringify(rec));
  for (const name of [rec.details.container, ...rec.details.volumes]) assert.equal(await exists(name), false, `${name} was removed`);
  assert.deepEqual(await drillLeftovers(job), []);
}

describe('drills: elasticsearch plugin', () => {
  const job = uniq('drilles');
  let es: EsServer;
  let ws: Workspace;

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', ES_IMAGE);
    es = await startEs({ pathRepo: '/usr/share/elasticsearch/snapshots' });
    await es.client.bulk({ refresh: true, operations: Array.from({ length: 500 }, (_, i) => [{ index: { _index: 'items' } }, { i, name: `item ${i}` }]).flat() });
    ws = jobWorkspace(job, 'elasticsearch', es.name);
  });

  after(async () => {
    await es?.client.close();
    await es?.remove();
    ws?.cleanup();
  });

  it('restores into a throwaway single-node cluster, compares the counts, removes it', async () => {
    await backupAndDrill(ws, job, ES_IMAGE);
  });
});

describe('drills: cassandra plugin', () => {
  const job = uniq('drillcass');
  let node: CassandraNode;
  let ws: Workspace;

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', CASSANDRA_IMAGE);
    node = await startCassandra();
    await node.client.execute("CREATE KEYSPACE shop WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 1}");
    await node.client.execute('CREATE TABLE shop.t (id int PRIMARY KEY, v text)');
    for (let i = 0; i < 200; i++) await node.client.execute('INSERT INTO shop.t (id, v) VALUES (?, ?)', [i, `v${i}`], { prepare: true });
    ws = jobWorkspace(job, 'cassandra', node.name);
  });

  after(async () => {
    await node?.remove();
    ws?.cleanup();
  });

  it('restores into a throwaway node in the same datacenter, compares the row counts, removes it', async () => {
    await backupAndDrill(ws, job, CASSANDRA_IMAGE);
  });
});
