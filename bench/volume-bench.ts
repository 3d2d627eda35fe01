// volume-bench: how snapagent's volume backup/restore compares with what it replaces.
// It fills a fresh Docker volume with ~BENCH_SIZE_MB (default 1024) of mixed data
// (compressible JSON lines, incompressible random blobs, 10,000 small files per GiB),
// then times, each once and in this order:
//   raw backup      tar -C <mountpoint> -cf - . | zstd -3 -T0     (the floor: no Docker, no checks)
//   busybox         docker run busybox tar czf …                  (the manual method users run today)
//   snapagent       snapagent backup --json                       (+ peak RSS of the agent process)
//   raw restore     zstd -d | tar -xf - into a host dir
//   snapagent       snapagent restore --to-volume <vol>-restored  (+ peak RSS)
// and prints the ratios next to the spec's targets. It reports; it does not gate: exit 0
// even when a target is missed, non-zero only when a step fails. BENCH_JSON=path also
// writes the numbers as JSON. Only node built-ins; run from the repo root (make bench).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agent as runAgent, bash, MB, run, timed } from './lib.ts';

const SIZE_MB = Number(process.env.BENCH_SIZE_MB ?? 1024);
if (!(SIZE_MB >= 10)) throw new Error(`BENCH_SIZE_MB must be a number >= 10 (got ${process.env.BENCH_SIZE_MB})`);
const VOL = `sa-bench-${Math.random().toString(36).slice(2, 10)}`;
const RESTORED = `${VOL}-restored`;
const RAW_RESTORED = `${VOL}-raw-restored`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sa-bench-'));
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

async function main(): Promise<void> {
  const nSmall = Math.max(100, Math.round((10000 * SIZE_MB) / 1024));
  const textMb = Math.round((SIZE_MB - (nSmall * 4.5) / 1024) / 2);
  console.log(`volume-bench: ${VOL}, ~${SIZE_MB} MB (${textMb} MB JSON text, ${textMb} MB random, ${nSmall} small files); tmp ${tmp}`);
  run('docker', ['volume', 'create', VOL], 'docker volume create');
  const genSeconds = timed(() =>
    run('docker', ['run', '--rm', '--network', 'none', '-e', `TEXT_MB=${textMb}`, '-e', `RAND_MB=${textMb}`, '-e', `NSMALL=${nSmall}`,
      '-v', `${VOL}:/v`, 'snapagent/helper:latest', 'bash', '-c', `set -euo pipefail; ${GENERATE}`], 'generating the data'));
  const mount = run('docker', ['volume', 'inspect', '-f', '{{.Mountpoint}}', VOL], 'docker volume inspect').trim();
  const dataBytes = Number(bash(`du -sb ${mount} | cut -f1`, 'du'));
  console.log(`generated ${(dataBytes / MB).toFixed(0)} MB in ${genSeconds.toFixed(1)} s at ${mount}; warming the page cache`);
  bash(`cd ${mount} && tar -cf - . | cat >/dev/null`, 'warming the page cache');

  const seconds: Record<string, number> = {};
  const bytes: Record<string, number> = { data: dataBytes };
  const step = (name: string) => process.stdout.write(`  ${name} … `);
  const done = (name: string) => console.log(`${seconds[name]!.toFixed(2)} s`);

  bash('sync', 'sync');
  step('raw_backup');
  seconds.raw_backup = timed(() => bash(`tar -C ${mount} -cf - . | zstd -3 -T0 -q > ${tmp}/raw.tar.zst`, 'raw backup'));
  bytes.raw_backup = statSync(`${tmp}/raw.tar.zst`).size;
  done('raw_backup');

  step('busybox_backup');
  seconds.busybox_backup = timed(() => run('docker', ['run', '--rm', '--network', 'none', '-v', `${VOL}:/data:ro`, '-v', `${tmp}:/out`,
    'snapagent-test/busybox:latest', 'tar', 'czf', '/out/busybox.tar.gz', '-C', '/data', '.'], 'busybox backup'));
  bytes.busybox_backup = statSync(`${tmp}/busybox.tar.gz`).size;
  rmSync(`${tmp}/busybox.tar.gz`);
  done('busybox_backup');

  writeFileSync(path.join(tmp, 'snapagent.yaml'), [
    'targets:', `  - { name: local, type: local, path: ${tmp}/backups }`,
    'jobs:', `  - { name: bench, plugin: volume, volume: ${VOL}, tier: critical }`,
    'discovery: { labels: false }', `state_dir: ${tmp}/state`, ''].join('\n'));
  bash('sync', 'sync');
  step('snapagent_backup');
  const b = await agent(['backup'], 'snapagent backup');
  seconds.snapagent_backup = b.seconds;
  bytes.snapagent_backup = b.doc.results[0].size;
  bytes.snapagent_raw = b.doc.results[0].raw_size;
  done('snapagent_backup');

  // The raw restore extracts into a fresh volume's directory, on the same filesystem
  // snapagent restores to; dirty pages of earlier steps are flushed first (untimed).
  step('raw_restore');
  run('docker', ['volume', 'create', RAW_RESTORED], 'create raw restore volume');
  const rawDir = run('docker', ['volume', 'inspect', '-f', '{{.Mountpoint}}', RAW_RESTORED], 'inspect').trim();
  bash('sync', 'sync');
  seconds.raw_restore = timed(() => bash(`zstd -d -q -c ${tmp}/raw.tar.zst | tar -C ${rawDir} -xf -`, 'raw restore'));
  run('docker', ['volume', 'rm', '-f', RAW_RESTORED], 'remove raw restore volume');
  done('raw_restore');
  bash('sync', 'sync');

  step('snapagent_restore');
  const r = await agent(['restore', '--job', 'bench', '--to-volume', RESTORED], 'snapagent restore');
  seconds.snapagent_restore = r.seconds;
  if (r.doc.ok !== true) throw new Error(`snapagent restore reported ok=${r.doc.ok}: ${JSON.stringify(r.doc)}`);
  done('snapagent_restore');

  const mb = (n: number | undefined) => (n === undefined ? '-' : (n / MB).toFixed(1));
  const rows: [string, number, number | undefined][] = [
    ['raw backup (tar | zstd -3 -T0)', seconds.raw_backup, bytes.raw_backup],
    ['busybox tar czf (docker run)', seconds.busybox_backup, bytes.busybox_backup],
    ['snapagent backup', seconds.snapagent_backup, bytes.snapagent_backup],
    ['raw restore (zstd -d | tar -x, volume dir)', seconds.raw_restore, undefined],
    ['snapagent restore (--to-volume)', seconds.snapagent_restore, undefined],
  ];
  console.log(`\ndata: ${mb(dataBytes)} MB on disk, ${mb(bytes.snapagent_raw)} MB tar stream\n`);
  console.log(`${'method'.padEnd(42)}${'seconds'.padStart(9)}${'MB'.padStart(10)}${'MB/s'.padStart(9)}`);
  for (const [name, s, size] of rows) {
    console.log(`${name.padEnd(42)}${s.toFixed(2).padStart(9)}${mb(size).padStart(10)}${(dataBytes / MB / s).toFixed(0).padStart(9)}`);
  }
  const result = {
    backup_vs_raw: seconds.snapagent_backup / seconds.raw_backup,
    backup_vs_busybox: seconds.snapagent_backup / seconds.busybox_backup,
    restore_vs_raw: seconds.snapagent_restore / seconds.raw_restore,
    peak_rss_mb: Math.max(b.peakKb, r.peakKb) / 1024,
  };
  const targets: Record<keyof typeof result, number> = { backup_vs_raw: 1.3, backup_vs_busybox: 0.15, restore_vs_raw: 1.3, peak_rss_mb: 200 };
  console.log(`\n${'metric'.padEnd(20)}${'value'.padStart(9)}${'target'.padStart(10)}  verdict`);
  for (const k of Object.keys(targets) as (keyof typeof result)[]) {
    console.log(`${k.padEnd(20)}${result[k].toFixed(k === 'peak_rss_mb' ? 0 : 2).padStart(9)}${`≤ ${targets[k]}`.padStart(10)}  ${result[k] <= targets[k] ? 'PASS' : 'MISS'}`);
  }
  console.log(`(peak RSS: backup ${(b.peakKb / 1024).toFixed(0)} MB, restore ${(r.peakKb / 1024).toFixed(0)} MB, agent process only;` +
    ' both restores write into a fresh volume under /var/lib/docker)');
  if (process.env.BENCH_JSON) {
    const doc = { ...result, targets, seconds, bytes, data_mb: dataBytes / MB, size_mb_requested: SIZE_MB, small_files: nSmall, generate_seconds: genSeconds };
    writeFileSync(process.env.BENCH_JSON, JSON.stringify(doc, null, 2) + '\n');
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
  for (const v of [RESTORED, RAW_RESTORED, VOL]) spawnSync('docker', ['volume', 'rm', '-f', v], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
}
