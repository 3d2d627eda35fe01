// transfer-bench: how fast bulk bytes cross between the agent and a `docker exec`
// process, the channel the mariadb, mongo and cassandra plugins stream through. It starts
// a helper container (no network) holding BENCH_SIZE_MB (default 1024) MB of random
// bytes in its /tmp, then times, BENCH_RUNS (default 3) times each, alternating:
//   raw         cat file > /dev/null, inside the container (no transfer: the limit)
//   fifo out    exec `cat file`, bulk stdout through the agent's named pipe, read by Node
//   attach out  the same through the Docker API's attach stream
//   fifo in     exec `cat > /dev/null`, Node writes the bytes through the named pipe
//   attach in   the same through the attach stream
// and prints medians (MB/s) and the ratios fifo/raw and attach/fifo. The named pipe is
// the one SECURITY.md describes (made and held through directory fds, never opened by a
// path the container controls). It reports; it does not gate. BENCH_JSON=path writes
// the figures. Run from the repo root (make bench BENCH=transfer).
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connectDocker, type DockerClient } from '../agent/docker/client.ts';
import { MB, run } from './lib.ts';

const SIZE_MB = Number(process.env.BENCH_SIZE_MB ?? 1024);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
if (!(SIZE_MB >= 10) || !(RUNS >= 1)) throw new Error('BENCH_SIZE_MB must be >= 10 and BENCH_RUNS >= 1');
const NAME = `sa-bench-xfer-${randomBytes(3).toString('hex')}`;
const PIPES = `/var/lib/snapagent-bench-pipes-${process.pid}`;

async function outward(d: DockerClient, pipe: boolean): Promise<number> {
  const t0 = performance.now();
  const r = await d.exec(NAME, { cmd: ['cat', '/tmp/bench.bin'], bulk: 'stdout' });
  let n = 0;
  const src = pipe && r.openPipe ? (await r.openPipe()).createReadStream({ highWaterMark: 64 * 1024 }) : r.stdout;
  for await (const c of src) n += (c as Buffer).length;
  const res = await r.done;
  if (res.exitCode !== 0 || n !== SIZE_MB * MB) throw new Error(`outward transfer: exit ${res.exitCode}, ${n} bytes`);
  return (performance.now() - t0) / 1000;
}

async function inward(d: DockerClient): Promise<number> {
  const chunk = randomBytes(MB);
  const t0 = performance.now();
  const r = await d.exec(NAME, { cmd: ['sh', '-c', 'wc -c'], stdin: true, bulk: 'stdin' });
  let out = '';
  r.stdout.on('data', (c: Buffer) => (out += c));
  const w = r.stdin!;
  for (let i = 0; i < SIZE_MB; i++) if (!w.write(chunk)) await new Promise((ok) => w.once('drain', ok));
  w.end();
  const res = await r.done;
  if (res.exitCode !== 0 || Number(out.trim()) !== SIZE_MB * MB) throw new Error(`inward transfer: exit ${res.exitCode}, received ${out.trim()}`);
  return (performance.now() - t0) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  run('docker', ['run', '-d', '--name', NAME, '--network', 'none', 'snapagent/helper:latest', 'sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'], 'start the container');
  try {
    run('docker', ['exec', NAME, 'sh', '-c', `head -c ${SIZE_MB * MB} /dev/urandom > /tmp/bench.bin`], 'make the data');
    const fifo = connectDocker({ transfer: 'fifo', pipeDir: PIPES });
    const attach = connectDocker({ transfer: 'attach', pipeDir: PIPES });
    const times: Record<string, number[]> = { raw: [], fifo_out: [], attach_out: [], fifo_in: [], attach_in: [] };
    const raw = () => {
      const t0 = performance.now();
      run('docker', ['exec', NAME, 'sh', '-c', 'cat /tmp/bench.bin > /dev/null'], 'raw read');
      return (performance.now() - t0) / 1000;
    };
    raw(); // warm the page cache
    for (let i = 0; i < RUNS; i++) {
      times.raw!.push(raw());
      times.fifo_out!.push(await outward(fifo, true));
      times.attach_out!.push(await outward(attach, false));
      times.fifo_in!.push(await inward(fifo));
      times.attach_in!.push(await inward(attach));
      console.log(`  run ${i + 1}: ${Object.entries(times).map(([k, v]) => `${k} ${v.at(-1)!.toFixed(2)} s`).join(', ')}`);
    }
    const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)])) as Record<string, number>;
    console.log(`\n${SIZE_MB} MB, median of ${RUNS}\n${'channel'.padEnd(40)}${'seconds'.padStart(9)}${'MB/s'.padStart(9)}`);
    const rows: [string, string][] = [['raw', 'raw (cat > /dev/null in the container)'], ['fifo_out', 'named pipe, container → agent'], ['attach_out', 'attach stream, container → agent'], ['fifo_in', 'named pipe, agent → container'], ['attach_in', 'attach stream, agent → container']];
    for (const [k, label] of rows) console.log(`${label.padEnd(40)}${med[k]!.toFixed(2).padStart(9)}${(SIZE_MB / med[k]!).toFixed(0).padStart(9)}`);
    const result = {
      fifo_out_mb_s: SIZE_MB / med.fifo_out!,
      fifo_in_mb_s: SIZE_MB / med.fifo_in!,
      attach_out_vs_fifo: med.attach_out! / med.fifo_out!,
      attach_in_vs_fifo: med.attach_in! / med.fifo_in!,
      fifo_out_vs_raw: med.fifo_out! / med.raw!,
    };
    console.log('');
    for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(22)}${v.toFixed(2).padStart(9)}`);
    if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({ size_mb: SIZE_MB, runs: RUNS, seconds: times, ...result }, null, 2) + '\n');
  } finally {
    run('docker', ['rm', '-f', NAME], 'remove the container');
    run('rm', ['-rf', PIPES], 'remove the pipe dir');
  }
}

await main();
