// cassandra-bench: snapagent's cassandra backup against the raw pipeline, in the same
// run, on the same node. It starts snapagent-test/cassandra on 127.0.0.1, fills a
// keyspace `bench` with ~BENCH_SIZE_MB (default 512) MB of SSTables (rows of log-like
// text and a random 2 KiB blob, clustered by day), flushes, then times, each once:
//   raw snapshot     nodetool snapshot -t raw bench           (inside the container)
//   raw shipping     tar -c <the snapshot dirs> | zstd -3 -T0 > file
//                    (on the host, from the volume's directory: the limit here)
//   raw + sha256     the same | tee file | openssl dgst -sha256 (what any pipeline that
//                    records the archive's checksum while streaming has to do)
//   raw clear        nodetool clearsnapshot -t raw
//   snapagent        snapagent backup --json (count_rows: false), split by the manifest's
//                    timings: prepare (connect, schema, nodetool snapshot), shipping =
//                    stream (tar in the container → named pipe → zstd → sha256 → local
//                    target, until stored), finish (clearsnapshot); and the total
//   snapagent        snapagent restore after DROP KEYSPACE (informational: extract,
//                    schema, nodetool import, row counts)
// and prints shipping vs raw (target ≤ 1.2), the whole backup vs raw snapshot + shipping
// + clear (the agent's start-up, CQL connection and schema read are in it), and peak RSS. It reports; it does not gate.
// BENCH_JSON=path writes the numbers as JSON; BENCH_DEBUG=1 also runs one backup with
// debug logs (per-step timings). Only node built-ins + cassandra-driver.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import cassandra from 'cassandra-driver';
import { agent, bash, MB, printTable, report, run, step } from './lib.ts';

const SIZE_MB = Number(process.env.BENCH_SIZE_MB ?? 512);
if (!(SIZE_MB >= 10)) throw new Error(`BENCH_SIZE_MB must be a number >= 10 (got ${process.env.BENCH_SIZE_MB})`);
const IMAGE = 'snapagent-test/cassandra:latest';
const NAME = `sa-bench-cass-${Math.random().toString(36).slice(2, 8)}`;
const VOLUME = `${NAME}-data`;
const BASE = 26000 + Math.floor(Math.random() * 300) * 10;
const PORT = BASE + 1;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sa-bench-cass-'));
const CONFIG = path.join(tmp, 'snapagent.yaml');
const ROW_BYTES = 2048 + 600;

const nodetool = (args: string[], what: string) => run('docker', ['exec', NAME, 'nodetool', ...args], what);

async function main(): Promise<void> {
  const rows = Math.max(5000, Math.round((SIZE_MB * MB) / ROW_BYTES));
  console.log(`cassandra-bench: ${NAME} on 127.0.0.1:${PORT}, ~${SIZE_MB} MB (${rows} rows); tmp ${tmp}`);
  run('docker', ['run', '-d', '--name', NAME, '--network', 'host', '-v', `${VOLUME}:/var/lib/cassandra`,
    '-e', 'CASSANDRA_LISTEN_ADDRESS=127.0.0.1', '-e', 'CASSANDRA_RPC_ADDRESS=127.0.0.1', '-e', `CASSANDRA_NATIVE_PORT=${PORT}`,
    '-e', `CASSANDRA_STORAGE_PORT=${BASE + 2}`, '-e', `CASSANDRA_JMX_PORT=${BASE + 3}`, '-e', 'MAX_HEAP_SIZE=1G', '-e', 'HEAP_NEWSIZE=200M',
    '-e', 'JVM_EXTRA_OPTS=-Dcassandra.ring_delay_ms=1000 -Dcassandra.skip_wait_for_gossip_to_settle=0', IMAGE], 'docker run');
  const client = new cassandra.Client({ contactPoints: [`127.0.0.1:${PORT}`], localDataCenter: 'datacenter1', socketOptions: { readTimeout: 120_000 } });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      await client.connect();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`Cassandra in ${NAME} did not start: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    const t0 = performance.now();
    await client.execute("CREATE KEYSPACE bench WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    await client.execute('CREATE TABLE bench.events (day text, ts timeuuid, level text, path text, status int, latency double, payload blob, PRIMARY KEY ((day), ts))');
    const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
    const w = (i: number) => words[(i * 2654435761) % words.length]!;
    const rand = Buffer.alloc(2048);
    for (let from = 0; from < rows; from += 20_000) {
      const batch = [];
      for (let i = from; i < Math.min(rows, from + 20_000); i++) {
        for (let j = 0; j < rand.length; j += 4) rand.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, j);
        const text = `/api/v1/${w(i)}/${i % 100000}/${w(i + 3)}?q=${w(i + 5)}_${w(i + 7)}&page=${i % 97} `.repeat(6);
        batch.push([`2024-01-${String(1 + (i % 28)).padStart(2, '0')}-${i % 50}`, cassandra.types.TimeUuid.fromDate(new Date(Date.UTC(2024, 0, 1) + i * 10), i % 9999),
          ['info', 'warn', 'error', 'debug'][i % 4], text, 200 + (i % 4) * 100, (i % 1000) / 3, Buffer.from(rand)]);
      }
      await cassandra.concurrent.executeConcurrent(client, 'INSERT INTO bench.events (day, ts, level, path, status, latency, payload) VALUES (?, ?, ?, ?, ?, ?, ?)', batch, { concurrencyLevel: 64 });
    }
    nodetool(['flush', 'bench'], 'flush');
    const genSeconds = (performance.now() - t0) / 1000;
    const mountpoint = run('docker', ['volume', 'inspect', '-f', '{{.Mountpoint}}', VOLUME], 'volume inspect').trim();
    const dataDir = path.join(mountpoint, 'data');
    const sstMb = Number(bash(`du -sm ${dataDir}/bench | cut -f1`, 'du'));
    console.log(`generated ${rows} rows, ${sstMb} MB of SSTables in ${genSeconds.toFixed(1)} s`);

    const seconds: Record<string, number> = {};
    const bytes: Record<string, number> = {};
    const settle = () => run('bash', ['-c', 'sync'], 'sync');
    // Warm the page cache alike for both sides.
    bash(`tar -C ${dataDir} -cf - bench | cat > /dev/null`, 'warm-up read');
    settle();
    seconds.raw_snapshot = await step('raw_snapshot', () => nodetool(['snapshot', '-t', 'raw', 'bench'], 'raw snapshot'));
    const dirs = bash(`cd ${dataDir} && find bench -mindepth 3 -maxdepth 3 -type d -path '*/snapshots/raw'`, 'find').trim().split('\n');
    settle();
    seconds.raw_ship = await step('raw_ship', () => bash(`cd ${dataDir} && tar -cf - ${dirs.join(' ')} | zstd -3 -T0 -q > ${tmp}/raw.tar.zst`, 'raw tar | zstd'));
    bytes.raw_ship = statSync(`${tmp}/raw.tar.zst`).size;
    // the same with a sha256 of the stored bytes, as any backup that records one must do
    settle();
    seconds.raw_ship_sha = await step('raw_ship_sha', () => bash(`cd ${dataDir} && tar -cf - ${dirs.join(' ')} | zstd -3 -T0 -q | tee ${tmp}/raw-sha.tar.zst | openssl dgst -sha256 >/dev/null`, 'raw tar | zstd | tee | sha256'));
    bytes.snapshot = Number(bash(`cd ${dataDir} && du -sb --apparent-size ${dirs.join(' ')} | awk '{s+=$1} END {print s}'`, 'du'));
    seconds.raw_clear = await step('raw_clear', () => nodetool(['clearsnapshot', '-t', 'raw'], 'clear raw snapshot'));

    writeFileSync(CONFIG, [
      'targets:', `  - { name: local, type: local, path: ${tmp}/backups }`,
      'jobs:', `  - { name: bench, plugin: cassandra, container: ${NAME}, tier: critical, options: { keyspaces: [bench], count_rows: false } }`,
      'discovery: { labels: false }', `state_dir: ${tmp}/state`, ''].join('\n'));
    settle();
    let b!: Awaited<ReturnType<typeof agent>>;
    seconds.snapagent_backup = await step('snapagent_backup', async () => (b = await agent(['backup'], CONFIG, 'snapagent backup')));
    // per-step timings of a second backup, on demand
    if (process.env.BENCH_DEBUG) console.log(run("bash", ["-c", `SNAPAGENT_LOG_LEVEL=debug node bin/snapagent.js backup --config ${CONFIG} 2>&1 >/dev/null | cut -c1-220`], "debug backup"));
    bytes.snapagent_backup = b.doc.results[0].size;
    const list = await agent(['list'], CONFIG, 'snapagent list');
    const m = list.doc.backups[0];
    seconds.snapagent_snapshot = Number(m.stats.snapshot_seconds);
    // the manifest's timings: prepare (connect, schema, snapshot, listing), stream (tar in
    // the container → named pipe → zstd → sha256 → target, until the artifact is stored),
    // finish (clearsnapshot, overlapping the stream's tail)
    seconds.snapagent_prepare = Number(m.timings.prepare_seconds);
    seconds.snapagent_ship = Number(m.timings.stream_seconds);
    seconds.snapagent_finish = Number(m.timings.finish_seconds);

    await client.execute('DROP KEYSPACE bench');
    settle();
    let r!: Awaited<ReturnType<typeof agent>>;
    seconds.snapagent_restore = await step('snapagent_restore', async () => (r = await agent(['restore', '--job', 'bench'], CONFIG, 'snapagent restore')));
    if (r.doc.ok !== true) throw new Error(`snapagent restore reported ok=${r.doc.ok}: ${JSON.stringify(r.doc)}`);
    const restored = Number((await client.execute('SELECT COUNT(*) AS n FROM bench.events', [], { readTimeout: 300_000 })).first().n);
    if (restored !== rows) throw new Error(`restored ${restored} rows, expected ${rows}`);

    console.log(`\ndata: ${rows} rows, ${(bytes.snapshot / MB).toFixed(1)} MB of snapshot files\n`);
    printTable([
      ['raw snapshot (nodetool snapshot)', seconds.raw_snapshot, undefined],
      ['raw shipping (tar | zstd -3 -T0)', seconds.raw_ship, bytes.raw_ship],
      ['raw shipping + sha256 (… | tee | openssl)', seconds.raw_ship_sha, bytes.raw_ship],
      ['raw clearsnapshot', seconds.raw_clear, undefined],
      ['raw total (snapshot + shipping + clear)', seconds.raw_snapshot + seconds.raw_ship + seconds.raw_clear, bytes.raw_ship],
      ['snapagent snapshot (nodetool, manifest)', seconds.snapagent_snapshot, undefined],
      ['snapagent prepare (connect, schema, snapshot)', seconds.snapagent_prepare, undefined],
      ['snapagent shipping (stream until stored)', seconds.snapagent_ship, bytes.snapagent_backup],
      ['snapagent finish (clearsnapshot, after stream)', seconds.snapagent_finish, undefined],
      ['snapagent backup (total, process start to exit)', seconds.snapagent_backup, bytes.snapagent_backup],
      ['snapagent restore (import + counts)', seconds.snapagent_restore, undefined],
    ], bytes.snapshot / MB, 'snap MB/s');
    report(
      { ship_vs_raw: seconds.snapagent_ship / seconds.raw_ship, ship_vs_raw_sha256: seconds.snapagent_ship / seconds.raw_ship_sha, total_vs_raw: seconds.snapagent_backup / (seconds.raw_snapshot + seconds.raw_ship + seconds.raw_clear), size_vs_raw: bytes.snapagent_backup! / bytes.raw_ship!, peak_rss_mb: Math.max(b.peakKb, r.peakKb) / 1024 },
      { ship_vs_raw: 1.2, ship_vs_raw_sha256: 1.2, total_vs_raw: 1.5, size_vs_raw: 1.05, peak_rss_mb: 200 },
      { seconds, bytes, rows, sstable_mb: sstMb, size_mb_requested: SIZE_MB, generate_seconds: genSeconds },
    );
  } finally {
    await client.shutdown().catch(() => undefined);
  }
}

process.on('SIGINT', () => console.error('\ninterrupted: cleaning up'));
try {
  await main();
} catch (err) {
  console.error(`\ncassandra-bench: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  spawnSync('docker', ['rm', '-f', '-v', NAME], { stdio: 'ignore' });
  spawnSync('docker', ['volume', 'rm', '-f', VOLUME], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
}
