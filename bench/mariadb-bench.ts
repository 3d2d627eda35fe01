// mariadb-bench: snapagent's mariadb backup and restore against the raw pipeline, in
// the same run, on the same server. It starts snapagent-test/mariadb on 127.0.0.1,
// fills a database `bench` whose dump is ~BENCH_SIZE_MB (default 1024) MB: an InnoDB
// table of log-like rows (text, numbers, dates, NULLs) and one of random 1 KiB BLOBs,
// then times, BENCH_RUNS (default 3) times each, alternating, medians printed:
//   raw backup       mariadb-dump <same flags> | zstd -3 -T0 > /tmp/snapagent-bench-raw.zst
//                    (all inside the container: the pipeline snapagent replaces)
//   snapagent        snapagent backup --json (dump in the container, counted,
//                    compressed, hashed, written to a local target; + peak RSS)
//   raw restore      zstd -dc /tmp/snapagent-bench-raw.zst | mariadb     (inside the container)
//   snapagent        snapagent restore --job bench --json (checks every stored byte,
//                    loads, then re-dumps and compares counts and checksums; + peak RSS)
// and prints the ratios next to the targets (≤ 1.10 both, peak RSS ≤ 150 MB). It reports; it does not gate.
// BENCH_JSON=path writes the numbers as JSON. Only node built-ins; run from the repo root.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchDump, inContainer as inC, MB, report, run } from './lib.ts';

const SIZE_MB = Number(process.env.BENCH_SIZE_MB ?? 1024);
if (!(SIZE_MB >= 10)) throw new Error(`BENCH_SIZE_MB must be a number >= 10 (got ${process.env.BENCH_SIZE_MB})`);
const IMAGE = 'snapagent-test/mariadb:latest';
const NAME = `sa-bench-mdb-${Math.random().toString(36).slice(2, 8)}`;
const VOLUME = `${NAME}-data`;
const PORT = 36000 + Math.floor(Math.random() * 1000);
const PASSWORD = `bench-${Math.random().toString(36).slice(2)}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sa-bench-mdb-'));
const CONFIG = path.join(tmp, 'snapagent.yaml');
// The dump flags snapagent uses (plugins/mariadb/index.ts), so both sides dump the same bytes.
const DUMP_FLAGS = '--single-transaction --routines --events --triggers --hex-blob --add-drop-database --default-character-set=utf8mb4 --skip-dump-date --databases bench';

const inContainer = (script: string, what: string) => inC(NAME, script, what);
const sql = (query: string, what: string) => inContainer(`mariadb --defaults-extra-file=/tmp/bench.cnf -N -B bench -e ${JSON.stringify(query)}`, what);

async function main(): Promise<void> {
  // Dump bytes per row, measured: events ~185, blobs ~2,070 (hex). A quarter of the
  // size goes to BLOBs (incompressible), the rest to text.
  const blobRows = Math.max(1000, Math.round((SIZE_MB * MB * 0.25) / 2070));
  const eventRows = Math.max(10000, Math.round((SIZE_MB * MB * 0.75) / 185));
  console.log(`mariadb-bench: ${NAME} on 127.0.0.1:${PORT}, ~${SIZE_MB} MB dump (${eventRows} event rows, ${blobRows} 1 KiB blobs); tmp ${tmp}`);
  // The password reaches the container through an env file, not the command line.
  writeFileSync(path.join(tmp, 'env'), `MARIADB_ROOT_PASSWORD=${PASSWORD}\n`, { mode: 0o600 });
  // A buffer pool and redo log sized for a 1 GiB load, as an operator would configure.
  run('docker', ['run', '-d', '--name', NAME, '--network', 'host', '--env-file', path.join(tmp, 'env'), '-v', `${VOLUME}:/var/lib/mysql`,
    IMAGE, `--port=${PORT}`, '--bind-address=127.0.0.1', '--innodb-buffer-pool-size=1G', '--innodb-log-file-size=512M'], 'docker run');
  run('docker', ['exec', '-i', NAME, 'sh', '-c', 'umask 077; cat > /tmp/bench.cnf'], 'writing the option file', `[client]\nuser=root\npassword="${PASSWORD}"\n`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = spawnSync('docker', ['exec', NAME, 'mariadb', '--defaults-extra-file=/tmp/bench.cnf', '-e', 'SELECT 1'], { stdio: 'ignore' });
    if (r.status === 0) break;
    if (Date.now() > deadline) throw new Error(`MariaDB in ${NAME} did not start:\n${run('docker', ['logs', '--tail', '30', NAME], 'docker logs')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const t0 = performance.now();
  {
    inContainer(`mariadb --defaults-extra-file=/tmp/bench.cnf -e 'CREATE DATABASE bench'`, 'create database');
    sql(`CREATE TABLE events (id BIGINT PRIMARY KEY, ts DATETIME(3) NOT NULL, level VARCHAR(8) NOT NULL, method VARCHAR(8), path VARCHAR(200) NOT NULL,
      user VARCHAR(64), status SMALLINT NOT NULL, latency_ms DOUBLE, bytes INT, trace CHAR(16), msg TEXT, KEY (ts)) ENGINE=InnoDB;
      CREATE TABLE blobs (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, data BLOB NOT NULL) ENGINE=InnoDB`, 'create tables');
    const words = `ELT(1 + FLOOR(RAND() * 8), 'alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel')`;
    for (let from = 1; from <= eventRows; from += 500_000) {
      const to = Math.min(eventRows, from + 499_999);
      sql(`INSERT INTO events SELECT seq, TIMESTAMP('2024-01-01') + INTERVAL FLOOR(RAND() * 31536000000) / 1000 SECOND,
        ELT(1 + FLOOR(RAND() * 4), 'info', 'warn', 'error', 'debug'), IF(RAND() < 0.05, NULL, ELT(1 + FLOOR(RAND() * 5), 'GET', 'POST', 'PUT', 'DELETE', 'PATCH')),
        CONCAT('/api/v1/', ${words}, '/', FLOOR(RAND() * 100000), '/', ${words}), IF(RAND() < 0.1, NULL, CONCAT(${words}, '_', ${words}, FLOOR(RAND() * 1000))),
        200 + FLOOR(RAND() * 4) * 100 + FLOOR(RAND() * 5), RAND() * 2000, FLOOR(RAND() * 1000000), LPAD(HEX(FLOOR(RAND() * 18446744073709551615)), 16, '0'),
        CONCAT(${words}, ' ', ${words}, ' ', ${words}, ' ''quoted'' \\\\ ', ${words})
        FROM seq_${from}_to_${to}`, 'insert events');
    }
    for (let from = 1; from <= blobRows; from += 50_000) {
      const to = Math.min(blobRows, from + 49_999);
      sql(`INSERT INTO blobs SELECT seq, CONCAT('blob-', seq), RANDOM_BYTES(1024) FROM seq_${from}_to_${to}`, 'insert blobs');
    }
  }
  const genSeconds = (performance.now() - t0) / 1000;
  sql('ANALYZE TABLE events, blobs', 'analyze');
  const dataMb = Number(sql(`SELECT SUM(data_length + index_length) / 1048576 FROM information_schema.tables WHERE table_schema = 'bench'`, 'size'));
  console.log(`generated ${dataMb.toFixed(0)} MB of InnoDB data in ${genSeconds.toFixed(1)} s`);

  writeFileSync(CONFIG, [
    'targets:', `  - { name: local, type: local, path: ${tmp}/backups }`,
    'jobs:', `  - { name: bench, plugin: mariadb, container: ${NAME}, tier: critical, options: { databases: [bench] } }`,
    'discovery: { labels: false }', `state_dir: ${tmp}/state`, ''].join('\n'));
  const { result, seconds, bytes, runs } = await benchDump({
    inContainer,
    dump: `mariadb-dump --defaults-extra-file=/tmp/bench.cnf ${DUMP_FLAGS}`,
    load: 'mariadb --defaults-extra-file=/tmp/bench.cnf',
    config: CONFIG,
    restoreArgs: [],
    dumpTool: 'mariadb-dump',
    loadTool: 'mariadb',
    noun: 'dump',
  });
  report(result, { backup_vs_raw: 1.1, restore_vs_raw: 1.1, peak_rss_mb: 150 },
    { seconds, runs, bytes, data_mb: dataMb, size_mb_requested: SIZE_MB, event_rows: eventRows, blob_rows: blobRows, generate_seconds: genSeconds });
}

process.on('SIGINT', () => console.error('\ninterrupted: cleaning up'));
try {
  await main();
} catch (err) {
  console.error(`\nmariadb-bench: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  spawnSync('docker', ['rm', '-f', '-v', NAME], { stdio: 'ignore' });
  spawnSync('docker', ['volume', 'rm', '-f', VOLUME], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
}
