// The elasticsearch plugin runs the plugin contract suite (test/contract/plugin-suite.ts)
// against one real Elasticsearch (security on, zero configuration): indices with
// mappings, nested documents and an alias, a small seed. Only one Elasticsearch runs at a
// time: the live one is stopped while the drill's throwaway cluster runs. Snapshot
// pruning, a snapshot taken by another node's agent, --force, --rename-to, another
// cluster, missing path.repo, an unwritable repository, a wrong password and an
// unreachable server: test/e2e/elasticsearch.test.ts.
import { esFingerprint } from '../helpers/fingerprints.ts';
import { docker } from '../helpers/harness.ts';
import { waitForServer } from '../helpers/wait.ts';
import { ES_IMAGE, startEs, type EsServer } from '../helpers/elasticsearch.ts';
import { runPluginSuite } from './plugin-suite.ts';

const SECRET = 'Es-S3cret-pw-4-"contract"';
const REPO = '/usr/share/elasticsearch/snapshots';
const INDICES: Record<string, { body: Record<string, unknown>; docs: number; doc: (i: number) => Record<string, unknown> }> = {
  'logs-2026.01': {
    docs: 300,
    body: {
      settings: { number_of_shards: 2, number_of_replicas: 0 },
      mappings: { dynamic: 'strict', properties: { ts: { type: 'date' }, level: { type: 'keyword' }, msg: { type: 'text' }, user: { properties: { id: { type: 'keyword' }, name: { type: 'text', fields: { raw: { type: 'keyword' } } } } } } },
    },
    doc: (i) => ({ ts: new Date(Date.UTC(2026, 0, 1) + i * 37_000).toISOString(), level: ['info', 'warn', 'error'][i % 3], msg: `request ${i} — ünïcödé`, user: { id: `u${i % 50}`, name: `Name ${i % 50}` } }),
  },
  products: {
    docs: 100,
    body: { settings: { number_of_shards: 1, number_of_replicas: 0 }, mappings: { properties: { sku: { type: 'keyword' }, reviews: { type: 'nested', properties: { stars: { type: 'integer' } } }, location: { type: 'geo_point' } } } },
    doc: (i) => ({ sku: `SKU-${i}`, reviews: [{ stars: i % 5 }, { stars: 5 }], location: { lat: (i % 180) - 90, lon: (i % 360) - 180 } }),
  },
  events: {
    docs: 50,
    body: { settings: { number_of_shards: 1, number_of_replicas: 0 }, aliases: { 'events-current': {} }, mappings: { properties: { kind: { type: 'keyword' }, payload: { type: 'object', enabled: false } } } },
    doc: (i) => ({ kind: `k${i % 20}`, payload: { anything: [i, `x${i}`] } }),
  },
};
const NAMES = Object.keys(INDICES);
let es: EsServer;

const counts = async () => Object.fromEntries(await Promise.all(NAMES.map(async (n) => [n, (await es.client.count({ index: n })).count])));

runPluginSuite({
  name: 'elasticsearch',
  images: [ES_IMAGE],
  start: async () => void (es = await startEs({ password: SECRET, pathRepo: REPO })),
  job: () => ({ container: es.name }),
  container: () => es.name,
  seed: async () => {
    for (const [index, spec] of Object.entries(INDICES)) {
      await es.client.indices.create({ index, ...spec.body });
      const operations = Array.from({ length: spec.docs }, (_, i) => [{ index: { _index: index, _id: String(i) } }, spec.doc(i)]).flat();
      const res = await es.client.bulk({ operations, refresh: true });
      if (res.errors) throw new Error(`bulk into ${index} failed`);
    }
    return Object.fromEntries(NAMES.map((n) => [n, INDICES[n]!.docs]));
  },
  manifestCounts: (m) => Object.fromEntries(NAMES.map((n) => [n, m.stats.indices[n].docs])),
  liveCounts: counts,
  // counts, mappings, every document and the alias; a missing index: what the server says
  fingerprint: () => esFingerprint(es.client, NAMES, { aliases: ['events-current'] }).catch((err: Error) => `missing: ${err.message}`),
  drop: async () => void (await es.client.indices.delete({ index: NAMES.join(',') })),
  inUse: {
    make: async () => void (await es.client.index({ index: 'products', id: 'new', document: { sku: 'NEW' }, refresh: true })),
    undo: async () => void (await es.client.indices.delete({ index: 'products' })),
    refused: /index\(es\) products exist .*nothing was changed/,
  },
  replaceFlags: ['--force'],
  secrets: { 'elastic password': SECRET },
  drillAlone: {
    stop: async () => void (await docker('stop', es.name)),
    start: async () => {
      await docker('start', es.name);
      await waitForServer(es.name, 'Elasticsearch', async () => {
        const h = await es.client.cluster.health({ wait_for_status: 'yellow', timeout: '5s' });
        if (h.timed_out) throw new Error(`cluster health ${h.status}`);
      }, { timeoutMs: 180_000, intervalMs: 1000 });
    },
  },
  // a staged repository (<location>-restore-<id>) or a restore repository left registered
  leftovers: async () => [
    ...(await docker('exec', es.name, 'ls', '-A', REPO)).split('\n').filter((n) => n.includes('restore')).map((n) => `${REPO}/${n}`),
    ...Object.keys(await es.client.snapshot.getRepository()).filter((r) => r !== 'snapagent').map((r) => `repository ${r}`),
  ],
  stop: async () => {
    await es?.client.close();
    await es?.remove();
  },
});
