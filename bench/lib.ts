// What every benchmark shares: running commands, timing them, running the agent with
// its peak RSS sampled, and printing the table and the ratios next to their targets.
// Only node built-ins; run from the repo root (make bench).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

export const MB = 1024 * 1024;

/** Runs a command to completion (stdout captured, stderr shown); throws on failure. */
export function run(cmd: string, args: string[], what: string, input?: string, env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { input, env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * MB });
  if (r.status !== 0) throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
  return r.stdout;
}

export const bash = (script: string, what: string) => run('bash', ['-c', `set -euo pipefail; ${script}`], what);

/** A bash script inside a container. */
export const inContainer = (container: string, script: string, what: string) => run('docker', ['exec', container, 'bash', '-c', `set -euo pipefail; ${script}`], what);

export function timed(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

export interface AgentRun {
  seconds: number;
  doc: any;
  peakKb: number;
}

/** Runs `snapagent <args> --config <config> --json`, polling /proc/<pid>/status every
 * 50 ms for its peak RSS (the larger of VmHWM and VmRSS). */
export function agent(args: string[], config: string, what: string): Promise<AgentRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['bin/snapagent.js', ...args, '--config', config, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let peakKb = 0;
    const poll = () => {
      try {
        for (const m of readFileSync(`/proc/${child.pid}/status`, 'utf8').matchAll(/^(?:VmHWM|VmRSS):\s+(\d+) kB/gm)) peakKb = Math.max(peakKb, Number(m[1]));
      } catch { /* not started yet, or already gone */ }
    };
    poll();
    const timer = setInterval(poll, 50);
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      const seconds = (performance.now() - t0) / 1000;
      if (code !== 0) return reject(new Error(`${what} exited ${code}\n--- stdout ---\n${out}\n--- stderr ---\n${err.slice(-4000)}`));
      try {
        resolve({ seconds, doc: JSON.parse(out), peakKb });
      } catch {
        reject(new Error(`${what}: stdout is not JSON:\n${out}`));
      }
    });
  });
}

/** Prints "  name … " now and the seconds when `fn` is done; returns the seconds. */
export async function step(name: string, fn: () => unknown): Promise<number> {
  process.stdout.write(`  ${name} … `);
  const t0 = performance.now();
  await fn();
  const s = (performance.now() - t0) / 1000;
  console.log(`${s.toFixed(2)} s`);
  return s;
}

/** The methods table: name, seconds, output bytes (optional), throughput of `perMb` MB. */
export function printTable(rows: [string, number, number | undefined][], perMb: number, unit = 'MB/s'): void {
  const mb = (n: number | undefined) => (n === undefined ? '-' : (n / MB).toFixed(1));
  const w = Math.max(12, unit.length + 2);
  console.log(`${'method'.padEnd(44)}${'seconds'.padStart(9)}${'MB'.padStart(10)}${unit.padStart(w)}`);
  for (const [name, s, size] of rows) console.log(`${name.padEnd(44)}${s.toFixed(2).padStart(9)}${mb(size).padStart(10)}${(perMb / s).toFixed(1).padStart(w)}`);
}

/** Prints each ratio next to its target (≤) with PASS/MISS, and writes BENCH_JSON. It
 * reports; it does not gate. */
export function report<K extends string>(result: Record<K, number>, targets: Record<K, number>, extra: Record<string, unknown>): void {
  console.log(`\n${'metric'.padEnd(22)}${'value'.padStart(9)}${'target'.padStart(10)}  verdict`);
  for (const k of Object.keys(targets) as K[]) {
    const v = result[k];
    console.log(`${k.padEnd(22)}${v.toFixed(k.endsWith('_mb') ? 0 : 2).padStart(9)}${`≤ ${targets[k]}`.padStart(10)}  ${v <= targets[k] ? 'PASS' : 'MISS'}`);
  }
  if (process.env.BENCH_JSON) {
    writeFileSync(process.env.BENCH_JSON, JSON.stringify({ ...result, targets, ...extra }, null, 2) + '\n');
    console.log(`wrote ${process.env.BENCH_JSON}`);
  }
}

/** A dump-tool benchmark: the raw pipeline and snapagent, each way, on one server. */
export interface DumpBench {
  /** Runs a bash script inside the datastore's container. */
  inContainer: (script: string, what: string) => string;
  /** The dump command (stdout), run once untimed to warm the caches, then timed. */
  dump: string;
  /** The load command (stdin) of the raw restore. */
  load: string;
  /** snapagent's config file, with a job named "bench" for this datastore. */
  config: string;
  /** Extra `snapagent restore` arguments (e.g. --force). */
  restoreArgs: string[];
  /** Labels of the raw rows, e.g. "mariadb-dump", "mariadb". */
  dumpTool: string;
  loadTool: string;
  /** What the dump is called in the output ("dump", "archive"). */
  noun: string;
}

/** How many times each case runs (BENCH_RUNS, default 3): the figures are medians. */
export const RUNS = Number(process.env.BENCH_RUNS ?? 3);
if (!(RUNS >= 1)) throw new Error('BENCH_RUNS must be >= 1');

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Times, RUNS times each and alternating so that a noisy moment hits both sides: dump |
 * zstd -3 -T0 > file in the container, snapagent backup, zstd -dc file | load in the
 * container, snapagent restore; prints the medians and returns them for report(). */
export async function benchDump(b: DumpBench): Promise<{ result: Record<'backup_vs_raw' | 'restore_vs_raw' | 'peak_rss_mb', number>; seconds: Record<string, number>; bytes: Record<string, number>; runs: Record<string, number[]> }> {
  const runs: Record<string, number[]> = { raw_backup: [], snapagent_backup: [], raw_restore: [], snapagent_restore: [] };
  const bytes: Record<string, number> = {};
  const peaks: number[] = [];
  const settle = () => run('bash', ['-c', 'sync'], 'sync');
  b.inContainer(`${b.dump} > /dev/null`, 'warm-up dump');
  for (let i = 1; i <= RUNS; i++) {
    console.log(`run ${i} of ${RUNS}`);
    settle();
    runs.raw_backup!.push(await step('raw_backup', () => b.inContainer(`${b.dump} | zstd -3 -T0 -q > /tmp/snapagent-bench-raw.zst`, 'raw backup')));
    bytes.raw_backup = Number(b.inContainer('stat -c %s /tmp/snapagent-bench-raw.zst', 'stat'));
    bytes.dump ??= Number(b.inContainer('zstd -dc /tmp/snapagent-bench-raw.zst | wc -c', `${b.noun} size`));
    settle();
    let backup!: AgentRun;
    runs.snapagent_backup!.push(await step('snapagent_backup', async () => (backup = await agent(['backup'], b.config, 'snapagent backup'))));
    bytes.snapagent_backup = backup.doc.results[0].size;
    peaks.push(backup.peakKb);
    settle();
    runs.raw_restore!.push(await step('raw_restore', () => b.inContainer(`zstd -dc /tmp/snapagent-bench-raw.zst | ${b.load}`, 'raw restore')));
    settle();
    let restore!: AgentRun;
    runs.snapagent_restore!.push(await step('snapagent_restore', async () => (restore = await agent(['restore', '--job', 'bench', ...b.restoreArgs], b.config, 'snapagent restore'))));
    if (restore.doc.ok !== true) throw new Error(`snapagent restore reported ok=${restore.doc.ok}: ${JSON.stringify(restore.doc)}`);
    peaks.push(restore.peakKb);
  }
  const seconds = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));

  console.log(`\n${b.noun}: ${(bytes.dump! / MB).toFixed(1)} MB; medians of ${RUNS} runs\n`);
  printTable([
    [`raw backup (${b.dumpTool} | zstd -3 -T0)`, seconds.raw_backup!, bytes.raw_backup],
    ['snapagent backup', seconds.snapagent_backup!, bytes.snapagent_backup],
    [`raw restore (zstd -dc | ${b.loadTool})`, seconds.raw_restore!, undefined],
    ['snapagent restore (verified)', seconds.snapagent_restore!, undefined],
  ], bytes.dump! / MB, `${b.noun} MB/s`);
  const result = {
    backup_vs_raw: seconds.snapagent_backup! / seconds.raw_backup!,
    restore_vs_raw: seconds.snapagent_restore! / seconds.raw_restore!,
    peak_rss_mb: median(peaks) / 1024,
  };
  return { result, seconds, bytes, runs };
}
