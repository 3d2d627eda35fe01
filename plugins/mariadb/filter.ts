// Keeps one database's section of a multi-database dump (between its
// "-- Current Database: `db`" marker and the next), plus the header before the first
// marker (session settings).
import { Transform, type TransformCallback } from 'node:stream';

const MARKER = Buffer.from('-- Current Database: `');

export class DatabaseFilter extends Transform {
  private keep = true;
  private carry = Buffer.alloc(0);
  private readonly marker: Buffer;

  constructor(database: string) {
    super({ highWaterMark: 1 << 20 });
    this.marker = Buffer.from(`-- Current Database: \`${database.replaceAll('`', '``')}\``);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    let start = 0;
    let nl = buf.indexOf(0x0a);
    while (nl !== -1) {
      const line = buf.subarray(start, nl + 1);
      if (line.subarray(0, MARKER.length).equals(MARKER)) this.keep = line.subarray(0, this.marker.length).equals(this.marker) && line[this.marker.length] === 0x0a;
      if (this.keep) this.push(line);
      start = nl + 1;
      nl = buf.indexOf(0x0a, start);
    }
    this.carry = Buffer.from(buf.subarray(start));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.keep && this.carry.length) this.push(this.carry);
    cb();
  }
}
