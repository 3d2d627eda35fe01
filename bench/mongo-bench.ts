// mongo-bench: snapagent's mongo backup and restore against the raw pipeline, in the
// same run, on the same server. It starts snapagent-test/mongo (FerretDB with the real
// mongodump/mongorestore) on 127.0.0.1, fills a database `bench` of ~BENCH_SIZE_MB
// (default 500) MB of documents (text, numbers, dates, arrays, a binary field), then
// times, BENCH_RUNS (default 3) times each, alternating, medians printed:
//   raw backup       mongodump --db bench --archive | zstd -3 -T0 > /tmp/snapagent-bench-raw.zst (in the container)
//   snapagent        snapagent backup --json (dump in the container, counted, compressed,
//                    hashed, written to a local target; + peak RSS)
//   raw restore      zstd -dc /tmp/snapagent-bench-raw.zst | mongorestore --archive --drop (in the container)
//   snapagent        snapagent restore --job bench --force --json (checks every stored
//                    byte, mongorestore --drop, then compares counts and indexes)
// and prints the ratios next to the targets (≤ 1.10 both, peak RSS ≤ 150 MB). It reports; it does not gate.
// BENCH_JSON=path writes the numbers as JSON. FerretDB is much slower than mongod: the
// ratios, not the absolute times, are the result.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Binary, MongoClient } from 'mongodb';
import { benchDump, inContainer as inC, MB, report, run } from './lib.ts';

const SIZE_MB = Number(process.env.BENCH_SIZE_MB ?? 500);
if (!(SIZE_MB >= 5)) throw new Error(`BENCH_SIZE_MB must be a number >= 5 (got ${process.env.BENCH_SIZE_MB})`);
const IMAGE = 'snapagent-test/mongo:latest';
const NAME = `sa-bench-mongo-${Math.random().toString(36).slice(2, 8)}`;
const PORT = 37000 + Math.floor(Math.random() * 1000);
const PASSWORD = `bench-${Math.random().toString(36).slice(2)}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sa-bench-mongo-'));
const CONFIG = path.join(tmp, 'snapagent.yaml');
const DOC_BYTES = 8 * 1024;
const inContainer = (script: string, what: string) => inC(NAME, script, what);

async function main(): Promise<void> {
  const docs = Math.max(500, Math.round((SIZE_MB * MB) / DOC_BYTES));
  console.log(`mongo-bench: ${NAME} on 127.0.0.1:${PORT}, ~${SIZE_MB} MB (${docs} documents of ~${DOC_BYTES / 1024} KiB); tmp ${tmp}`);
  writeFileSync(path.join(tmp, 'env'), `MONGO_INITDB_ROOT_USERNAME=root\nMONGO_INITDB_ROOT_PASSWORD=${PASSWORD}\n`, { mode: 0o600 });
  run('docker', ['run', '-d', '--name', NAME, '--network', 'host', '--env-file', path.join(tmp, 'env'), '-v', `${NAME}-db:/data/db`, '-v', `${NAME}-cfg:/data/configdb`,
    IMAGE, '--bind_ip', '127.0.0.1', '--port', String(PORT)], 'docker run');
  // The tools' --config file: the password stays off every command line.
  run('docker', ['exec', '-i', NAME, 'sh', '-c', 'umask 077; cat > /tmp/bench.yaml'], 'writing the tools config',
    `uri: ${JSON.stringify(`mongodb://root:${encodeURIComponent(PASSWORD)}@127.0.0.1:${PORT}/?authSource=admin`)}\n`);
  const client = new MongoClient(`mongodb://127.0.0.1:${PORT}/`, { directConnection: true, auth: { username: 'root', password: PASSWORD }, authSource: 'admin', serverSelectionTimeoutMS: 2000 });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await client.connect();
      await client.db('admin').command({ listDatabases: 1 });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`mongo in ${NAME} did not start: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  const t0 = performance.now();
  const words = 'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa'.split(' ');
  const coll = client.db('bench').collection('events');
  for (let i = 0; i < docs; i += 500) {
    await coll.insertMany(Array.from({ length: Math.min(500, docs - i) }, (_, k) => {
      const n = i + k;
      const text: string[] = [];
      while (text.join(' ').length < DOC_BYTES - 1500) text.push(`${words[(n * 7 + text.length) % 16]}-${(n * 31 + text.length * 17) % 100000}`);
      return { n, at: new Date(Date.UTC(2024, 0, 1) + n * 1000), level: ['info', 'warn', 'error'][n % 3], tags: [words[n % 16], words[(n >> 4) % 16]], text: text.join(' '),
        blob: new Binary(Buffer.from(Array.from({ length: 1024 }, (_, j) => (n * 131 + j * 7919) & 255))), metrics: { a: n / 7, b: n % 1000, c: [n, n * 2, n * 3] } };
    }));
  }
  await coll.createIndex({ at: 1 });
  await coll.createIndex({ level: 1, n: -1 });
  await client.close();
  const genSeconds = (performance.now() - t0) / 1000;
  console.log(`inserted ${docs} documents in ${genSeconds.toFixed(1)} s`);

  writeFileSync(CONFIG, [
    'targets:', `  - { name: local, type: local, path: ${tmp}/backups }`,
    'jobs:', `  - { name: bench, plugin: mongo, container: ${NAME}, tier: critical, options: { database: bench } }`,
    'discovery: { labels: false }', `state_dir: ${tmp}/state`, ''].join('\n'));
  console.log(`data: ${docs} documents`);
  const { result, seconds, bytes, runs } = await benchDump({
    inContainer,
    dump: 'mongodump --config=/tmp/bench.yaml --db bench --archive --quiet',
    load: 'mongorestore --config=/tmp/bench.yaml --archive --drop --quiet',
    config: CONFIG,
    restoreArgs: ['--force'],
    dumpTool: 'mongodump',
    loadTool: 'mongorestore',
    noun: 'archive',
  });
  report(result, { backup_vs_raw: 1.1, restore_vs_raw: 1.1, peak_rss_mb: 150 },
    { seconds, runs, bytes, documents: docs, size_mb_requested: SIZE_MB, generate_seconds: genSeconds });
}

process.on('SIGINT', () => console.error('\ninterrupted: cleaning up'));
try {
  await main();
} catch (err) {
  console.error(`\nmongo-bench: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  spawnSync('docker', ['rm', '-f', '-v', NAME], { stdio: 'ignore' });
  for (const v of [`${NAME}-db`, `${NAME}-cfg`]) spawnSync('docker', ['volume', 'rm', '-f', v], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
}
