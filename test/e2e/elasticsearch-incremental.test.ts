// Incremental backups of the elasticsearch plugin against a real Elasticsearch: the
// first backup ships every repository file; after about 3 % new documents the second
// ships only the snapshot's new files (its data artifact a small fraction of the first's)
// and its file list takes the rest from the first; a third (documents deleted, after a
// restore) builds on both. Each is restored after its indices were deleted (or over them
// with --force) and compared with the fingerprint taken when it was backed up. One
// Elasticsearch, removed by `after` whatever happened.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@elastic/elasticsearch';
import { esFingerprint } from '../helpers/fingerprints.ts';
import { docker, flipByte, requireDocker, snapagent, workspace, type Workspace } from '../helpers/harness.ts';
import { ES_IMAGE, startEs, type EsServer } from '../helpers/elasticsearch.ts';

const SECRET = 'Es-S3cret-pw-4-incremental';
const REPO = '/usr/share/elasticsearch/snapshots';
const INDICES: Record<string, { docs: number; body: Record<string, unknown> }> = {
  logs: {
    docs: 20_000,
    body: { settings: { number_of_shards: 2, number_of_replicas: 0 }, mappings: { properties: { ts: { type: 'date' }, level: { type: 'keyword' }, msg: { type: 'text' }, n: { type: 'long' } } } },
  },
  products: {
    docs: 5_000,
    body: { settings: { number_of_shards: 1, number_of_replicas: 0 }, mappings: { properties: { sku: { type: 'keyword' }, title: { type: 'text' }, price: { type: 'float' } } } },
  },
};
const NAMES = Object.keys(INDICES);
const doc = (index: string, i: number) =>
  index === 'logs'
    ? { ts: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(), level: ['info', 'warn', 'error'][i % 3], msg: `request ${i} from client ${i % 313} took ${i % 977} ms — ünïcödé`, n: i }
    : { sku: `SKU-${i}`, title: `Product ${i} in size ${i % 17} and colour ${i % 11}`, price: (i % 900) + 0.5 };

async function put(client: Client, index: string, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += 5000) {
    const operations: unknown[] = [];
    for (let i = start; i < Math.min(to, start + 5000); i++) operations.push({ index: { _index: index, _id: String(i) } }, doc(index, i));
    const res = await client.bulk({ operations });
    assert.equal(res.errors, false, `bulk into ${index}`);
  }
}

interface Entry { path: string; size: number; sha256: string; in: string }

describe('elasticsearch incremental backups (real Elasticsearch)', () => {
  let es: EsServer | undefined;
  let ws: Workspace;
  // the same job, targets and state, with the bytes through dockerd's attach streams
  // instead of named pipes (the third backup and its restore)
  let attach: Workspace;
  const ids: string[] = [];
  const fps: Record<string, unknown>[] = [];
  const fingerprint = () => esFingerprint(es!.client, NAMES);

  /** The committed manifest of backup `id`, and its file list (the index artifact). */
  const dirOf = (id: string) => {
    const dir = readdirSync(ws.backups, { recursive: true, withFileTypes: true }).find((d) => d.isDirectory() && d.name === id)!;
    return path.join(dir.parentPath, dir.name);
  };
  function stored(id: string): { manifest: any; files: Entry[] } {
    const at = dirOf(id);
    const manifest = JSON.parse(readFileSync(path.join(at, 'manifest.json'), 'utf8'));
    const ix = readdirSync(at).find((n) => n.startsWith('index.json'))!;
    return { manifest, files: JSON.parse(zstdDecompressSync(readFileSync(path.join(at, ix))).toString()).files };
  }
  const dataOf = (m: any) => m.artifacts.find((a: { name: string }) => a.name.startsWith('repository.'));

  async function backup(config = ws.config): Promise<any> {
    const t0 = performance.now();
    const b = await snapagent(['backup', '--config', config, '--json']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    const id = b.json.results[0].id;
    ids.push(id);
    const l = (await snapagent(['list', '--config', ws.config, '--json'])).json.backups.find((x: { id: string }) => x.id === id);
    const m = stored(id).manifest;
    console.log(`# backup ${ids.length} (${l.kind}): ${((performance.now() - t0) / 1000).toFixed(1)} s, data raw ${dataOf(m).raw_size} B stored ${dataOf(m).size} B, files shipped ${l.stats.files_shipped} reused ${l.stats.files_reused} of ${l.stats.files}, list ${l.stats.list_seconds} s, ship ${l.stats.ship_seconds} s`);
    return l;
  }

  async function restore(id: string, ...flags: string[]): Promise<void> {
    const t0 = performance.now();
    const r = await snapagent(['restore', '--job', 'search', '--id', id, '--json', ...(flags.length ? flags : ['--config', ws.config])]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    console.log(`# restore ${id}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // the staged repository was unregistered and removed
    assert.deepEqual(Object.keys(await es!.client.snapshot.getRepository()), ['snapagent']);
    assert.deepEqual((await docker('exec', es!.name, 'ls', '-A', REPO)).split('\n').filter((n) => n.includes('restore')), []);
  }

  before(async () => {
    await requireDocker(ES_IMAGE);
    es = await startEs({ password: SECRET, pathRepo: REPO });
    for (const [index, spec] of Object.entries(INDICES)) {
      await es.client.indices.create({ index, ...spec.body });
      await put(es.client, index, 0, spec.docs);
    }
    ws = workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs:
  - { name: search, plugin: elasticsearch, container: ${es.name}, full_every: 7d }
discovery: { labels: false }
state_dir: \${STATE}
`);
    attach = workspace(`
targets: [{ name: local, type: local, path: ${ws.backups} }]
jobs:
  - { name: search, plugin: elasticsearch, container: ${es.name}, full_every: 7d }
discovery: { labels: false }
docker: { transfer: attach }
state_dir: ${path.join(ws.dir, 'state')}
`);
  });

  after(async () => {
    await es?.client.close();
    await es?.remove();
    ws?.cleanup();
    attach?.cleanup();
  });

  it('the first backup is a full: every repository file in its data, its file list the index', async () => {
    const l = await backup();
    fps.push(await fingerprint());
    assert.equal(l.kind, 'full');
    assert.equal(l.depends_on, undefined);
    assert.equal(l.stats.files_shipped, l.stats.files);
    assert.equal(l.stats.files_reused, 0);
    assert.equal(l.represented_size, l.stats.bytes);
    const { files } = stored(ids[0]!);
    assert.equal(files.length, l.stats.files);
    assert.ok(files.every((f) => f.in === ids[0]));
    assert.ok(files.some((f) => f.path === 'index.latest') && files.some((f) => f.path.startsWith('indices/')));
  });

  it('after ~3 % new documents the second ships only the new files and takes the rest from the first', async () => {
    await put(es!.client, 'logs', 20_000, 20_600);
    await put(es!.client, 'products', 5_000, 5_150);
    await es!.client.indices.refresh({ index: NAMES.join(',') });
    const l = await backup();
    fps.push(await fingerprint());
    assert.equal(l.kind, 'incremental');
    assert.deepEqual(l.depends_on, [ids[0]]);
    assert.equal(l.stats.indices.logs.docs, 20_600);
    const first = stored(ids[0]!);
    const second = stored(ids[1]!);
    const ratio = dataOf(second.manifest).raw_size / dataOf(first.manifest).raw_size;
    console.log(`# second/first data raw size: ${(ratio * 100).toFixed(1)} %, stored ${dataOf(second.manifest).size} / ${dataOf(first.manifest).size} B`);
    assert.ok(ratio < 0.25, `the second backup's data is ${(ratio * 100).toFixed(1)} % of the first's`);
    // what it takes from the first is exactly what the first holds, byte for byte
    const old = new Map(first.files.map((f) => [f.path, f]));
    const reused = second.files.filter((f) => f.in === ids[0]);
    assert.equal(reused.length, l.stats.files_reused);
    assert.ok(reused.length > 0 && reused.every((f) => old.get(f.path)?.sha256 === f.sha256 && old.get(f.path)?.size === f.size));
    assert.ok(reused.reduce((n, f) => n + f.size, 0) > l.stats.bytes_shipped, 'most of the repository is reused');
    assert.equal(second.files.filter((f) => f.in === ids[1]).length, l.stats.files_shipped);
    assert.equal(l.represented_size, second.files.reduce((n, f) => n + f.size, 0));
    // index.latest changes with every snapshot: shipped again
    assert.equal(second.files.find((f) => f.path === 'index.latest')!.in, ids[1]);
  });

  it('restores the second backup after its indices were deleted: as it was backed up', async () => {
    await es!.client.indices.delete({ index: NAMES.join(',') });
    await restore(ids[1]!);
    assert.deepEqual(await fingerprint(), fps[1]);
  });

  it('restores the first backup (a full) over the indices with --force: as it was backed up', async () => {
    await restore(ids[0]!, '--config', ws.config, '--force');
    assert.deepEqual(await fingerprint(), fps[0]);
  });

  it('a third backup (documents deleted) builds on both; restored, it is as it was backed up (attach streams)', async () => {
    // (the image has no reindex module: no delete-by-query)
    const res = await es!.client.bulk({ operations: Array.from({ length: 200 }, (_, i) => ({ delete: { _index: 'logs', _id: String(i) } })), refresh: true });
    assert.equal(res.errors, false);
    const l = await backup(attach.config);
    fps.push(await fingerprint());
    assert.equal(l.kind, 'incremental');
    assert.equal(l.stats.indices.logs.docs, 19_800);
    const third = stored(ids[2]!);
    const holders = new Set(third.files.map((f) => f.in));
    assert.ok(holders.has(ids[2]!));
    // every backup that holds a file it needs, and nothing but the earlier two
    for (const h of holders) if (h !== ids[2]) assert.ok(l.depends_on.includes(h), h);
    assert.ok(l.depends_on.every((id: string) => ids.slice(0, 2).includes(id)));
    console.log(`# third: files from ${[...holders].map((h) => `${h}: ${third.files.filter((f) => f.in === h).length}`).join(', ')}`);
    await es!.client.indices.delete({ index: NAMES.join(',') });
    await restore(ids[2]!, '--config', attach.config);
    assert.deepEqual(await fingerprint(), fps[2]);
  });

  it('a damaged byte in the first backup: the restore of the third exits 3 and changes nothing', async () => {
    const file = path.join(dirOf(ids[0]!), dataOf(stored(ids[0]!).manifest).name);
    flipByte(file);
    try {
      const r = await snapagent(['restore', '--config', ws.config, '--job', 'search', '--id', ids[2]!, '--force', '--json']);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.deepEqual(await fingerprint(), fps[2]);
      assert.deepEqual(Object.keys(await es!.client.snapshot.getRepository()), ['snapagent']);
      assert.deepEqual((await docker('exec', es!.name, 'ls', '-A', REPO)).split('\n').filter((n) => n.includes('restore')), []);
    } finally {
      flipByte(file);
    }
  });

  it('verify checks the whole chain; a drill restores the third into a throwaway cluster', async () => {
    const v = await snapagent(['verify', '--config', ws.config, '--id', ids[2]!, '--json']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    // one Elasticsearch at a time: the live one stops for the drill (the last test)
    await docker('stop', es!.name);
    const t0 = performance.now();
    const d = await snapagent(['verify', '--config', ws.config, '--id', ids[2]!, '--drill', '--json']);
    assert.equal(d.code, 0, d.stdout + d.stderr);
    console.log(`# drill of the third: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });
});
