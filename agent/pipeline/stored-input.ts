// The raw bytes of one stored artifact, as a plugin consumes them on restore:
//   target file ─► sha256 + count ─► (age -d) ─► zstd -d ─► a stream, or straight into a
//   file handle (a named pipe) through `head -c <bound>`, so the decompressed bytes never
//   pass through the agent.
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

  /** `identity`: the age identity file, required for an encrypted artifact unless only
   * verify() is used. */
  constructor(target: Target, key: string, artifact: Artifact, signal: AbortSignal, identity?: string) {
    this.target = target;
    this.key = key;
    this.artifact = artifact;
    this.signal = signal;
    this.identity = identity;
    this.integrity = new Promise<void>((res, rej) => ((this.resolve = res), (this.reject = rej)));
    this.integrity.catch(() => undefined);
  }

  async verify(): Promise<void> {
    const check = new HashCounter();
    await pipeline(this.target.open(this.key, this.signal), check, async function* (src) {
      for await (const _ of src);
    });
    this.checkDigest(check);
  }

  stream(): Readable {
    return this.start();
  }

  /** zstd writes into `fh` (a named pipe) itself, through `head -c <bound>`: the
   * decompressed bytes never pass through the agent, and never more than the bound. */
  async toHandle(fh: FileHandle): Promise<void> {
    try {
      this.start(fh.fd);
    } finally {
      // the child holds its own copy: ours must close, or the reader never sees EOF
      await fh.close().catch(() => undefined);
    }
    await this.integrity;
  }

  /** Whether a consumer started reading (else `integrity` never settles). */
  get started(): boolean {
    return this.dec !== undefined;
  }

  kill(): void {
    this.age?.kill();
    this.dec?.kill();
  }

  private start(output?: number): Readable {
    if (this.dec) throw new Error('the stored artifact can be read only once');
    const encrypted = this.artifact.encryption === 'age';
    if (encrypted && !this.identity) throw new Error(`${this.key} is encrypted: an age identity is needed to read it`);
    const limit = rawBound(this.artifact.raw_size);
    const bomb = () =>
      new RawSizeExceededError(
        `${this.key}: decompresses to more than ${limit} bytes, the manifest's raw_size ${this.artifact.raw_size} + 1 % + 64 KiB; refused as a decompression bomb before the live data was changed`,
        'the artifact or its manifest was altered; restore another backup (snapagent list)',
      );
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
    const steps = [finished(this.hash).then(() => this.checkDigest(this.hash)), age?.done, within, dec.done.catch((err: unknown) => { if (!(err instanceof RawBoundHit)) throw err; })];
    // The first failure in data order explains the rest: a wrong digest over age's
    // refusal over the bound (zstd was killed for it) over zstd's "truncated input".
    Promise.allSettled(steps).then((res) => {
      const failed = res.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) this.reject(failed.reason);
      else this.resolve();
    });
    return out;
  }

  private checkDigest(h: HashCounter): void {
    const { artifact, key } = this;
    if (h.bytes !== artifact.size) {
      throw new IntegrityError(`${key}: ${h.bytes} bytes stored, the manifest says ${artifact.size}; the archive is truncated or damaged`);
    }
    if (h.sha256() !== artifact.sha256) {
      throw new IntegrityError(`${key}: sha256 ${h.sha256()} does not match the manifest's ${artifact.sha256}; the archive is damaged`);
    }
    this.digestOk = true;
  }
}
