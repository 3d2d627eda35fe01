// The raw bytes of one stored artifact, as a plugin consumes them on restore:
//   target file ─► sha256 + count ─► (age -d) ─► zstd -d ─► a stream, or straight into a
//   file handle (a named pipe) through `dd` (at most <bound> bytes), so the decompressed
//   bytes never pass through the agent. Into a file handle from a local target, a worker thread reads
//   the stored file, hashes it and writes the same bytes into a named pipe the decoders
//   read (pump.ts): the stored bytes never pass through the event loop either, and what
//   is decoded is exactly what was hashed.
// `integrity` settles once every stored byte was read and checked against the manifest,
// age (its authentication tags) and zstd (its frame checksums) accepted them, and the
// decompressed bytes stayed within the manifest's raw_size (+ 1 % + 64 KiB): a stream
// that grows beyond it (a zstd bomb) ends there, never passing a byte over the bound.
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../errors.ts';
import type { Artifact } from '../catalog/manifest.ts';
import type { RawInput } from '../plugin/contract.ts';
import type { Target } from '../targets/target.ts';
import { ageDecrypt } from './age.ts';
import { feedDraining } from '../plugin/feed.ts';
import { RawBoundHit, zstdDecompress, zstdDecompressBounded, type FilterProcess } from './filter-process.ts';
import { HashCounter } from './hash.ts';
import { pipePair, pump } from './pump.ts';
import { faultPoint } from '../testing.ts';

/** The decompressed bytes outgrew the manifest's raw_size: refused before live data changes. */
export class RawSizeExceededError extends IntegrityError {}

/** The most raw bytes a restore reads from an artifact: its recorded raw_size + 1 % + 64 KiB. */
export function rawBound(rawSize: number): number {
  return rawSize + Math.floor(rawSize / 100) + 64 * 1024;
}

// Passes at most `limit` bytes, then ends the stream (EOF, not an error: every consumer
// sees a short input) and reports the excess once.
class RawBound extends Transform {
  bytes = 0;
  private over = false;
  private readonly limit: number;
  private readonly onOver: () => void;
  constructor(limit: number, onOver: () => void) {
    super({ highWaterMark: 1 << 20 });
    this.limit = limit;
    this.onOver = onOver;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.over) return cb();
    const room = this.limit - this.bytes;
    this.bytes += chunk.length;
    if (chunk.length <= room) return cb(null, chunk);
    if (room > 0) this.push(chunk.subarray(0, room));
    this.over = true;
    this.push(null);
    this.onOver();
    cb();
  }
}

export class StoredInput implements RawInput {
  readonly integrity: Promise<void>;
  readonly hash = new HashCounter();
  /** Set once every stored byte was read and matched the manifest's size and sha256. */
  digestOk = false;
  private resolve!: () => void;
  private reject!: (err: unknown) => void;
  private dec?: FilterProcess;
  private age?: FilterProcess;
  private readonly target: Target;
  private readonly key: string;
  private readonly artifact: Artifact;
  private readonly signal: AbortSignal;
  private readonly identity?: string;
  private readonly pipeDir?: string;
  private begun = false;
  private pumped = 0;
  private progress?: { onBytes: (bytes: number) => void; point?: string };

  /** `identity`: the age identity file, required for an encrypted artifact unless only
   * verify() is used. `pipeDir`: the agent's pipe directory, for the worker-thread path
   * of toHandle() (without it, the bytes go through the event loop). */
  constructor(target: Target, key: string, artifact: Artifact, signal: AbortSignal, identity?: string, pipeDir?: string) {
    this.target = target;
    this.key = key;
    this.artifact = artifact;
    this.signal = signal;
    this.identity = identity;
    this.pipeDir = pipeDir;
    this.integrity = new Promise<void>((res, rej) => ((this.resolve = res), (this.reject = rej)));
    this.integrity.catch(() => undefined);
  }

  async verify(): Promise<void> {
    const check = new HashCounter();
    await pipeline(this.target.open(this.key, this.signal), check, async function* (src) {
      for await (const _ of src);
    });
    this.checkDigest(check.bytes, check.sha256());
  }

  /** Stored bytes read so far (all of them once `integrity` resolved). */
  get bytes(): number {
    return Math.max(this.hash.bytes, this.pumped);
  }

  /** `onBytes` gets the stored bytes read so far as they are read; the fault point
   * `point` (testing.ts) is reached with them, where the bytes move. Before reading. */
  watch(onBytes: (bytes: number) => void, point?: string): void {
    this.progress = { onBytes, point };
    this.hash.on('data', () => {
      onBytes(this.hash.bytes);
      if (point) faultPoint(point, this.hash.bytes);
    });
  }

  stream(): Readable {
    return this.start();
  }

  /** zstd writes into `fh` (a named pipe) itself, through `dd` (at most the bound): the
   * decompressed bytes never pass through the agent, and never more than the bound. */
  async toHandle(fh: FileHandle): Promise<void> {
    try {
      if (this.pipeDir !== undefined && this.target.openStored) await this.startPumped(fh.fd, this.pipeDir);
      else this.start(fh.fd);
    } finally {
      // the child holds its own copy: ours must close, or the reader never sees EOF
      await fh.close().catch(() => undefined);
    }
    await this.integrity;
  }

  /** Whether a consumer started reading (else `integrity` never settles). */
  get started(): boolean {
    return this.begun;
  }

  kill(): void {
    this.age?.kill();
    this.dec?.kill();
  }

  private bomb(limit: number): RawSizeExceededError {
    return new RawSizeExceededError(
      `${this.key}: decompresses to more than ${limit} bytes, the manifest's raw_size ${this.artifact.raw_size} + 1 % + 64 KiB; refused as a decompression bomb before the live data was changed`,
      'the artifact or its manifest was altered; restore another backup (snapagent list)',
    );
  }

  private begin(): { encrypted: boolean; limit: number } {
    if (this.begun) throw new Error('the stored artifact can be read only once');
    this.begun = true;
    const encrypted = this.artifact.encryption === 'age';
    if (encrypted && !this.identity) throw new Error(`${this.key} is encrypted: an age identity is needed to read it`);
    return { encrypted, limit: rawBound(this.artifact.raw_size) };
  }

  // The first failure in data order explains the rest: a wrong digest over age's
  // refusal over the bound (zstd was killed for it) over zstd's "truncated input".
  private settle(steps: (Promise<unknown> | undefined)[]): void {
    Promise.allSettled(steps).then((res) => {
      const failed = res.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) this.reject(failed.reason);
      else this.resolve();
    });
  }

  // stored file ─► worker (sha256, count) ─► named pipe ─► (age -d) ─► zstd -d | dd (bound)
  // ─► `output`. The worker reads every stored byte even when a decoder stops early.
  private async startPumped(output: number, pipeDir: string): Promise<void> {
    const { encrypted, limit } = this.begin();
    let file: FileHandle | undefined;
    try {
      file = await this.target.openStored!(this.key);
      const pair = await pipePair(pipeDir, 'restore');
      let exceeded!: (err: RawSizeExceededError) => void;
      let passed!: () => void;
      const within = new Promise<void>((res, rej) => ((exceeded = rej), (passed = res)));
      const dec = (this.dec = zstdDecompressBounded(this.signal, limit, output, encrypted ? undefined : pair.read.fd));
      dec.done.then(passed, (err: unknown) => (err instanceof RawBoundHit ? exceeded(this.bomb(limit)) : passed()));
      const age = (this.age = encrypted ? ageDecrypt(this.identity!, this.signal, dec.stdin!, pair.read.fd) : undefined);
      if (age) dec.stdin!.destroy();
      await pair.read.close(); // the decoder holds its own
      const stored = file;
      const copied = pump({ input: stored.fd, outputs: [pair.write.fd], drain: true, point: this.progress?.point }, (n) => {
        this.pumped = n;
        this.progress?.onBytes(n);
      }, this.signal).finally(async () => {
        await stored.close().catch(() => undefined);
        await pair.cleanup(); // the decoders see EOF
      });
      this.settle([copied.then((r) => this.checkDigest(r.bytes, r.sha256)), age?.done, within, dec.done.catch((err: unknown) => { if (!(err instanceof RawBoundHit)) throw err; })]);
    } catch (err) {
      await file?.close().catch(() => undefined);
      this.kill();
      this.reject(err);
      throw err;
    }
  }

  private start(output?: number): Readable {
    const { encrypted, limit } = this.begin();
    const bomb = () => this.bomb(limit);
    let exceeded!: (err: RawSizeExceededError) => void;
    let passed!: () => void;
    const within = new Promise<void>((res, rej) => ((exceeded = rej), (passed = res)));
    let out: Readable;
    let dec: FilterProcess;
    if (output !== undefined) {
      // straight into the file descriptor, cut at the bound by head(1); zstd killed by
      // the pipe head closed means there was more than the bound
      dec = this.dec = zstdDecompressBounded(this.signal, limit, output);
      dec.done.then(passed, (err: unknown) => (err instanceof RawBoundHit ? exceeded(bomb()) : passed()));
      out = dec.stdout;
    } else {
      dec = this.dec = zstdDecompress(this.signal);
      const bound = new RawBound(limit, () => {
        dec.kill();
        exceeded(bomb());
      });
      dec.stdout.pipe(bound);
      bound.on('end', () => passed());
      // a consumer that broke off (a failed write into the helper's pipe): zstd stops as
      // it would on a broken pipe, and `integrity` says so
      bound.on('close', () => (bound.readableEnded ? passed() : (dec.kill(), passed())));
      out = bound;
    }
    // age writes straight into zstd's stdin; our copy of that pipe must close (EOF)
    const age = (this.age = encrypted ? ageDecrypt(this.identity!, this.signal, dec.stdin!) : undefined);
    if (age) dec.stdin!.destroy();
    // Every stored byte is read and hashed even when a decoder stops early (a damaged
    // frame), so that the digest, not the decoder's complaint, says what went wrong.
    const src = this.target.open(this.key, this.signal);
    const sink = (age ?? dec).stdin!;
    src.on('error', (err) => this.hash.destroy(err));
    this.hash.on('error', () => sink.destroy()); // the decoders see EOF and exit
    src.pipe(this.hash);
    feedDraining(this.hash, sink);
    this.settle([finished(this.hash).then(() => this.checkDigest(this.hash.bytes, this.hash.sha256())), age?.done, within, dec.done.catch((err: unknown) => { if (!(err instanceof RawBoundHit)) throw err; })]);
    return out;
  }

  private checkDigest(bytes: number, sha256: string): void {
    const { artifact, key } = this;
    if (bytes !== artifact.size) {
      throw new IntegrityError(`${key}: ${bytes} bytes stored, the manifest says ${artifact.size}; the archive is truncated or damaged`);
    }
    if (sha256 !== artifact.sha256) {
      throw new IntegrityError(`${key}: sha256 ${sha256} does not match the manifest's ${artifact.sha256}; the archive is damaged`);
    }
    this.digestOk = true;
  }
}
