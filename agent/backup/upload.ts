// Step 3 of a backup: the plugin's bytes to every target, as a .partial that no reader
// takes for a backup:
//   producer ─► (count raw) ─► zstd ─► (age) ─► sha256 + count ─► each target's put()
// When every target is a file on this machine (local), zstd (or age) writes into a named
// pipe and a worker thread copies it into each target's .partial file, hashing and
// counting (pump.ts): the compressed bytes never pass through the event loop.
// One failing target is dropped and the others go on. When the stream fails as a whole
// (the producer, every target, a cancellation), the plugin's work is undone, the
// partial files are removed and the most meaningful error is thrown.
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errorMessage, SnapError } from '../errors.ts';
import { log } from '../log.ts';
import { ageEncrypt } from '../pipeline/age.ts';
import { zstdCompress } from '../pipeline/filter-process.ts';
import { ByteCounter, HashCounter } from '../pipeline/hash.ts';
import type { Bar } from '../pipeline/progress.ts';
import { pipePair, pump, type PumpResult } from '../pipeline/pump.ts';
import type { PartialFile, Target } from '../targets/target.ts';
import { faultPoint } from '../testing.ts';
import type { ProducingRun } from './backup-run.ts';

export interface Written {
  sha256: string;
  bytes: number;
  /** Raw bytes, when the agent counted them (else the plugin's stream_bytes). */
  rawBytes?: number;
  /** Targets whose upload failed, with why; the others hold the artifact. */
  failures: Map<string, { error: string; hint?: string }>;
  /** performance.now() when compression ended and every target's upload settled. */
  streamedAt: number;
}

export async function compressAndUpload(run: ProducingRun): Promise<Written> {
  const { stream: bs, abort, targets, dir } = run;
  const { signal, progress } = run.ctx;
  // Fast path: zstd reads the producer's named pipe itself, so the agent only handles
  // the compressed bytes; else the raw bytes flow through the agent into zstd's stdin.
  const direct = bs.openRaw ? await bs.openRaw().catch(() => undefined) : undefined;
  const bar = progress.start(run.job.name, direct ? 'stored' : 'read');
  try {
    return await flow(run, direct, bar);
  } catch (err) {
    abort.abort(err);
    await bs.abort().catch((e: unknown) => log.error({ job: run.job.name }, errorMessage(e)));
    const producerError = await bs.done.then(() => undefined, (e: unknown) => e);
    for (const t of targets) await t.removeDir(dir).catch(() => undefined);
    // The first meaningful error wins: the run's cancellation over what it broke, a full
    // disk over the producer's broken pipe, the producer's own failure over the
    // "premature close" it causes downstream.
    if (signal.aborted) throw signal.reason;
    throw err instanceof SnapError ? err : producerError instanceof SnapError ? producerError : firstReal(err, abort.signal);
  } finally {
    run.unfollow();
    bar.stop();
  }
}

// zstd writes straight into age's stdin; the last of them feeds the hash, which feeds
// every target.
async function flow(run: ProducingRun, direct: FileHandle | undefined, bar: Bar): Promise<Written> {
  if (run.targets.every((t) => t.openPartial)) return flowToFiles(run, direct, bar);
  const { stream: bs, abort, targets, key, recipients } = run;
  const hash = new HashCounter();
  const raw = direct ? undefined : new ByteCounter((n) => bar.update(n));
  const age = recipients ? ageEncrypt(recipients.files, abort.signal) : undefined;
  const zstd = zstdCompress(abort.signal, direct?.fd, age?.stdin ?? undefined);
  // zstd has its own copies: ours must not keep the pipes open (a writer whose reader
  // died must get EPIPE, not block; age sees EOF only once every writer closed)
  await direct?.close();
  age?.stdin?.destroy();
  const last = age ?? zstd;
  if (direct) hash.on('data', () => bar.update(hash.bytes));
  hash.on('data', () => faultPoint('backup-stream', hash.bytes));
  const failures = new Map<string, { error: string; hint?: string }>();
  const puts = targets.map((t) => {
    const pt = new PassThrough({ highWaterMark: 1 << 20 });
    hash.pipe(pt);
    const put = t.put(key, pt, abort.signal).catch((err: unknown) => {
      failures.set(t.name, { error: errorMessage(err), hint: err instanceof SnapError ? err.hint : undefined });
      hash.unpipe(pt);
      pt.resume();
      // every target failed: that is why the run stops (a full disk, not the producer's broken pipe)
      if (failures.size === targets.length) abort.abort(targets.length === 1 ? err : new SnapError([...failures.values()].map((f) => f.error).join('; '), { hint: [...failures.values()].find((f) => f.hint)?.hint }));
      throw err;
    });
    put.catch(() => undefined);
    return put;
  });
  let streamedAt = 0;
  try {
    await Promise.all([
      raw ? pipeline(bs.stream, raw, zstd.stdin!, { signal: abort.signal }) : undefined,
      Promise.all([pipeline(last.stdout, hash, { signal: abort.signal }), zstd.done, age?.done, Promise.allSettled(puts)]).then(() => (streamedAt = performance.now())),
      bs.done,
    ]);
  } catch (err) {
    const targetsFailed = failures.size === targets.length; // before the cleanup below fails them too
    zstd.kill();
    age?.kill();
    await Promise.allSettled(puts);
    throw targetsFailed ? abort.signal.reason : err;
  }
  return { sha256: hash.sha256(), bytes: hash.bytes, rawBytes: raw?.bytes, failures, streamedAt };
}

type Failures = Written['failures'];

const failure = (err: unknown) => ({ error: errorMessage(err), hint: err instanceof SnapError ? err.hint : undefined });

// Every target failed: one target's own error, else all of them in one.
function allFailed(targets: Target[], failures: Failures, err: unknown): unknown {
  return targets.length === 1 ? err : new SnapError([...failures.values()].map((f) => f.error).join('; '), { hint: [...failures.values()].find((f) => f.hint)?.hint });
}

// Rejects when `p` rejects; never resolves (for a race with the steps that must finish).
const failureOf = (p: Promise<unknown>) => new Promise<never>((_, reject) => void p.catch(reject));

// The local fast path: zstd (and age) ─► named pipe ─► worker (sha256, count) ─► each
// target's .partial file, written back to disk while the stream goes on and fsynced once.
async function flowToFiles(run: ProducingRun, direct: FileHandle | undefined, bar: Bar): Promise<Written> {
  const { stream: bs, abort, targets, key, recipients } = run;
  const failures: Failures = new Map();
  const files: { t: Target; file: PartialFile }[] = [];
  let lastError: unknown;
  for (const t of targets) {
    try {
      files.push({ t, file: await t.openPartial!(key) });
    } catch (err) {
      failures.set(t.name, failure(err));
      lastError = err;
    }
  }
  if (files.length === 0) {
    await direct?.close();
    throw allFailed(targets, failures, lastError);
  }
  const pair = await pipePair(path.join(run.ctx.config.stateDir, 'pipes'), 'upload').catch(async (err: unknown) => {
    await direct?.close();
    for (const f of files) await f.file.discard();
    throw err;
  });
  const raw = direct ? undefined : new ByteCounter((n) => bar.update(n));
  const age = recipients ? ageEncrypt(recipients.files, abort.signal, pair.write.fd) : undefined;
  const zstd = zstdCompress(abort.signal, direct?.fd, age?.stdin ?? pair.write.fd);
  // the children hold their own copies: the pipe ends (EOF) when the last of them exits
  await direct?.close();
  age?.stdin?.destroy();
  await pair.write.close();
  let synced = 0;
  const copied = pump({ input: pair.read.fd, outputs: files.map((f) => f.file.fd), drain: false, point: 'backup-stream' }, (n) => {
    if (direct) bar.update(n);
    if (n - synced < 64 << 20) return;
    synced = n;
    for (const f of files) f.file.writeBack();
  });
  copied.catch(() => undefined);
  try {
    const [res] = await Promise.race([
      Promise.all([copied, zstd.done, age?.done, raw ? pipeline(bs.stream, raw, zstd.stdin!, { signal: abort.signal }) : undefined]),
      failureOf(bs.done),
    ]);
    const finishError = await finishFiles(files, res, failures);
    if (failures.size === targets.length) throw allFailed(targets, failures, finishError ?? lastError);
    const streamedAt = performance.now();
    await bs.done;
    return { sha256: res.sha256, bytes: res.bytes, rawBytes: raw?.bytes, failures, streamedAt };
  } catch (err) {
    zstd.kill();
    age?.kill();
    for (const f of files) await f.file.discard();
    // a write that failed on every target (a full disk): the target says what and where
    const output = (err as { output?: number }).output;
    throw output === undefined ? err : files[output]!.file.error(err);
  } finally {
    await copied.catch(() => undefined);
    await pair.cleanup();
  }
}

// Each file that got every byte is made durable; one whose writes failed is removed.
// Returns the last failure, if any.
async function finishFiles(files: { t: Target; file: PartialFile }[], res: PumpResult, failures: Failures): Promise<unknown> {
  let last: unknown;
  for (const [i, { t, file }] of files.entries()) {
    try {
      if (res.errors[i]) throw file.error(res.errors[i]);
      await file.finish(res.bytes);
    } catch (err) {
      failures.set(t.name, failure(err));
      last = err;
      await file.discard();
    }
  }
  return last;
}

// A SnapError that aborted the run explains more than a stream's "premature close".
function firstReal(err: unknown, signal: AbortSignal): unknown {
  return signal.reason instanceof SnapError ? signal.reason : err;
}
