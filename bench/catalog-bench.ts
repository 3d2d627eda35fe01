// catalog-bench: `snapagent list` and `snapagent status` with BENCH_BACKUPS (default
// 1,000) committed backups of BENCH_JOBS (default 4) jobs on the tests' S3 server
// (`rclone serve s3`), read three ways: with each job's catalog index (warm), by a host
// that finds no index and writes it (cold), and by a reader that cannot use or write one
// (another host trusting this host's key, without its private key: every manifest read,
// as before the index). The backups are real: small zstd artifacts and manifests made and
// signed by the agent's own functions with the host's key (test/helpers/catalog-fixture.ts),
// every tenth with a signed verify record, uploaded in one `rclone copy`. It counts the
// remote calls two ways: rclone processes the agent started (an rclone wrapper first on
// PATH) and requests the S3 server answered. Prints seconds (the slow ways once, with the
// index the median of BENCH_RUNS, default 3) and calls per job against the issue's
// targets (≤ 2 s, ≤ 10 calls per job). It
// reports; it does not gate. Run from the repo root (make bench BENCH=catalog); `status`
// pings Docker, nothing else needs it.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { hostKey } from '../agent/catalog/signing.ts';
import { fixtureFiles, signedFiles } from '../test/helpers/catalog-fixture.ts';
import { startS3Server } from '../test/helpers/s3-server.ts';
import { CHECK_FILES, CHECK_FORMAT } from '../agent/catalog/manifest.ts';
import { report, run } from './lib.ts';

const BACKUPS = Number(process.env.BENCH_BACKUPS ?? 1000);
const JOBS = Number(process.env.BENCH_JOBS ?? 4);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const HOST = 'bench-host';
const REMOTE = 'benchs3';

const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-bench-catalog-'));
const s3 = await startS3Server({ countRequests: true });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// Every rclone the agent starts goes through this wrapper, which notes its command.
const bin = path.join(dir, 'bin');
const calls = path.join(dir, 'rclone-calls');
mkdirSync(bin);
const realRclone = run('bash', ['-c', 'command -v rclone'], 'which rclone').trim();
writeFileSync(path.join(bin, 'rclone'), `#!/bin/sh\necho "$*" >> ${JSON.stringify(calls)}\nexec ${JSON.stringify(realRclone)} "$@"\n`);
chmodSync(path.join(bin, 'rclone'), 0o755);
const env = { ...process.env, ...s3.env(REMOTE), PATH: `${bin}:${process.env.PATH}`, SNAPAGENT_LOG_LEVEL: 'warn', SNAPAGENT_LOG_FORMAT: 'json' };

interface Measured {
  seconds: number;
  rclone: number;
  requests: number;
  backups: number;
}

// One agent command (exit 0, or 1 for a status that finds jobs stale), timed and counted.
function agent(args: string[], config: string): Promise<Measured> {
  writeFileSync(calls, '');
  const before = s3.requests();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/snapagent.js', ...args, '--config', config, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.on('close', (code) => {
      const seconds = (performance.now() - t0) / 1000;
      if (code !== 0 && !(args[0] === 'status' && code === 1)) return reject(new Error(`snapagent ${args.join(' ')} exited ${code}\n${err.slice(-3000)}`));
      const doc = JSON.parse(out);
      const backups = args[0] === 'list' ? doc.backups.length : doc.jobs.length;
      // the server logs each request as it answers it: give the last lines a moment
      setTimeout(() => resolve({ seconds, rclone: readFileSync(calls, 'utf8').split('\n').filter(Boolean).length, requests: s3.requests() - before, backups }), 200);
    });
  });
}

try {
  const state = path.join(dir, 'state');
  const signer = await hostKey(state);
  const jobs = Array.from({ length: JOBS }, (_, i) => `app-${i + 1}`);
  const target = { name: 's3', type: 'rclone', remote: `${REMOTE}:bench/snapagent` };
  const config = path.join(dir, 'snapagent.yml');
  writeFileSync(config, stringify({ host: HOST, state_dir: state, targets: [target], discovery: { labels: false }, jobs: jobs.map((j) => ({ name: j, plugin: 'volume', volume: `bench-${j}`, tier: 'critical' })) }));
  // another machine's view: trusts this host's public key, holds no private key of it
  const reader = path.join(dir, 'reader.yml');
  writeFileSync(reader, stringify({ host: HOST, state_dir: path.join(dir, 'reader-state'), trusted_keys: [signer.line], targets: [target], discovery: { labels: false }, jobs: jobs.map((j) => ({ name: j, plugin: 'volume', volume: `bench-${j}`, tier: 'critical' })) }));

  // the backups, hourly back from now, spread over the jobs
  const staging = path.join(dir, 'staging');
  const now = Date.now();
  let bytes = 0;
  for (let i = 0; i < BACKUPS; i++) {
    const job = jobs[i % JOBS]!;
    const { manifest, files } = fixtureFiles({ host: HOST, job, at: new Date(now - 3_600_000 * (Math.floor(i / JOBS) + 1)) }, signer);
    if (i % 10 === 0) {
      const rec = { format: CHECK_FORMAT, kind: 'verify', id: manifest.id, at: new Date(now - 60_000).toISOString(), status: 'ok', duration_seconds: 1.2, errors: [], details: {} };
      for (const [k, b] of signedFiles(`${HOST}/${job}/${manifest.id}/${CHECK_FILES.verify}`, Buffer.from(JSON.stringify(rec, null, 2) + '\n'), signer)) files.set(k, b);
    }
    for (const [key, data] of files) {
      mkdirSync(path.dirname(path.join(staging, key)), { recursive: true });
      writeFileSync(path.join(staging, key), data);
      bytes += data.length;
    }
  }
  process.stdout.write(`uploading ${BACKUPS} backups of ${JOBS} jobs (${(bytes / 1e6).toFixed(1)} MB) … `);
  const t0 = performance.now();
  run('rclone', ['copy', '--transfers', '16', '--checkers', '16', staging, `${REMOTE}:bench/snapagent`], 'rclone copy', undefined, env);
  console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const deleteIndexes = () => run('rclone', ['delete', '--include', '/*/catalog.json*', `${REMOTE}:bench/snapagent/${HOST}`], 'rclone delete', undefined, env);
  const rows: Record<string, Measured[]> = {};
  const add = (name: string, m: Measured) => (rows[name] ??= []).push(m);
  // the slow ways once each (BENCH_SLOW=0: only the cold list that writes the indexes),
  // the index BENCH_RUNS times
  const slow = process.env.BENCH_SLOW !== '0';
  for (const cmd of ['list', 'status'] as const) {
    if (slow || cmd === 'list') {
      deleteIndexes();
      if (slow) add(`${cmd}: no index (reader without the host key)`, await agent([cmd], reader));
      add(`${cmd}: cold (no index: reads all, writes it)`, await agent([cmd], config));
    }
    for (let r = 0; r < RUNS; r++) add(`${cmd}: warm (with the index)`, await agent([cmd], config));
    for (let r = 0; r < RUNS; r++) add(`${cmd}: warm, reader without the host key`, await agent([cmd], reader));
  }
  console.log(`\n${BACKUPS} backups, ${JOBS} jobs, on rclone serve s3; warm: median of ${RUNS}\n`);
  console.log(`${'command'.padEnd(50)}${'seconds'.padStart(9)}${'rclone'.padStart(8)}${'/job'.padStart(7)}${'S3 req'.padStart(8)}${'/job'.padStart(7)}`);
  const med = (name: string) => {
    const ms = rows[name]!;
    return { seconds: median(ms.map((m) => m.seconds)), rclone: median(ms.map((m) => m.rclone)), requests: median(ms.map((m) => m.requests)), backups: ms[0]!.backups };
  };
  for (const name of Object.keys(rows)) {
    const m = med(name);
    console.log(`${name.padEnd(50)}${m.seconds.toFixed(2).padStart(9)}${String(m.rclone).padStart(8)}${(m.rclone / JOBS).toFixed(1).padStart(7)}${String(m.requests).padStart(8)}${(m.requests / JOBS).toFixed(1).padStart(7)}`);
  }
  const list = med('list: warm (with the index)');
  const status = med('status: warm (with the index)');
  if (list.backups !== BACKUPS) throw new Error(`list showed ${list.backups} backups, not ${BACKUPS}`);
  report(
    { list_s: list.seconds, status_s: status.seconds, list_calls_per_job: list.rclone / JOBS, status_calls_per_job: status.rclone / JOBS },
    { list_s: 2, status_s: 2, list_calls_per_job: 10, status_calls_per_job: 10 },
    { backups: BACKUPS, jobs: JOBS, runs: RUNS, measured: Object.fromEntries(Object.keys(rows).map((n) => [n, rows[n]])) },
  );
} finally {
  await s3.stop();
  rmSync(dir, { recursive: true, force: true });
}
