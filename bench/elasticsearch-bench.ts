// elasticsearch-bench: snapagent's elasticsearch backup split into snapshot time (ES)
// and shipping time, against the raw pipeline on the same repository, in the same run.
// It starts snapagent-test/elasticsearch on 127.0.0.1 (security off, path.repo on a
// volume), fills an index with ~BENCH_SIZE_MB (default 512) MB of log-like JSON
// documents (plus a share of incompressible base64), then times, in this order:
//   snapagent        snapagent backup --json (snapshot into the fs repository, then the
//                    repository shipped: tar in a helper → zstd → sha256 → local target);
//                    the manifest's snapshot_seconds splits it into snapshot and shipping
//   raw shipping     tar -C <repository dir> -cf - . | zstd -3 -T0 > file  (on the host,
//                    reading the volume's directory directly)
// and prints ship_vs_raw = shipping / raw, target ≤ 1.2, where shipping is the plugin's
// ship_seconds (helper start, tar → zstd → sha256 → target, helper exit), and
// backup_minus_snapshot_vs_raw = (total − snapshot) / raw, which adds the agent's start-up,
// planning, connection, document counts and commit. It reports; it does not gate. BENCH_JSON=path writes the numbers as JSON.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agent as runAgent, MB, run, timed } from './lib.ts';

const SIZE_MB = Number(process.env.BENCH_SIZE_MB ?? 512);
if (!(SIZE_MB >= 10)) throw new Error(`BENCH_SIZE_MB must be a number >= 10 (got ${process.env.BENCH_SIZE_MB})`);
const IMAGE = 'snapagent-test/elasticsearch:latest';
const NAME = `sa-bench-es-${Math.random().toString(36).slice(2, 8)}`;
const REPO_VOLUME = `${NAME}-snap`;
const DATA_VOLUME = `${NAME}-data`;
const PORT = 29200 + Math.floor(Math.random() * 500);
const URL = `http://127.0.0.1:${PORT}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sa-bench-es-'));

async function es(method: string, p: string, body?: unknown, ndjson = false): Promise<any> {
  const res = await fetch(`${URL}${p}`, { method, headers: { 'content-type': ndjson ? 'application/x-ndjson' : 'application/json' }, body: body === undefined ? undefined : ndjson ? (body as string) : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}
// The agent with its peak RSS (bench/lib.ts).
const agent = (args: string[], what: string) => runAgent(args, path.join(tmp, 'snapagent.yaml'), what);

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];
function doc(i: number): string {
  const w = (k: number) => WORDS[(i * 7 + k * 13) % WORDS.length];
  return JSON.stringify({
    ts: new Date(Date.UTC(2026, 0, 1) + i * 997).toISOString(),
    level: ['info', 'warn', 'error', 'debug'][i % 4],
    method: ['GET', 'POST', 'PUT', 'DELETE'][i % 4],
    path: `/api/v1/${w(1)}/${i % 100000}/${w(2)}`,
    user: `${w(3)}_${w(4)}${i % 1000}`,
    status: 200 + (i % 4) * 100 + (i % 5),
    latency_ms: (i % 2000) / 3,
    bytes: (i * 7919) % 1_000_000,
    trace: ((i * 2654435761) >>> 0).toString(16).padStart(16, '0'),
    msg: `${w(5)} ${w(6)} ${w(7)} request ${i} finished`,
    // a quarter of the size incompressible, as attachments/ids would be
    blob: i % 4 === 0 ? randomBytes(240).toString('base64') : undefined,
  });
}

async function main(): Promise<void> {
  console.log(`elasticsearch-bench: ${NAME} on ${URL}, ~${SIZE_MB} MB of documents; tmp ${tmp}`);
  run('docker', ['run', '-d', '--name', NAME, '--network', 'host', '--user', '0', '-e', 'discovery.type=single-node', '-e', `http.port=${PORT}`, '-e', `transport.port=${PORT + 1000}`,
    '-e', 'xpack.security.enabled=false', '-e', 'path.repo=/usr/share/elasticsearch/snapshots', '-e', 'ES_JAVA_OPTS=-Xms1g -Xmx1g',
    '-v', `${DATA_VOLUME}:/usr/share/elasticsearch/data`, '-v', `${REPO_VOLUME}:/usr/share/elasticsearch/snapshots`, IMAGE], 'docker run');
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      if ((await es('GET', '/_cluster/health?wait_for_status=yellow&timeout=5s')).timed_out === false) break;
    } catch { /* starting */ }
    if (Date.now() > deadline) throw new Error(`Elasticsearch in ${NAME} did not start:\n${run('docker', ['logs', '--tail', '30', NAME], 'docker logs')}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  await es('PUT', '/logs', { settings: { number_of_shards: 2, number_of_replicas: 0, refresh_interval: '-1' }, mappings: { properties: {
    ts: { type: 'date' }, level: { type: 'keyword' }, method: { type: 'keyword' }, path: { type: 'keyword' }, user: { type: 'keyword' }, status: { type: 'short' },
    latency_ms: { type: 'double' }, bytes: { type: 'long' }, trace: { type: 'keyword' }, msg: { type: 'text' }, blob: { type: 'binary' } } } });
  const t0 = performance.now();
  let sourceBytes = 0;
  let i = 0;
  const batch = async () => {
    const lines: string[] = [];
    for (let n = 0; n < 5000; n++, i++) lines.push('{"index":{}}', doc(i));
    const body = lines.join('\n') + '\n';
    sourceBytes += Buffer.byteLength(body);
    const res = await es('POST', '/logs/_bulk', body, true);
    if (res.errors) throw new Error('bulk indexing reported errors');
  };
  while (sourceBytes < SIZE_MB * MB) await Promise.all([batch(), batch()]);
  await es('POST', '/logs/_refresh');
  await es('POST', '/logs/_flush');
  await es('POST', '/logs/_forcemerge?max_num_segments=5');
  const genSeconds = (performance.now() - t0) / 1000;
  const store = (await es('GET', '/_cat/indices/logs?format=json&bytes=b'))[0];
  console.log(`indexed ${store['docs.count']} documents (${(sourceBytes / MB).toFixed(0)} MB of JSON, store ${(Number(store['store.size']) / MB).toFixed(0)} MB) in ${genSeconds.toFixed(1)} s`);

  writeFileSync(path.join(tmp, 'snapagent.yaml'), [
    'targets:', `  - { name: local, type: local, path: ${tmp}/backups }`,
    'jobs:', `  - { name: bench, plugin: elasticsearch, container: ${NAME} }`,
    'discovery: { labels: false }', `state_dir: ${tmp}/state`, ''].join('\n'));
  const settle = () => run('bash', ['-c', 'sync'], 'sync');
  const seconds = {} as Record<'snapagent_backup' | 'snapshot' | 'shipping' | 'plugin_ship' | 'raw_ship', number>;
  const bytes = {} as Record<'repository' | 'snapagent' | 'raw', number>;

  settle();
  process.stdout.write('  snapagent backup … ');
  const b = await agent(['backup'], 'snapagent backup');
  const id = b.doc.results[0].id;
  const manifest = JSON.parse(readFileSync(path.join(tmp, 'backups', os.hostname(), 'bench', id, 'manifest.json'), 'utf8'));
  seconds.snapagent_backup = b.seconds;
  seconds.snapshot = manifest.stats.snapshot_seconds;
  seconds.shipping = b.seconds - seconds.snapshot;
  seconds.plugin_ship = manifest.stats.ship_seconds;
  bytes.repository = manifest.stats.bytes;
  bytes.snapagent = b.doc.results[0].size;
  console.log(`${b.seconds.toFixed(2)} s (snapshot ${seconds.snapshot.toFixed(2)} s, shipping ${seconds.shipping.toFixed(2)} s)`);

  const mount = run('docker', ['volume', 'inspect', '--format', '{{.Mountpoint}}', REPO_VOLUME], 'volume inspect').trim();
  settle();
  process.stdout.write('  raw tar | zstd -3 -T0 … ');
  const rawFile = path.join(tmp, 'raw.tar.zst');
  seconds.raw_ship = timed(() => run('bash', ['-c', `set -o pipefail; tar -C "${mount}/snapagent" -cf - . | zstd -3 -T0 -q > "${rawFile}"`], 'raw tar | zstd'));
  bytes.raw = statSync(rawFile).size;
  console.log(`${seconds.raw_ship.toFixed(2)} s`);

  console.log(`\nrepository: ${(bytes.repository / MB).toFixed(1)} MB in ${manifest.stats.files} files; archive: snapagent ${(bytes.snapagent / MB).toFixed(1)} MB, raw ${(bytes.raw / MB).toFixed(1)} MB\n`);
  console.log(`${'step'.padEnd(44)}${'seconds'.padStart(9)}${'repo MB/s'.padStart(11)}`);
  const row = (name: string, s: number) => console.log(`${name.padEnd(44)}${s.toFixed(2).padStart(9)}${(bytes.repository / MB / s).toFixed(0).padStart(11)}`);
  row('snapagent backup (total)', seconds.snapagent_backup);
  row('  snapshot (Elasticsearch)', seconds.snapshot);
  row('  shipping: tar → zstd → sha256 → target', seconds.plugin_ship);
  row('  total − snapshot (+ start, counts, commit)', seconds.shipping);
  row('raw tar | zstd -3 -T0 of the repository', seconds.raw_ship);
  const result = {
    ship_vs_raw: seconds.plugin_ship / seconds.raw_ship,
    backup_minus_snapshot_vs_raw: seconds.shipping / seconds.raw_ship,
    snapshot_share: seconds.snapshot / seconds.snapagent_backup,
    peak_rss_mb: b.peakKb / 1024,
  };
  const targets: Partial<Record<keyof typeof result, number>> = { ship_vs_raw: 1.2 };
  console.log(`\n${'metric'.padEnd(30)}${'value'.padStart(9)}${'target'.padStart(10)}  verdict`);
  for (const k of Object.keys(result) as (keyof typeof result)[]) {
    const t = targets[k];
    console.log(`${k.padEnd(30)}${result[k].toFixed(k === 'peak_rss_mb' ? 0 : 2).padStart(9)}${(t === undefined ? '-' : `≤ ${t}`).padStart(10)}  ${t === undefined ? '' : result[k] <= t ? 'PASS' : 'MISS'}`);
  }
  if (process.env.BENCH_JSON) {
    writeFileSync(process.env.BENCH_JSON, JSON.stringify({ ...result, targets, seconds, bytes, size_mb_requested: SIZE_MB, documents: Number(store['docs.count']), generate_seconds: genSeconds }, null, 2) + '\n');
    console.log(`wrote ${process.env.BENCH_JSON}`);
  }
}

process.on('SIGINT', () => console.error('\ninterrupted: cleaning up'));
try {
  await main();
} catch (err) {
  console.error(`\nelasticsearch-bench: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  spawnSync('docker', ['rm', '-f', '-v', NAME], { stdio: 'ignore' });
  spawnSync('docker', ['volume', 'rm', '-f', REPO_VOLUME, DATA_VOLUME], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
}
