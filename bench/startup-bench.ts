// startup-bench: the fixed cost every command pays, `snapagent plan` with no jobs (a
// local target, label discovery off: no Docker call), BENCH_RUNS (default 5) times,
// alternating a run with Node's compile cache (what a user gets from the second run on)
// and one without (the first run after an install or upgrade), and prints medians: wall
// time from spawn to exit and peak RSS. One untimed run first makes the state dir and
// fills the cache. It reports; it does not gate. BENCH_JSON=path writes the figures.
// Run from the repo root (make bench BENCH=startup); needs no Docker.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { agent, printTable, report } from './lib.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
if (!(RUNS >= 1)) throw new Error('BENCH_RUNS must be >= 1');

const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-bench-startup-'));
const config = path.join(dir, 'snapagent.yml');
// No state_dir: the default one, where the compile cache lives (bin/compile-cache.js).
writeFileSync(config, `targets: [{ name: local, type: local, path: ${JSON.stringify(path.join(dir, 'backups'))} }]\ndiscovery: { labels: false }\n`);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function plan(cache: boolean) {
  // agent() passes this process's environment on
  if (cache) delete process.env.NODE_DISABLE_COMPILE_CACHE;
  else process.env.NODE_DISABLE_COMPILE_CACHE = '1';
  const r = await agent(['plan'], config, 'snapagent plan');
  if (!Array.isArray(r.doc.jobs) || r.doc.jobs.length !== 0) throw new Error(`snapagent plan: expected no jobs, got ${JSON.stringify(r.doc.jobs)}`);
  return r;
}

try {
  await plan(true);
  const cached = { s: [] as number[], kb: [] as number[] };
  const cold = { s: [] as number[], kb: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    for (const [cache, into] of [[true, cached], [false, cold]] as const) {
      const r = await plan(cache);
      into.s.push(r.seconds);
      into.kb.push(r.peakKb);
    }
  }
  delete process.env.NODE_DISABLE_COMPILE_CACHE;
  console.log(`snapagent plan, no jobs: median of ${RUNS} runs each\n`);
  printTable([
    ['plan (compile cache)', median(cached.s), median(cached.kb) * 1024],
    ['plan (no compile cache: first run)', median(cold.s), median(cold.kb) * 1024],
  ], 1, 'runs/s');
  console.log('(MB: peak RSS)');
  report(
    { startup_s: median(cached.s), startup_peak_rss_mb: median(cached.kb) / 1024 },
    { startup_s: 0.5, startup_peak_rss_mb: 150 },
    { runs: RUNS, seconds: { cached: cached.s, uncached: cold.s }, peak_rss_kb: { cached: cached.kb, uncached: cold.kb }, uncached_startup_s: median(cold.s) },
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
