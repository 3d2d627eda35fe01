// The elasticsearch plugin against real Elasticsearch containers, what the plugin
// contract suite (test/contract/elasticsearch.test.ts) does not cover: what the manifest
// records; the live repository pruned; a snapshot of the same name taken by another
// node's agent; existing indices replaced with --force; one index under another name;
// restore onto a second, fresh cluster; missing path.repo, an unwritable repository, a
// wrong password and an unreachable server give clear errors and commit nothing.
// The three clusters run one after the other (one Elasticsearch at a time), each removed
// by its own `after` whatever happened.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@elastic/elasticsearch';
import { docker, requireDocker, snapagent, workspace, type Workspace } from '../helpers/harness.ts';
import { ES_IMAGE, startEs, type EsServer } from '../helpers/elasticsearch.ts';

const SECRET = 'Es-S3cret-pw-4-tests';

const INDICES: Record<string, { docs: number; body: Record<string, unknown>; doc: (i: number) => Record<string, unknown> }> = {
  'logs-2026.01': {
    docs: 3000,
    body: {
      settings: { number_of_shards: 2, number_of_replicas: 0 },
      mappings: {
        dynamic: 'strict',
        properties: {
          ts: { type: 'date' },
          level: { type: 'keyword' },
          msg: { type: 'text', analyzer: 'standard' },
          latency: { type: 'double' },
          user: { properties: { id: { type: 'keyword' }, name: { type: 'text', fields: { raw: { type: 'keyword' } } } } },
        },
      },
    },
    doc: (i) => ({ ts: new Date(Date.UTC(2026, 0, 1) + i * 37_000).toISOString(), level: ['info', 'warn', 'error'][i % 3], msg: `request ${i} served for "user ${i % 97}" — ünïcödé ok`, latency: (i % 1000) / 7, user: { id: `u${i % 500}`, name: `Name ${i % 500}` } }),
  },
  products: {
    docs: 1000,
    body: {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: {
        properties: {
          sku: { type: 'keyword' },
          title: { type: 'text', analyzer: 'whitespace' },
          price: { type: 'float' },
          tags: { type: 'keyword' },
          reviews: { type: 'nested', properties: { stars: { type: 'integer' }, text: { type: 'text' } } },
          location: { type: 'geo_point' },
        },
      },
    },
    doc: (i) => ({ sku: `SKU-${i}`, title: `Product ${i} size ${i % 13}`, price: (i % 500) + 0.99, tags: [`t${i % 7}`, `t${i % 11}`], reviews: [{ stars: i % 5, text: 'fine' }, { stars: 5, text: 'great' }], location: { lat: (i % 180) - 90, lon: (i % 360) - 180 } }),
  },
  events: {
    docs: 500,
    body: { settings: { number_of_shards: 1, number_of_replicas: 0 }, aliases: { 'events-current': {} }, mappings: { properties: { kind: { type: 'keyword' }, at: { type: 'date' }, payload: { type: 'object', enabled: false } } } },
    doc: (i) => ({ kind: `k${i % 20}`, at: new Date(Date.UTC(2026, 5, 1) + i * 1000).toISOString(), payload: { anything: [i, `x${i}`], nested: { deep: true } } }),
  },
};
const NAMES = Object.keys(INDICES);

async function fill(client: Client): Promise<void> {
  for (const [index, spec] of Object.entries(INDICES)) {
    await client.indices.create({ index, ...spec.body });
    for (let from = 0; from < spec.docs; from += 5000) {
      const operations: unknown[] = [];
      for (let i = from; i < Math.min(spec.docs, from + 5000); i++) operations.push({ index: { _index: index, _id: String(i) } }, spec.doc(i));
      const res = await client.bulk({ operations });
      assert.equal(res.errors, false, `bulk into ${index}`);
    }
  }
  await client.indices.refresh({ index: NAMES.join(',') });
}

/** Counts and mappings of the indices, and the aliases, in a comparable form. */
async function fingerprint(client: Client, names = NAMES): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  await client.indices.refresh({ index: names.join(',') });
  for (const n of names) {
    out[n] = {
      count: (await client.count({ index: n })).count,
      mappings: (await client.indices.getMapping({ index: n }))[n]!.mappings,
      nested: (await client.count({ index: n, query: n === 'products' ? { nested: { path: 'reviews', query: { term: { 'reviews.stars': 5 } } } } : { match_all: {} } })).count,
    };
  }
  out.aliases = Object.keys(await client.indices.getAlias({ name: 'events-current' }).catch(() => ({})));
  return out;
}

/** A job of its own on `container` (with `options`), in a workspace removed afterwards;
 * the backup must fail with `error` and `hint`, and commit nothing. */
async function failsClearly(container: string, options: Record<string, unknown>, error: RegExp, hint: RegExp, env: Record<string, string> = {}): Promise<string> {
  const w = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs: [${JSON.stringify({ name: 'failing', plugin: 'elasticsearch', container, options })}]
discovery: { labels: false }
state_dir: \${STATE}
`);
  try {
    const r = await snapagent(['backup', '--config', w.config, '--json'], env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.json.results[0].error, error);
    assert.match(r.json.results[0].hint, hint);
    assert.equal((await snapagent(['list', '--config', w.config, '--json'])).json.backups.length, 0);
    return r.stdout + r.stderr;
  } finally {
    w.cleanup();
  }
}

describe('elasticsearch plugin (real Elasticsearch)', () => {
  let ws: Workspace;
  let original: Record<string, unknown>;

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', ES_IMAGE).catch(() => {
      throw new Error(`image ${ES_IMAGE} is missing: run \`make images\``);
    });
  });

  after(() => ws?.cleanup());

  describe('a cluster with security on (the image\'s default)', () => {
    let es: EsServer | undefined;

    before(async () => {
      es = await startEs({ password: SECRET, pathRepo: '/usr/share/elasticsearch/snapshots' });
      await fill(es.client);
      original = await fingerprint(es.client);
      ws = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: search, plugin: elasticsearch, container: ${es.name} }
discovery: { labels: false }
state_dir: \${STATE}
`);
    });

    after(async () => {
      await es?.client.close();
      await es?.remove();
    });

    it('backs up with zero configuration: the manifest records the cluster, the snapshot and each index', async () => {
      const b = await snapagent(['backup', '--config', ws.config, '--json']);
      assert.equal(b.code, 0, b.stdout + b.stderr);
      const l = await snapagent(['list', '--config', ws.config, '--json']);
      const first = l.json.backups[0].id;
      const stats = l.json.backups[0].stats;
      assert.equal(stats.es_version, '8.19.21');
      assert.equal(stats.cluster_name, 'docker-cluster');
      assert.equal(stats.repository, 'snapagent');
      assert.equal(stats.snapshot, `search-${first.toLowerCase()}`);
      for (const n of NAMES) assert.equal(stats.indices[n].docs, INDICES[n]!.docs, n);
      assert.ok(stats.snapshot_seconds > 0 && stats.files > 0);
    });

    it('a second backup keeps only keep_snapshots (1) of its snapshots in the live repository', async () => {
      await es!.client.index({ index: 'events', id: 'extra', document: { kind: 'late' }, refresh: true });
      const b = await snapagent(['backup', '--config', ws.config, '--json']);
      assert.equal(b.code, 0, b.stdout + b.stderr);
      const snaps = (await es!.client.snapshot.get({ repository: 'snapagent', snapshot: '_all' })).snapshots!.map((s) => s.snapshot);
      assert.deepEqual(snaps, [`search-${b.json.results[0].id.toLowerCase()}`]);
      await es!.client.delete({ index: 'events', id: 'extra', refresh: true });
    });

    it('a snapshot of the same name already taken (as by another node\'s agent): waited for, shipped, not an error', async () => {
      // snapshots named after every backup id of the next 30 seconds, one of which the
      // backup below gets: what the agent of another node of the cluster would have taken
      const t0 = Math.floor(Date.now() / 1000) * 1000;
      const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d+/g, '').toLowerCase();
      for (let s = 0; s < 30; s++) {
        await es!.client.snapshot.create({ repository: 'snapagent', snapshot: `search-${stamp(t0 + s * 1000)}-critical`, wait_for_completion: false });
      }
      const b = await snapagent(['backup', '--config', ws.config, '--json']);
      assert.equal(b.code, 0, b.stdout + b.stderr);
      assert.match(b.stderr, /another node's agent took it/);
      const l = await snapagent(['list', '--config', ws.config, '--json']);
      const mine = l.json.backups.find((x: { id: string }) => x.id === b.json.results[0].id);
      assert.equal(mine.stats.taken_by_other_agent, true);
      assert.equal(mine.stats.indices.products.docs, 1000);
      // pruned: only the snapshot just committed is left of this job
      const snaps = (await es!.client.snapshot.get({ repository: 'snapagent', snapshot: '_all' })).snapshots!.map((s) => s.snapshot);
      assert.deepEqual(snaps, [`search-${b.json.results[0].id.toLowerCase()}`]);
    });

    it('existing indices: replaced with --force; one index under another name', async () => {
      await es!.client.index({ index: 'products', id: 'new', document: { sku: 'NEW' }, refresh: true });
      assert.equal((await es!.client.count({ index: 'products' })).count, 1001);
      // the oldest backup retention kept (one a day): the data as seeded
      const first = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups[0].id;

      const forced = await snapagent(['restore', '--config', ws.config, '--job', 'search', '--id', first, '--database', 'products', '--force', '--json']);
      assert.equal(forced.code, 0, forced.stdout + forced.stderr);
      assert.equal((await es!.client.count({ index: 'products' })).count, 1000);

      const renamed = await snapagent(['restore', '--config', ws.config, '--job', 'search', '--id', first, '--database', 'logs-2026.01', '--rename-to', 'logs-copy', '--json']);
      assert.equal(renamed.code, 0, renamed.stdout + renamed.stderr);
      assert.equal((await es!.client.count({ index: 'logs-copy' })).count, 3000);
      assert.deepEqual((await es!.client.indices.getMapping({ index: 'logs-copy' }))['logs-copy']!.mappings, (original['logs-2026.01'] as { mappings: unknown }).mappings);
      await es!.client.indices.delete({ index: 'logs-copy' });
    });

    it('a wrong password: 401, a clear error, nothing committed', async () => {
      const out = await failsClearly(es!.name, { password_env: 'WRONG_ES_PW' }, /authentication failed \(401\)/, /password is wrong/, { WRONG_ES_PW: 'not-the-password' });
      assert.ok(!out.includes('not-the-password'));
    });

    it('Elasticsearch unreachable: a clear error, nothing committed', async () => {
      await failsClearly(es!.name, { port: 1 }, /cannot reach Elasticsearch in .* at https:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/, /options\.host/);
    });
  });

  describe('a fresh cluster (security off, another path.repo)', () => {
    let fresh: EsServer | undefined;

    before(async () => void (fresh = await startEs({ pathRepo: '/backups-repo' })));

    after(async () => {
      await fresh?.client.close();
      await fresh?.remove();
    });

    it('restores onto a fresh cluster (security off, another path.repo) with --to-container', async () => {
      // the oldest backup retention kept (the second one held an extra document)
      const first = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups[0].id;
      const r = await snapagent(['restore', '--config', ws.config, '--job', 'search', '--id', first, '--to-container', fresh!.name, '--json']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(await fingerprint(fresh!.client), original);
      // the restore repository was unregistered and its directory removed
      assert.deepEqual(Object.keys(await fresh!.client.snapshot.getRepository()), []);
      assert.equal((await docker('exec', fresh!.name, 'ls', '-A', '/backups-repo')).trim(), '');
    });

    it('a repository Elasticsearch cannot write: the error says to start the container as root', async () => {
      await docker('exec', '--user', '0', fresh!.name, 'mkdir', '-p', '/backups-repo/locked');
      await failsClearly(fresh!.name, { location: '/backups-repo/locked/repo' }, /cannot write the repository location \/backups-repo\/locked\/repo/, /--user 0/);
      await docker('exec', '--user', '0', fresh!.name, 'rm', '-rf', '/backups-repo/locked');
    });
  });

  describe('a cluster without path.repo', () => {
    let norepo: EsServer | undefined;

    before(async () => void (norepo = await startEs({})));

    after(async () => {
      await norepo?.client.close();
      await norepo?.remove();
    });

    it('no path.repo: a clear error naming the setting, nothing committed', async () => {
      await failsClearly(norepo!.name, {}, /has no path\.repo setting/, /path\.repo=/);
    });
  });
});
