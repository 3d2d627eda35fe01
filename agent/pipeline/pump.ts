// Bulk bytes between processes and files without passing through the main thread: a
// worker thread copies one file descriptor into others with blocking
// reads and writes and one reused buffer, hashing and counting what it read. Node's own
// streams would allocate a buffer per chunk (the GC then took a third of the agent's CPU
// in a 1 GiB backup) and hash on the event loop. The other ends are named pipes
// (pipePair) to and from zstd/age, and files of a local target.
import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { runId } from '../log.ts';
import { makeFifo, openDir, type Fifo } from '../docker/fifo.ts';

export interface PumpJob {
  input: number;
  outputs: number[];
  /** Keep reading (and hashing) to the end when every output failed: a consumer that
   * stops early must not cut the check of the stored bytes short. */
  drain: boolean;
  /** The fault point (testing.ts) reached with the bytes read so far, in the worker: a
   * frozen point stalls the bytes themselves. */
  point?: string;
}

type PumpMessage =
  | { progress: number }
  | { done: { sha256: string; bytes: number; errors: (WireError | null)[] } }
  | { failed: WireError };

interface WireError {
  message: string;
  code?: string;
  /** Which output failed (absent: the input). */
  output?: number;
}

// The worker: plain JavaScript evaluated as a script, so that the thread loads neither
// the TypeScript stripper nor any module of ours (12 MB less memory); testing.ts only
// when a fault point is armed. One 1 MiB buffer: a regular file fills it per read, a
// pipe gives at most what it holds (64 KiB).
const WORKER = `
const { createHash } = require('node:crypto');
const { readSync, writeSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const { job, testing } = workerData;
const wire = (err, output) => ({ message: err.message, code: err.code, output });
(async () => {
  const faultPoint = job.point && process.env.SNAPAGENT_TEST_PAUSE_AT ? (await import(testing)).faultPoint : () => {};
  const buf = Buffer.allocUnsafe(1 << 20);
  const hash = createHash('sha256');
  const errors = job.outputs.map(() => null);
  let bytes = 0, reported = 0;
  for (;;) {
    let n;
    try {
      n = readSync(job.input, buf, 0, buf.length, null);
    } catch (err) {
      if (err.code === 'EINTR' || err.code === 'EAGAIN') continue;
      throw err;
    }
    if (n === 0) break;
    const chunk = buf.subarray(0, n);
    hash.update(chunk);
    bytes += n;
    job.outputs.forEach((fd, i) => {
      if (errors[i]) return;
      try {
        for (let off = 0; off < n; ) off += writeSync(fd, chunk, off, n - off);
      } catch (err) {
        errors[i] = wire(err, i);
      }
    });
    // every output failed: nothing more to do (the caller stops the producer)
    if (!job.drain && errors.every(Boolean)) return parentPort.postMessage({ failed: errors[0] });
    if (job.point) faultPoint(job.point, bytes);
    if (bytes - reported >= ${4 << 20}) parentPort.postMessage({ progress: (reported = bytes) });
  }
  parentPort.postMessage({ done: { sha256: hash.digest('hex'), bytes, errors } });
})().catch((err) => parentPort.postMessage({ failed: wire(err) }));
`;

export interface PumpResult {
  sha256: string;
  bytes: number;
  /** Per output: why writing to it failed (null: it got every byte). */
  errors: (Error | null)[];
}

export class PumpError extends Error {
  readonly code?: string;
  /** The output that failed; undefined: the input. */
  readonly output?: number;
  constructor(w: WireError) {
    super(w.message);
    this.code = w.code;
    this.output = w.output;
  }
}

/** Starts copying `input` into every fd of `outputs` in a worker thread; `onBytes` gets
 * the bytes read so far now and then (every 4 MiB). The descriptors stay the caller's:
 * close them after `done` settled. */
export function pump(job: PumpJob, onBytes?: (bytes: number) => void, signal?: AbortSignal): Promise<PumpResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { job, testing: new URL('../testing.ts', import.meta.url).href }, stdout: false, stderr: false });
    // cancelled: the thread stops between two reads or writes
    const stop = () => void w.terminate();
    signal?.addEventListener('abort', stop, { once: true });
    w.on('exit', () => signal?.removeEventListener('abort', stop));
    let settled = false;
    w.on('message', (m: PumpMessage) => {
      if ('progress' in m) return onBytes?.(m.progress);
      settled = true;
      if ('failed' in m) return reject(new PumpError(m.failed));
      onBytes?.(m.done.bytes);
      resolve({ ...m.done, errors: m.done.errors.map((e) => (e ? new PumpError(e) : null)) });
    });
    w.on('error', (err) => ((settled = true), reject(err)));
    w.on('exit', (code) => settled || reject(signal?.aborted ? signal.reason : new Error(`the copying thread exited (${code}) before it finished`)));
  });
}

export interface PipePair {
  /** Both ends, opened blocking: hand one to a process (spawn's stdio), close ours of it. */
  readonly read: FileHandle;
  readonly write: FileHandle;
  /** Closes what is still open and removes the pipe (idempotent). */
  cleanup(): Promise<void>;
}

/** A named pipe in the agent's pipe directory (<state_dir>/pipes, named after the run so
 * that a killed run's are removed by the next start), both ends open. */
export async function pipePair(pipeDir: string, what: string): Promise<PipePair> {
  await mkdir(pipeDir, { recursive: true, mode: 0o700 });
  const fifo: Fifo = await makeFifo(await openDir(pipeDir), `snapagent-${what}-${runId}`);
  try {
    // each open waits (in libuv's pool) for the other end
    const [read, write] = await Promise.all([open(fifo.file, constants.O_RDONLY), open(fifo.file, constants.O_WRONLY)]);
    let done = false;
    return {
      read,
      write,
      cleanup: async () => {
        if (done) return;
        done = true;
        await read.close().catch(() => undefined);
        await write.close().catch(() => undefined);
        await fifo.cleanup();
      },
    };
  } catch (err) {
    await fifo.release();
    await fifo.cleanup();
    throw err;
  }
}
