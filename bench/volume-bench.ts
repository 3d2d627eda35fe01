// volume-bench: how snapagent's volume backup/restore compares with what it replaces.
// For each size in BENCH_SIZES_MB (default 1024; e.g. "1024,4096" adds the 4 GiB case,
// about 4x the time and 8 GB of scratch disk) it fills a fresh Docker volume with mixed
// data (compressible JSON lines, incompressible random blobs, 10,000 small files per
// GiB), then times BENCH_RUNS (default 3) rounds, each pair in alternating order (raw
// first in odd rounds, snapagent first in even ones), so that a noisy neighbour or a
// cache trend hits both sides alike:
//   raw backup      tar -C <mountpoint> -cf - . | zstd -3 -T0     (the floor: no Docker, no checks)
//   snapagent       snapagent backup --json                       (+ peak RSS of the agent process)
//   raw restore     zstd -d | tar -xf - into a fresh volume's dir
//   snapagent       snapagent restore --to-volume <fresh volume>  (+ peak RSS)
// and once per size (BENCH_BUSYBOX=0 skips it: ~30 s per GiB)
//   busybox         docker run busybox tar czf …                  (the manual method users run today)
// It prints every sample, the medians, snapagent's own phases (the manifest's timings),
// and the ratios of the medians next to the targets (≤ 1.10 at 1 GiB, ≤ 1.05 from 4 GiB).
// It reports; it does not gate: exit 0 even when a target is missed, non-zero only when
// a step fails. BENCH_JSON=path also writes the numbers as JSON. Only node built-ins;
// run from the repo root (make bench).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agent as runAgent, bash, MB, run, timed, type AgentRun } from './lib.ts';

const SIZES = (process.env.BENCH_SIZES_MB ?? process.env.BENCH_SIZE_MB ?? '1024').split(',').map((s) => Number(s.trim()));
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BUSYBOX = process.env.BENCH_BUSYBOX !== '0';
if (!SIZES.every((n) => n >= 10)) throw new Error(`BENCH_SIZES_MB must be sizes >= 10, comma-separated (got ${process.env.BENCH_SIZES_MB ?? process.env.BENCH_SIZE_MB})`);
if (!(RUNS >= 1)) throw new Error(`BENCH_RUNS must be >= 1 (got ${process.env.BENCH_RUNS})`);
const ID = Math.random().toString(36).slice(2, 10);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sa-bench-'));
const volumes = new Set<string>();
const agent = (args: string[], what: string) => runAgent(args, path.join(tmp, 'snapagent.yaml'), what);

// Fills /v: two parallel awk writers of JSON lines (varied numbers/words: ~4x with zstd),
// random blobs from /dev/urandom, and small 1-8 KiB text files over 100 dirs.
const GENERATE = String.raw`
cd /v && mkdir -p text blobs small && for d in $(seq -w 0 99); do mkdir -p small/d$d; done
json() { awk -v mb="$1" -v seed="$2" 'BEGIN {
  srand(seed); nw = split("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango", w, " ")
  split("GET POST PUT DELETE PATCH", m, " "); split("info warn error debug", lv, " ")
  for (n = 0; n < mb * 1048576; n += length(line) + 1) {
    i++
    line = sprintf("{\"id\":%d,\"ts\":\"2024-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\",\"method\":\"%s\",\"path\":\"/api/v1/%s/%d/%s\",\"user\":\"%s_%s%d\",\"status\":%d,\"latency_ms\":%.3f,\"bytes\":%d,\"trace\":\"%08x%08x\",\"msg\":\"%s %s %s\"}",
      i, 1+int(rand()*12), 1+int(rand()*28), int(rand()*24), int(rand()*60), int(rand()*60), int(rand()*1000),
      lv[1+int(rand()*4)], m[1+int(rand()*5)], w[1+int(rand()*nw)], int(rand()*100000), w[1+int(rand()*nw)],
      w[1+int(rand()*nw)], w[1+int(rand()*nw)], int(rand()*1000), 200+int(rand()*4)*100+int(rand()*5), rand()*2000, int(rand()*1e6),
      int(rand()*4294967295), int(rand()*4294967295), w[1+int(rand()*nw)], w[1+int(rand()*nw)], w[1+int(rand()*nw)])
    print line
  }
}' > "$3"; }
json $((TEXT_MB / 2)) 1 text/events-1.jsonl & p1=$!
json $((TEXT_MB - TEXT_MB / 2)) 2 text/events-2.jsonl & p2=$!
for i in 1 2 3 4; do head -c $((RAND_MB * 1048576 / 4)) /dev/urandom > blobs/blob-$i.bin; done
awk -v n="$NSMALL" 'BEGIN { srand(3)
  for (i = 0; i < n; i++) {
    f = sprintf("small/d%02d/file-%05d.txt", i % 100, i); size = 1024 + int(rand() * 7169); s = ""
    while (length(s) < size) s = s sprintf("%05d %08x key%d=%.4f\n", i, int(rand() * 4294967295), int(rand() * 50), rand())
    printf "%s", substr(s, 1, size) > f; close(f)
  }
}'
wait $p1; wait $p2`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function volume(name: string): string {
  run('docker', ['volume', 'create', name], 'docker volume create');
  volumes.add(name);
  return run('docker', ['volume', 'inspect', '-f', '{{.Mountpoint}}', name], 'docker volume inspect').trim();
}

function dropVolume(name: string): void {
  run('docker', ['volume', 'rm', '-f', name], `docker volume rm ${name}`);
  volumes.delete(name);
}

// Dirty pages of earlier steps are flushed between steps (untimed), so that no step pays
// for another's write-back.
const settle = () => bash('sync', 'sync');

interface SizeResult {
  size_mb_requested: number;
  data_mb: number;
  tar_mb: number;
  small_files: number;
  generate_seconds: number;
  samples: Record<string, number[]>;
  medians: Record<string, number>;
  bytes: Record<string, number>;
  phases: Record<string, number>;
  result: Record<string, number>;
  targets: Record<string, number>;
}

async function benchSize(sizeMb: number): Promise<SizeResult> {
  const vol = `sa-bench-${ID}-${sizeMb}`;
  const nSmall = Math.max(100, Math.round((10000 * sizeMb) / 1024));
  const textMb = Math.round((sizeMb - (nSmall * 4.5) / 1024) / 2);
  console.log(`\n=== ${sizeMb} MB: ${vol} (${textMb} MB JSON text, ${textMb} MB random, ${nSmall} small files), ${RUNS} rounds; tmp ${tmp}`);
  const mount = volume(vol);
  const genSeconds = timed(() =>
    run('docker', ['run', '--rm', '--network', 'none', '-e', `TEXT_MB=${textMb}`, '-e', `RAND_MB=${textMb}`, '-e', `NSMALL=${nSmall}`,
      '-v', `${vol}:/v`, 'snapagent/helper:latest', 'bash', '-c', `set -euo pipefail; ${GENERATE}`], 'generating the data'));
  const dataBytes = Number(bash(`du -sb ${mount} | cut -f1`, 'du'));
  console.log(`generated ${(dataBytes / MB).toFixed(0)} MB in ${genSeconds.toFixed(1)} s at ${mount}; warming the page cache`);
  bash(`cd ${mount} && tar -cf - . | cat >/dev/null`, 'warming the page cache');
  writeFileSync(path.join(tmp, 'snapagent.yaml'), [
    'targets:', `  - { name: local, type: local, path: ${tmp}/backups }`,
    'jobs:', `  - { name: bench, plugin: volume, volume: ${vol}, tier: critical }`,
    'discovery: { labels: false }', `state_dir: ${tmp}/state`, ''].join('\n'));

  const samples: Record<string, number[]> = { raw_backup: [], snapagent_backup: [], raw_restore: [], snapagent_restore: [], backup_rss_mb: [], restore_rss_mb: [] };
  const phases: Record<string, number[]> = { prepare_seconds: [], stream_seconds: [], finish_seconds: [], backup_duration_seconds: [], restore_duration_seconds: [] };
  const bytes: Record<string, number> = { data: dataBytes };
  const step = async (name: string, fn: () => unknown) => {
    settle();
    process.stdout.write(`  ${name} … `);
    const t0 = performance.now();
    await fn();
    const s = (performance.now() - t0) / 1000;
    console.log(`${s.toFixed(2)} s`);
    samples[name]!.push(s);
  };

  const rawBackup = () => step('raw_backup', () => {
    bash(`tar -C ${mount} -cf - . | zstd -3 -T0 -q > ${tmp}/raw.tar.zst.new && mv ${tmp}/raw.tar.zst.new ${tmp}/raw.tar.zst`, 'raw backup');
    bytes.raw_backup = statSync(`${tmp}/raw.tar.zst`).size;
  });
  const snapBackup = async () => {
    // each round a full: the earlier backup (the base an incremental would take) goes first
    rmSync(`${tmp}/backups`, { recursive: true, force: true });
    let b!: AgentRun;
    await step('snapagent_backup', async () => (b = await agent(['backup'], 'snapagent backup')));
    const res = b.doc.results[0];
    bytes.snapagent_backup = res.size;
    bytes.snapagent_raw = res.raw_size;
    samples.backup_rss_mb!.push(b.peakKb / 1024);
    for (const k of ['prepare_seconds', 'stream_seconds', 'finish_seconds'] as const) phases[k]!.push(res.timings[k]);
    phases.backup_duration_seconds!.push(res.duration_seconds);
  };
  const rawRestore = async () => {
    const dir = volume(`${vol}-raw-restored`);
    await step('raw_restore', () => bash(`zstd -d -q -c ${tmp}/raw.tar.zst | tar -C ${dir} -xf -`, 'raw restore'));
    dropVolume(`${vol}-raw-restored`);
  };
  const snapRestore = async () => {
    let r!: AgentRun;
    volumes.add(`${vol}-restored`);
    await step('snapagent_restore', async () => (r = await agent(['restore', '--job', 'bench', '--to-volume', `${vol}-restored`], 'snapagent restore')));
    if (r.doc.ok !== true) throw new Error(`snapagent restore reported ok=${r.doc.ok}: ${JSON.stringify(r.doc)}`);
    samples.restore_rss_mb!.push(r.peakKb / 1024);
    phases.restore_duration_seconds!.push(r.doc.results[0].duration_seconds);
    dropVolume(`${vol}-restored`);
  };

  for (let round = 0; round < RUNS; round++) {
    const rawFirst = round % 2 === 0;
    console.log(`round ${round + 1}/${RUNS} (${rawFirst ? 'raw' : 'snapagent'} first)`);
    for (const f of rawFirst ? [rawBackup, snapBackup] : [snapBackup, rawBackup]) await f();
    for (const f of rawFirst ? [rawRestore, snapRestore] : [snapRestore, rawRestore]) await f();
  }
  if (BUSYBOX) {
    samples.busybox_backup = [];
    await step('busybox_backup', () => run('docker', ['run', '--rm', '--network', 'none', '-v', `${vol}:/data:ro`, '-v', `${tmp}:/out`,
      'snapagent-test/busybox:latest', 'tar', 'czf', '/out/busybox.tar.gz', '-C', '/data', '.'], 'busybox backup'));
    bytes.busybox_backup = statSync(`${tmp}/busybox.tar.gz`).size;
    rmSync(`${tmp}/busybox.tar.gz`);
  }
  rmSync(`${tmp}/raw.tar.zst`, { force: true });
  rmSync(`${tmp}/backups`, { recursive: true, force: true });
  dropVolume(vol);

  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  const ph = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)]));
  const mb = (n: number | undefined) => (n === undefined ? '-' : (n / MB).toFixed(1));
  const secs = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
  console.log(`\ndata: ${mb(dataBytes)} MB on disk, ${mb(bytes.snapagent_raw)} MB tar stream; medians of ${RUNS}\n`);
  console.log(`${'method'.padEnd(44)}${'median s'.padStart(9)}${'MB'.padStart(9)}${'MB/s'.padStart(7)}  samples`);
  const rows: [string, string, number | undefined][] = [
    ['raw backup (tar | zstd -3 -T0)', 'raw_backup', bytes.raw_backup],
    ['snapagent backup', 'snapagent_backup', bytes.snapagent_backup],
    ['busybox tar czf (docker run, once)', 'busybox_backup', bytes.busybox_backup],
    ['raw restore (zstd -d | tar -x, volume dir)', 'raw_restore', undefined],
    ['snapagent restore (--to-volume)', 'snapagent_restore', undefined],
  ];
  for (const [name, k, size] of rows) {
    if (!samples[k]) continue;
    console.log(`${name.padEnd(44)}${m[k]!.toFixed(2).padStart(9)}${mb(size).padStart(9)}${(dataBytes / MB / m[k]!).toFixed(0).padStart(7)}  ${secs(samples[k]!)}`);
  }
  console.log(`\nsnapagent backup phases (medians): prepare ${ph.prepare_seconds!.toFixed(2)} s, stream ${ph.stream_seconds!.toFixed(2)} s, finish ${ph.finish_seconds!.toFixed(2)} s; ` +
    `job ${ph.backup_duration_seconds!.toFixed(2)} s of ${m.snapagent_backup!.toFixed(2)} s wall (the rest: process start, plan, lock, targets check)`);
  console.log(`snapagent restore: job ${ph.restore_duration_seconds!.toFixed(2)} s of ${m.snapagent_restore!.toFixed(2)} s wall`);
  console.log(`peak RSS (agent process only, MB): backup ${secs(samples.backup_rss_mb!)}, restore ${secs(samples.restore_rss_mb!)}`);

  const result: Record<string, number> = {
    backup_vs_raw: m.snapagent_backup! / m.raw_backup!,
    restore_vs_raw: m.snapagent_restore! / m.raw_restore!,
    ...(m.busybox_backup !== undefined ? { backup_vs_busybox: m.snapagent_backup! / m.busybox_backup } : {}),
    peak_rss_mb: Math.max(m.backup_rss_mb!, m.restore_rss_mb!),
  };
  const ratio = sizeMb >= 4096 ? 1.05 : 1.1;
  const targets: Record<string, number> = { backup_vs_raw: ratio, restore_vs_raw: ratio, ...(result.backup_vs_busybox !== undefined ? { backup_vs_busybox: 0.15 } : {}), peak_rss_mb: 150 };
  console.log(`\n${'metric'.padEnd(20)}${'value'.padStart(9)}${'target'.padStart(10)}  verdict`);
  for (const k of Object.keys(targets)) {
    console.log(`${k.padEnd(20)}${result[k]!.toFixed(k === 'peak_rss_mb' ? 0 : 2).padStart(9)}${`≤ ${targets[k]}`.padStart(10)}  ${result[k]! <= targets[k]! ? 'PASS' : 'MISS'}`);
  }
  return { size_mb_requested: sizeMb, data_mb: dataBytes / MB, tar_mb: (bytes.snapagent_raw ?? 0) / MB, small_files: nSmall, generate_seconds: genSeconds, samples, medians: m, bytes, phases: ph, result, targets };
}

async function main(): Promise<void> {
  if (!SIZES.some((s) => s >= 4096)) console.log('volume-bench: the 4 GiB case is opt-in: BENCH_SIZES_MB=1024,4096 (about 4x the time, 8 GB of scratch disk)');
  const all: SizeResult[] = [];
  for (const size of SIZES) all.push(await benchSize(size));
  if (process.env.BENCH_JSON) {
    writeFileSync(process.env.BENCH_JSON, JSON.stringify({ runs: RUNS, sizes: all }, null, 2) + '\n');
    console.log(`wrote ${process.env.BENCH_JSON}`);
  }
}

// Ctrl-C reaches the children too: the running step then fails and the finally cleans up.
process.on('SIGINT', () => console.error('\ninterrupted: cleaning up'));
try {
  await main();
} catch (err) {
  console.error(`\nvolume-bench: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  for (const v of volumes) spawnSync('docker', ['volume', 'rm', '-f', v], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
}
