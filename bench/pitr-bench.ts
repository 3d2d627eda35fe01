// pitr-bench: what point-in-time recovery costs (issue 20), against the replica-set
// stand-in snapagent-test/mongo-rs (FerretDB with --replSet, its oplog in
// local.oplog.rs, a test-only applyOps) on 127.0.0.1. It seeds BENCH_PITR_DOCS (default
// 100000) documents, takes the dump (snapagent backup: mongodump --oplog), then measures:
//   throughput   BENCH_PITR_WRITERS (default 1) writers, each one operation at a time
//                (half inserts into a growing collection, half updates of a small one),
//                for BENCH_PITR_SECONDS (20) s, after a warm-up of as long;
//                BENCH_PITR_PAIRS (5) pairs of runs without the daemon and with
//                `snapagent run` capturing the oplog (slice_seconds
//                BENCH_PITR_SLICE_SECONDS, default 5), which one first alternating;
//                medians of ops/s, and the drop as 1 - the median of the pairs' ratios
//                (the stand-in's own rate drifts by 2-3x over minutes, which a pair
//                shares). Target: at most 5 % fewer with capture. Beside it, the
//                server's CPU seconds per 1000 writes with and without capture (from
//                /proc: its writes, plus the capture's reads): steadier than the rate
//                on a shared 2-core machine, and what the capture costs a CPU-bound
//                server.
//   latency      for every write of the capture runs, from its acknowledgement to the
//                commit of the first slice holding its oplog entry (the mtime of the
//                slice's slice.json on the local target); p50/p99 over all of them.
//                Target: ≤ slice_seconds + 10 s.
//   restore      snapagent restore --job bench --force (the dump, its own oplog
//                replayed) against --at <a slice's until> --force (the dump, then the
//                slices up to the first holding BENCH_PITR_REPLAY (default 1000) entries
//                in all, or all of them), BENCH_RUNS times alternating; medians, the
//                ratio, and the slice entries replayed per second of extra time.
// Each --at restore is checked against the writers' state at that point. It reports; it does not
// gate. BENCH_JSON=path writes the figures. FerretDB is much slower than mongod and its
// applyOps is a test stand-in: the ratios, not the absolute figures, are the result.
// Two limits of the stand-in shape the defaults: an update scans its collection (so the
// updates go to a small one), and its oplog entries are written apart from the data
// with their timestamp taken before, so concurrent writers now and then commit them out
// of timestamp order, which no MongoDB oplog reader ever sees (a forward scan of a real
// oplog stops at the first hole); with BENCH_PITR_WRITERS > 1 a restore may then
// differ from the writers' state, and that is the stand-in, not the capture.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Long, MongoClient, Timestamp, type Document } from 'mongodb';
import { agent, type AgentRun, report, run } from './lib.ts';

const env = (name: string, dflt: number, min: number) => {
  const v = Number(process.env[name] ?? dflt);
  if (!(v >= min)) throw new Error(`${name} must be a number >= ${min} (got ${process.env[name]})`);
  return v;
};
const DOCS = env('BENCH_PITR_DOCS', 100_000, 1000);
const WRITERS = env('BENCH_PITR_WRITERS', 1, 1);
const SECONDS = env('BENCH_PITR_SECONDS', 20, 5);
const SLICE_SECONDS = env('BENCH_PITR_SLICE_SECONDS', 5, 5);
const RUNS = env('BENCH_RUNS', 3, 1);
const PAIRS = env('BENCH_PITR_PAIRS', 5, 1);
// the stand-in applies a replayed insert as an upsert, which scans the collection: tens
// of entries a second, so the replay is bounded to keep the bench within minutes
const REPLAY = env('BENCH_PITR_REPLAY', 1000, 1);
const LATENCY_TARGET = SLICE_SECONDS + 10;

const IMAGE = 'snapagent-test/mongo-rs:latest';
const NAME = `sa-bench-pitr-${Math.random().toString(36).slice(2, 8)}`;
const PORT = 38000 + Math.floor(Math.random() * 1000);
const PASSWORD = `bench-${Math.random().toString(36).slice(2)}`;
const HOST = 'pitr-bench';
const JOB = 'bench';
const LEDGER_SEED = 1000;
const COUNTERS = 100;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'sa-bench-pitr-'));
const CONFIG = path.join(tmp, 'snapagent.yaml');
const SLICES = path.join(tmp, 'backups', HOST, JOB, 'pitr');
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
/** Nearest-rank percentile. */
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const cmpTs = (a: { t: number; i: number }, b: { t: number; i: number }) => a.t - b.t || a.i - b.i;
const tsOf = (ts: Timestamp) => ({ t: ts.getHighBitsUnsigned(), i: ts.getLowBitsUnsigned() });

let client!: MongoClient;
type Written = { _id: number; seq: number; v: string; n: number; at: Date };
const ledger = () => client.db('bench').collection<Written>('ledger');
const counters = () => client.db('bench').collection<Written>('counters');
const oplog = () => client.db('local').collection('oplog.rs');

// ---- the writers -------------------------------------------------------------------

interface WriterRun {
  ops: number;
  seconds: number;
  /** CPU seconds the server process used meanwhile (its writes, and the capture's reads). */
  serverCpu: number;
  /** Each write's sequence number and when it was acknowledged (ms since the epoch). */
  acks: Map<number, number>;
}

let nextSeq = 0;
let nextId = LEDGER_SEED;
/** Every write since the dump, in order: what the state at any oplog position is. */
const history: { seq: number; kind: 'i' | 'u'; id: number }[] = [];

/** WRITERS loops, each one operation at a time, for `seconds`: an insert of a new
 * document or an update of a counter (half and half), each carrying its own seq so that
 * its oplog entry can be found again. */
async function write(seconds: number): Promise<WriterRun> {
  const [col, ctr] = [ledger(), counters()];
  const cpu0 = serverCpu();
  const acks = new Map<number, number>();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let last = t0;
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (performance.now() < end) {
        const seq = ++nextSeq;
        if (seq % 2 === 0) {
          const id = nextId++;
          history.push({ seq, kind: 'i', id });
          await col.insertOne({ _id: id, seq, v: `inserted by ${seq}`, n: 0, at: new Date() });
        } else {
          const id = (seq * 40503) % COUNTERS;
          history.push({ seq, kind: 'u', id });
          await ctr.updateOne({ _id: id }, { $set: { seq, v: `updated by ${seq}`, at: new Date() }, $inc: { n: 1 } });
        }
        acks.set(seq, Date.now());
        last = performance.now();
      }
    }),
  );
  return { ops: acks.size, seconds: (last - t0) / 1000, acks, serverCpu: serverCpu() - cpu0 };
}

/** The oplog position of every write of a run (by seq), from the entries after `from`. */
async function positions(from: Timestamp, acks: { has(seq: number): boolean }): Promise<Map<number, { t: number; i: number }>> {
  const out = new Map<number, { t: number; i: number }>();
  for await (const e of oplog().find({ ts: { $gt: from }, ns: { $in: ['bench.ledger', 'bench.counters'] } })) {
    const o = e.o as Document | undefined;
    // FerretDB logs an update as {$v: 1, $set: <the whole document>}; MongoDB 5+ as a diff
    const seq = Number(o?.seq ?? o?.$set?.seq ?? o?.diff?.u?.seq);
    if (acks.has(seq) && !out.has(seq)) out.set(seq, tsOf(e.ts as Timestamp));
  }
  return out;
}

/** CPU seconds (user + system) of a process so far, from /proc. */
function cpuOf(pid: number): number {
  // utime and stime: fields 14 and 15, counted after the command name's ")"
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}
let serverPid = 0;
const serverCpu = () => cpuOf(serverPid);

const newestTs = async () => (await oplog().findOne({}, { sort: { $natural: -1 } }))!.ts as Timestamp;

// ---- the daemon --------------------------------------------------------------------

interface Daemon {
  child: ChildProcess;
  output: () => string;
  /** Peak RSS (kB) and CPU seconds so far. */
  sample: () => { peakKb: number; cpu: number };
  stop: () => Promise<void>;
}

function startDaemon(): Daemon {
  const child = spawn(process.execPath, ['bin/snapagent.js', 'run', '--config', CONFIG], { env: { ...process.env, SNAPAGENT_LOG_FORMAT: 'json' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (c: Buffer) => (out = (out + c).slice(-200_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let peakKb = 0;
  let cpu = 0;
  const poll = () => {
    try {
      for (const m of readFileSync(`/proc/${child.pid}/status`, 'utf8').matchAll(/^(?:VmHWM|VmRSS):\s+(\d+) kB/gm)) peakKb = Math.max(peakKb, Number(m[1]));
      cpu = cpuOf(child.pid!);
    } catch { /* not started yet, or gone */ }
  };
  const timer = setInterval(poll, 100);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => (clearInterval(timer), resolve(code))));
  return {
    child,
    output: () => out,
    sample: () => (poll(), { peakKb, cpu }),
    stop: async () => {
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`snapagent run exited ${code} on SIGTERM; output:\n${out.slice(-4000)}`);
    },
  };
}

interface SliceInfo {
  id: string;
  after: { t: number; i: number };
  last: { t: number; i: number };
  until: number;
  entries: number;
  /** When slice.json, the commit point, was written (ms). */
  committed: number;
}

/** The committed slices on the local target, oldest commit first. */
function slices(): SliceInfo[] {
  if (!existsSync(SLICES)) return [];
  return readdirSync(SLICES)
    .filter((d) => existsSync(path.join(SLICES, d, 'slice.json')))
    .map((d) => {
      const f = path.join(SLICES, d, 'slice.json');
      const s = JSON.parse(readFileSync(f, 'utf8'));
      return { id: d, after: s.after, last: s.last, until: Date.parse(s.until), entries: s.entries, committed: statSync(f).mtimeMs };
    })
    .sort((a, b) => a.committed - b.committed);
}

async function waitFor(what: string, ok: () => boolean, d: Daemon, ms = 180_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; daemon output:\n${d.output().slice(-4000)}`);
    if (d.child.exitCode !== null) throw new Error(`snapagent run exited ${d.child.exitCode} while waiting for ${what}:\n${d.output().slice(-4000)}`);
    await sleep(200);
  }
}

// ---- the phases --------------------------------------------------------------------

interface CaptureRun extends WriterRun {
  /** Write-to-committed-slice delays (s) of the writes found in a slice. */
  delays: number[];
  unshipped: number;
  /** The capture's CPU seconds while the writers ran, its peak RSS over the run. */
  cpu: number;
  peakKb: number;
  catchUp: number;
  errors: number;
  /** Per slice of the run: from its read (until) to its commit, s: the server's query,
   * zstd, the signed write. */
  cycles: number[];
}

async function capturedRun(): Promise<CaptureRun> {
  const startedAt = Date.now();
  const d = startDaemon();
  try {
    // caught up: a slice read after the start holds everything written before it (the
    // runs without the daemon included)
    await waitFor('the capture to catch up', () => slices().some((s) => s.until >= startedAt), d);
    const catchUp = (Date.now() - startedAt) / 1000;
    const from = await newestTs();
    const cpu0 = d.sample().cpu;
    const w = await write(SECONDS);
    const cpu = d.sample().cpu - cpu0;
    const stoppedAt = Date.now();
    await waitFor('a slice read after the writers stopped', () => slices().some((s) => s.until > stoppedAt + 1000), d);
    const { peakKb } = d.sample();
    await d.stop();
    const errors = d.output().split('\n').filter((l) => /"level":(50|"error")/.test(l)).length;

    const pos = await positions(from, w.acks);
    const all = slices();
    const delays: number[] = [];
    let unshipped = 0;
    for (const [seq, ack] of w.acks) {
      const p = pos.get(seq);
      const s = p && all.find((x) => cmpTs(x.after, p) < 0 && cmpTs(p, x.last) <= 0);
      if (!s) unshipped++;
      else delays.push((s.committed - ack) / 1000);
    }
    const cycles = all.filter((s) => s.until >= startedAt).map((s) => (s.committed - s.until) / 1000);
    return { ...w, delays, unshipped, cpu, peakKb, catchUp, errors, cycles };
  } catch (err) {
    d.child.kill('SIGKILL');
    throw err;
  }
}

/** What the writers wrote, as a restore must bring it back: counts and a digest of
 * (_id, seq, n) in _id order. */
function digest(colls: { _id: number; seq: number; n: number }[][]): string {
  const h = createHash('sha256');
  for (const docs of colls) for (const d of docs) h.update(`${d._id}:${d.seq}:${d.n};`);
  return `${colls.map((c) => c.length).join(' + ')} documents, ${h.digest('hex').slice(0, 16)}`;
}
const ledgerPrint = async () => digest(await Promise.all([ledger(), counters()].map((c) => c.find({}, { sort: { _id: 1 }, projection: { seq: 1, n: 1 } }).toArray())));

/** The same digest as the writers' history says it is once the oplog entries up to
 * `last` are applied (undefined: a write whose entry is not in the oplog). */
function expectedPrint(pos: Map<number, { t: number; i: number }>, last: { t: number; i: number }): string | undefined {
  const seed = (k: number) => ({ _id: k, seq: 0, n: 0 });
  const led = Array.from({ length: LEDGER_SEED }, (_, k) => seed(k));
  const ctr = Array.from({ length: COUNTERS }, (_, k) => seed(k));
  for (const op of history) {
    const p = pos.get(op.seq);
    if (!p) return undefined;
    if (cmpTs(p, last) > 0) continue;
    if (op.kind === 'i') led.push({ _id: op.id, seq: op.seq, n: 0 });
    else ctr[op.id] = { _id: op.id, seq: op.seq, n: ctr[op.id]!.n + 1 };
  }
  return digest([led.sort((a, b) => a._id - b._id), ctr]);
}

async function seed(): Promise<void> {
  const local = client.db('local');
  // what rs.initiate() does, as far as the stand-in needs it: the capped oplog and a
  // first no-op entry (mongodump --oplog refuses an empty oplog)
  await local.createCollection('oplog.rs', { capped: true, size: 1 << 30 });
  await local.collection('oplog.rs').insertOne({ op: 'n', ns: '', o: { msg: 'initiating set' }, ts: new Timestamp({ t: Math.floor(Date.now() / 1000) - 1, i: 1 }), t: Long.fromNumber(1), v: Long.fromNumber(2), wall: new Date() });
  const words = 'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa'.split(' ');
  const docs = client.db('bench').collection('docs');
  for (let i = 0; i < DOCS; i += 1000) {
    await docs.insertMany(Array.from({ length: Math.min(1000, DOCS - i) }, (_, k) => {
      const n = i + k;
      return { n, at: new Date(Date.UTC(2024, 0, 1) + n * 1000), level: ['info', 'warn', 'error'][n % 3], tags: [words[n % 16], words[(n >> 4) % 16]],
        text: Array.from({ length: 24 }, (_, j) => `${words[(n * 7 + j) % 16]}-${(n * 31 + j * 17) % 100000}`).join(' '), metrics: { a: n / 7, b: n % 1000 } };
    }));
  }
  await docs.createIndex({ at: 1 });
  await ledger().insertMany(Array.from({ length: LEDGER_SEED }, (_, k) => ({ _id: k, seq: 0, v: `seed ${k}`, n: 0, at: new Date() })));
  await counters().insertMany(Array.from({ length: COUNTERS }, (_, k) => ({ _id: k, seq: 0, v: `seed ${k}`, n: 0, at: new Date() })));
}

async function main(): Promise<void> {
  console.log(`pitr-bench: ${NAME} on 127.0.0.1:${PORT}; ${DOCS} documents, ${WRITERS} writers × ${SECONDS} s, slice_seconds ${SLICE_SECONDS}, ${RUNS} runs each; tmp ${tmp}`);
  writeFileSync(path.join(tmp, 'env'), `MONGO_INITDB_ROOT_USERNAME=root\nMONGO_INITDB_ROOT_PASSWORD=${PASSWORD}\n`, { mode: 0o600 });
  run('docker', ['run', '-d', '--name', NAME, '--network', 'host', '--env-file', path.join(tmp, 'env'), '-v', `${NAME}-db:/data/db`, '-v', `${NAME}-cfg:/data/configdb`,
    IMAGE, '--bind_ip', '127.0.0.1', '--port', String(PORT), '--replSet', 'rs0'], 'docker run');
  client = new MongoClient(`mongodb://127.0.0.1:${PORT}/`, { directConnection: true, auth: { username: 'root', password: PASSWORD }, authSource: 'admin', serverSelectionTimeoutMS: 2000 });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await client.connect();
      if ((await client.db('admin').command({ hello: 1 })).setName !== 'rs0') throw new Error('hello reports no replica set');
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`mongo in ${NAME} did not start: ${(err as Error).message}`);
      await sleep(300);
    }
  }
  // the server's process as the host sees it: its CPU time is the cost of each write
  serverPid = Number(run('docker', ['inspect', '-f', '{{.State.Pid}}', NAME], 'docker inspect').trim());
  let t0 = performance.now();
  await seed();
  console.log(`seeded ${DOCS} documents in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  writeFileSync(CONFIG, [
    `host: ${HOST}`,
    'targets:', `  - { name: local, type: local, path: ${tmp}/backups }`,
    // never due while the bench runs: the only dump is the one taken below
    'tiers: { critical: { schedule: "0 2 1 1 *", keep: { last: 10 } } }',
    'jobs:', `  - { name: ${JOB}, plugin: mongo, container: ${NAME}, tier: critical, pitr: { slice_seconds: ${SLICE_SECONDS}, keep: 24h } }`,
    'discovery: { labels: false }', 'daemon: { catch_up: false }', `state_dir: ${tmp}/state`, ''].join('\n'));
  const dump = await agent(['backup'], CONFIG, 'snapagent backup');
  const stats = (await agent(['list', '--job', JOB], CONFIG, 'snapagent list')).doc.backups[0]?.stats ?? {};
  if (stats.oplog !== true) throw new Error(`the dump was taken without --oplog: ${JSON.stringify(stats)}`);
  console.log(`dump: ${(dump.doc.results[0].size / 1048576).toFixed(1)} MB stored in ${dump.seconds.toFixed(1)} s, oplog up to ${stats.oplog_window?.last?.time}`);

  // throughput and latency: a warm-up, then pairs without and with the capture, the
  // first of a pair alternating
  await write(SECONDS);
  const plain: WriterRun[] = [];
  const captured: CaptureRun[] = [];
  const ratios: number[] = [];
  for (let k = 0; k < PAIRS; k++) {
    let p!: WriterRun;
    let c!: CaptureRun;
    for (const withCapture of k % 2 ? [true, false] : [false, true]) {
      await sleep(2000);
      if (withCapture) c = await capturedRun();
      else p = await write(SECONDS);
    }
    plain.push(p);
    captured.push(c);
    ratios.push(c.ops / c.seconds / (p.ops / p.seconds));
    console.log(`  pair ${k + 1} (${k % 2 ? 'capture first' : 'plain first'}): without capture ${(p.ops / p.seconds).toFixed(0)} ops/s, with ${(c.ops / c.seconds).toFixed(0)} ops/s (caught up in ${c.catchUp.toFixed(1)} s; delay p50 ${percentile(c.delays, 50).toFixed(1)} s, p99 ${percentile(c.delays, 99).toFixed(1)} s; ${c.unshipped} not in a slice; read to commit p50 ${median(c.cycles).toFixed(2)} s, max ${Math.max(...c.cycles).toFixed(2)} s; capture CPU ${c.cpu.toFixed(1)} s, peak RSS ${(c.peakKb / 1024).toFixed(0)} MB${c.errors ? `; ${c.errors} errors logged` : ''})`);
  }
  const chain = slices();
  const dumpLast = stats.oplog_window.last as { t: number; i: number };
  const everyPos = await positions(new Timestamp({ t: dumpLast.t, i: dumpLast.i }), new Set(history.map((o) => o.seq)));

  // restore: the dump alone against the dump plus the slices up to a point, alternating
  let replayed = 0;
  const point = [...chain].sort((a, b) => cmpTs(a.last, b.last)).find((s) => (replayed += s.entries) >= REPLAY) ?? chain.at(-1)!;
  const at = new Date(point.until).toISOString();
  const expected = expectedPrint(everyPos, point.last) ?? `(${history.length - everyPos.size} writes missing from the oplog)`;
  const plainR: AgentRun[] = [];
  const pitrR: AgentRun[] = [];
  const mismatches: string[] = [];
  for (let k = 0; k < RUNS; k++) {
    const p = await agent(['restore', '--job', JOB, '--force'], CONFIG, 'snapagent restore');
    if (p.doc.ok !== true) throw new Error(`snapagent restore reported ok=${p.doc.ok}: ${JSON.stringify(p.doc)}`);
    plainR.push(p);
    const q = await agent(['restore', '--job', JOB, '--at', at, '--force'], CONFIG, 'snapagent restore --at');
    if (q.doc.ok !== true) throw new Error(`snapagent restore --at reported ok=${q.doc.ok}: ${JSON.stringify(q.doc)}`);
    pitrR.push(q);
    const got = await ledgerPrint();
    if (got !== expected) mismatches.push(`run ${k + 1}: ${got}`);
    console.log(`  restore ${k + 1}: dump ${p.seconds.toFixed(1)} s, to ${at} ${q.seconds.toFixed(1)} s (${q.doc.results[0].stats.oplog.slice_entries} slice entries)${got === expected ? '' : ' STATE DIFFERS'}`);
  }

  // ---- figures
  const opsPlain = median(plain.map((r) => r.ops / r.seconds));
  const opsCaptured = median(captured.map((r) => r.ops / r.seconds));
  const delays = captured.flatMap((r) => r.delays);
  const unshipped = captured.reduce((n, r) => n + r.unshipped, 0);
  const writes = captured.reduce((n, r) => n + r.ops, 0);
  const plainS = median(plainR.map((r) => r.seconds));
  const pitrS = median(pitrR.map((r) => r.seconds));
  const pit = pitrR[0]!.doc.results[0];
  const sliceEntries: number = pit.stats.oplog.slice_entries;
  const extra = pitrS - plainS;
  const chainEntries = chain.reduce((n, s) => n + s.entries, 0);
  const capturePeakMb = Math.max(...captured.map((r) => r.peakKb)) / 1024;
  const restorePeakMb = Math.max(...[...plainR, ...pitrR].map((r) => r.peakKb)) / 1024;

  console.log(`\nmedians of ${PAIRS} pairs of writer runs and ${RUNS} pairs of restores; ${WRITERS} writers, one operation at a time each, ${SECONDS} s; slice_seconds ${SLICE_SECONDS}\n`);
  const row = (name: string, value: string, note = '') => console.log(`${name.padEnd(44)}${value.padStart(12)}  ${note}`);
  row('writes without capture', `${opsPlain.toFixed(0)} ops/s`, plain.map((r) => (r.ops / r.seconds).toFixed(0)).join(' / '));
  row('writes with capture (snapagent run)', `${opsCaptured.toFixed(0)} ops/s`, captured.map((r) => (r.ops / r.seconds).toFixed(0)).join(' / '));
  row('with / without capture, pair median', ratios.length ? median(ratios).toFixed(3) : '-', ratios.map((r) => r.toFixed(2)).join(' / '));
  const perK = (r: WriterRun) => (r.serverCpu / r.ops) * 1000;
  const cpuPlain = median(plain.map(perK));
  const cpuCaptured = median(captured.map(perK));
  row('server CPU per 1000 writes, without', `${cpuPlain.toFixed(2)} s`, plain.map((r) => perK(r).toFixed(2)).join(' / '));
  row('server CPU per 1000 writes, with capture', `${cpuCaptured.toFixed(2)} s`, `${captured.map((r) => perK(r).toFixed(2)).join(' / ')}; ${cpuCaptured >= cpuPlain ? '+' : ''}${((cpuCaptured / cpuPlain - 1) * 100).toFixed(1)} % (the capture's reads)`);
  row('capture CPU while writing', `${(median(captured.map((r) => r.cpu)) / SECONDS * 100).toFixed(1)} %`, `of one core; peak RSS ${capturePeakMb.toFixed(0)} MB`);
  const cycles = captured.flatMap((r) => r.cycles);
  row('slice read to commit, p50', `${median(cycles).toFixed(2)} s`, `max ${Math.max(...cycles).toFixed(2)} s over ${cycles.length} slices`);
  row('write to committed slice, p50', `${percentile(delays, 50).toFixed(2)} s`, `${delays.length} writes; ${unshipped} of ${writes} in no slice`);
  row('write to committed slice, p99', `${percentile(delays, 99).toFixed(2)} s`, `max ${Math.max(...delays).toFixed(2)} s`);
  row('restore the dump', `${plainS.toFixed(2)} s`, plainR.map((r) => r.seconds.toFixed(1)).join(' / '));
  row('restore to a point (--at a slice)', `${pitrS.toFixed(2)} s`, `${pitrR.map((r) => r.seconds.toFixed(1)).join(' / ')}; ${pit.point_in_time.slices} slices, ${sliceEntries} entries`);
  row('entries replayed per extra second', extra > 0 ? `${(sliceEntries / extra).toFixed(0)} /s` : '-', `peak RSS of the restores ${restorePeakMb.toFixed(0)} MB`);
  console.log(`(${chain.length} slices, ${chainEntries} entries shipped in all; restores ${mismatches.length ? `DIFFER from the writers' state: ${mismatches.join('; ')}` : `give the writers' state at that point: ${expected}`})`);

  const result = {
    throughput_drop: 1 - median(ratios),
    latency_p50_s: percentile(delays, 50),
    latency_p99_s: percentile(delays, 99),
  };
  console.log(`\nrestore to a point / restore of the dump: ${(pitrS / plainS).toFixed(2)} (no target)`);
  report(result, { throughput_drop: 0.05, latency_p50_s: LATENCY_TARGET, latency_p99_s: LATENCY_TARGET }, {
    restore_at_vs_dump: pitrS / plainS,
    server_cpu_per_1000_writes: { plain: plain.map(perK), captured: captured.map(perK) },
    ops_per_s: { plain: plain.map((r) => r.ops / r.seconds), captured: captured.map((r) => r.ops / r.seconds), pair_ratios: ratios },
    restore_seconds: { dump: plainR.map((r) => r.seconds), at: pitrR.map((r) => r.seconds) },
    slice_entries_replayed: sliceEntries,
    entries_per_extra_second: extra > 0 ? sliceEntries / extra : null,
    writes_in_no_slice: unshipped,
    capture_cpu_seconds: captured.map((r) => r.cpu),
    slice_read_to_commit_s: { p50: median(cycles), max: Math.max(...cycles) },
    capture_peak_rss_mb: capturePeakMb,
    restore_peak_rss_mb: restorePeakMb,
    capture_errors_logged: captured.reduce((n, r) => n + r.errors, 0),
    restore_state_mismatches: mismatches,
    documents: DOCS, writers: WRITERS, seconds: SECONDS, slice_seconds: SLICE_SECONDS, runs: RUNS, pairs: PAIRS,
  });
  if (mismatches.length || unshipped) process.exitCode = 1;
}

process.on('SIGINT', () => console.error('\ninterrupted: cleaning up'));
try {
  await main();
} catch (err) {
  console.error(`\npitr-bench: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await client?.close().catch(() => undefined);
  spawnSync('docker', ['rm', '-f', '-v', NAME], { stdio: 'ignore' });
  for (const v of [`${NAME}-db`, `${NAME}-cfg`]) spawnSync('docker', ['volume', 'rm', '-f', v], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
}
