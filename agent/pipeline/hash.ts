// A pass-through step that computes the sha256 and byte count of what flows through.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export class HashCounter extends Transform {
  private hash: Hash = createHash('sha256');
  bytes = 0;
  private result?: string;

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = this.hash.digest('hex');
    cb();
  }

  /** The hex digest; only valid after the stream has ended. */
  sha256(): string {
    if (!this.result) throw new Error('sha256 requested before the stream ended');
    return this.result;
  }
}

/** Counts bytes without hashing (raw size before compression). */
export class ByteCounter extends Transform {
  bytes = 0;
  private readonly onBytes?: (n: number) => void;
  constructor(onBytes?: (n: number) => void) {
    super({ highWaterMark: 1 << 20 });
    this.onBytes = onBytes;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }
}
