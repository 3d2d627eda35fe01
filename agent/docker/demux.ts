// Splits Docker's multiplexed attach stream (8-byte frame headers: stream type, 3
// zero bytes, big-endian length) into stdout bytes (this Transform's output, with
// backpressure) and a bounded tail of stderr text.
import { Transform, type TransformCallback } from 'node:stream';

const STDERR_TAIL = 64 * 1024;

export class DockerDemux extends Transform {
  private header = Buffer.alloc(8);
  private headerFill = 0;
  private remaining = 0;
  private kind = 0;
  private errChunks: Buffer[] = [];
  private errBytes = 0;

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  /** Settles once all input was processed (or failed), or after `timeoutMs`. */
  drained(timeoutMs?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.writableFinished) return resolve();
      this.once('finish', resolve);
      this.once('error', () => resolve());
      if (timeoutMs !== undefined) setTimeout(resolve, timeoutMs).unref();
    });
  }

  /** The last 64 KiB the process wrote to stderr. */
  stderr(): string {
    return Buffer.concat(this.errChunks).toString('utf8');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.remaining === 0) {
        const take = Math.min(8 - this.headerFill, chunk.length - off);
        chunk.copy(this.header, this.headerFill, off, off + take);
        this.headerFill += take;
        off += take;
        if (this.headerFill < 8) break;
        this.kind = this.header[0]!;
        this.remaining = this.header.readUInt32BE(4);
        this.headerFill = 0;
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - off);
      const part = chunk.subarray(off, off + take);
      off += take;
      this.remaining -= take;
      if (this.kind === 2) this.keepStderr(part);
      else if (this.kind === 1) this.push(part);
    }
    cb();
  }

  private keepStderr(part: Buffer): void {
    this.errChunks.push(Buffer.from(part));
    this.errBytes += part.length;
    while (this.errBytes > STDERR_TAIL && this.errChunks.length > 1) {
      this.errBytes -= this.errChunks.shift()!.length;
    }
  }
}
