// Leaves namespaces out of a `mongodump --archive` stream on its way to mongorestore.
// mongorestore refuses --oplogReplay together with any --nsInclude/--nsExclude, yet a
// whole restore must still leave the server's own namespaces alone (admin.system.*,
// config.*, local.*): so the agent removes them from the archive itself, with their
// entries in the oplog. Whole namespaces are dropped (their prelude metadata, segments
// and end marker), so every kept namespace's checksum still holds; the oplog's entries
// are filtered one by one and its checksum (CRC-64/ECMA, as mongodump computes it) is
// recomputed over the entries kept. Format: see archive.ts.
// For a restore to a point in time, entries shipped after the dump (oplog slices) are
// appended to the archive's oplog, as one more segment just before its end-of-namespace
// header, so mongorestore --oplogReplay applies them too (it takes no --oplogFile with
// --archive); the checksum then covers them as well.
import { Transform, type TransformCallback } from 'node:stream';
import { BSON, Long } from 'mongodb';

const MAGIC = 0x8199e26d;
const TERMINATOR = -1;
const MAX_META = 64 * 1024 * 1024;
const TERMINATOR_BYTES = Buffer.from([0xff, 0xff, 0xff, 0xff]);

/** Whether the namespace db.coll is kept. Oplog entries pass their ns split at the first
 * "." (a command's is "db.$cmd"; a no-op's is "", kept as db "" and coll ""). */
export type KeepNamespace = (db: string, coll: string) => boolean;

type State = 'magic' | 'header' | 'prelude' | 'nsheader' | 'body' | 'oplog' | 'eof';

/** Entries to append to the oplog: raw BSON documents, in order, already chosen. */
export type ExtraEntries = () => AsyncIterable<Buffer>;

export class ArchiveFilter extends Transform {
  private state: State = 'magic';
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private need = 4;
  /** Body bytes still to copy (kept) or skip (dropped) of the current document. */
  private copy = 0;
  private skip = 0;
  /** The current namespace is kept (its header was written). */
  private kept = false;
  /** An oplog segment's header, written before its first kept entry only. */
  private oplogHeader?: Buffer;
  private readonly crc = new Crc64();
  private out: Buffer[] = [];
  /** Counts for the log: entries of the oplog kept and left out, namespaces left out. */
  readonly dropped = { namespaces: new Set<string>(), oplogEntries: 0 };
  keptOplogEntries = 0;
  private readonly keep: KeepNamespace;
  private extra?: ExtraEntries;
  /** The first oplog segment header seen, for the appended segment. */
  private oplogSegment?: Buffer;
  /** The oplog's end-of-namespace header was reached with entries to append first. */
  private suspended = false;
  /** Entries appended to the oplog. */
  appendedOplogEntries = 0;

  constructor(keep: KeepNamespace, extra?: ExtraEntries) {
    super({ highWaterMark: 1 << 20 });
    this.keep = keep;
    this.extra = extra;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let off: number;
    try {
      off = this.parse(chunk, 0);
    } catch (err) {
      return cb(err as Error);
    }
    if (!this.suspended) return cb(null, this.drainOut());
    // the rest of the chunk waits while the appended entries flow (with backpressure)
    this.push(this.drainOut());
    this.append()
      .then(() => {
        const rest = this.parse(chunk, off);
        cb(null, this.drainOut());
        return rest;
      })
      .catch((err: Error) => cb(err));
  }

  override _read(size: number): void {
    this.emit('pull');
    super._read(size);
  }

  private drainOut(): Buffer {
    const out = this.out;
    this.out = [];
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  private async append(): Promise<void> {
    const extra = this.extra!;
    this.extra = undefined;
    this.suspended = false;
    const header = this.oplogSegment ?? Buffer.from(BSON.serialize({ db: '', collection: 'oplog', EOF: false, CRC: Long.fromInt(0) }));
    let started = false;
    for await (const doc of extra()) {
      if (!started) {
        if (!this.push(header)) await this.pulled();
        started = true;
      }
      this.crc.update(doc);
      this.appendedOplogEntries++;
      if (!this.push(doc)) await this.pulled();
    }
    if (started) this.push(TERMINATOR_BYTES);
    this.push(Buffer.from(BSON.serialize({ db: '', collection: 'oplog', EOF: true, CRC: this.crc.signed() })));
    this.kept = true;
    this.state = 'eof';
  }

  private pulled(): Promise<void> {
    return new Promise((resolve) => this.once('pull', resolve));
  }

  override _flush(cb: TransformCallback): void {
    if (this.extra) return cb(new Error('the mongodump archive has no oplog: the entries after it cannot be replayed'));
    if (this.state !== 'nsheader' || this.pendingLen !== 0 || this.copy !== 0 || this.skip !== 0) return cb(new Error(`the mongodump archive ended early (in ${this.state})`));
    cb();
  }

  /** Parses from `off`; returns where it stopped: the chunk's end, or the start of what
   * follows the oplog's end-of-namespace header when entries are to be appended. */
  private parse(chunk: Buffer, off: number): number {
    while (off < chunk.length && !this.suspended) {
      if (this.copy > 0 || this.skip > 0) {
        const n = Math.min(this.copy || this.skip, chunk.length - off);
        if (this.copy > 0) {
          this.out.push(chunk.subarray(off, off + n));
          this.copy -= n;
        } else this.skip -= n;
        off += n;
        continue;
      }
      const n = Math.min(this.need - this.pendingLen, chunk.length - off);
      this.pending.push(chunk.subarray(off, off + n));
      this.pendingLen += n;
      off += n;
      if (this.pendingLen < this.need) continue;
      const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingLen);
      this.pending = [];
      this.pendingLen = 0;
      this.whole(buf);
    }
    return off;
  }

  // A complete unit: the magic number, a length/terminator, or a whole document.
  private whole(buf: Buffer): void {
    this.need = 4;
    if (this.state === 'magic') {
      if (buf.readUInt32LE(0) !== MAGIC) throw new Error('not a mongodump archive (wrong magic number)');
      this.out.push(buf);
      this.state = 'header';
      return;
    }
    if (buf.length === 4) {
      const len = buf.readInt32LE(0);
      if (len === TERMINATOR) return this.terminator();
      if (len < 5 || (len > MAX_META && this.state !== 'body')) throw new Error(`not a mongodump archive: a document of ${len} bytes (in ${this.state})`);
      if (this.state === 'eof') throw new Error('not a mongodump archive: a document after an end-of-namespace header');
      if (this.state === 'body') {
        // Documents of a whole namespace: copied or skipped as they come, never held.
        if (this.kept) {
          this.out.push(buf);
          this.copy = len - 4;
        } else this.skip = len - 4;
        return;
      }
      // Keep the length and read the rest of the document.
      this.pending.push(buf);
      this.pendingLen = 4;
      this.need = len;
      return;
    }
    const doc = BSON.deserialize(buf);
    const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));
    switch (this.state) {
      case 'header':
        this.out.push(buf);
        this.state = 'prelude';
        return;
      case 'prelude': {
        const db = str(doc.db);
        const coll = str(doc.collection);
        if (this.isOplog(db, coll) || this.keep(db, coll)) this.out.push(buf);
        else this.dropped.namespaces.add(`${db}.${coll}`);
        return;
      }
      case 'nsheader': {
        const db = str(doc.db);
        const coll = str(doc.collection);
        const eof = doc.EOF === true;
        if (this.isOplog(db, coll)) {
          this.kept = false;
          if (eof && this.extra) {
            this.suspended = true;
          } else if (eof) {
            this.out.push(Buffer.from(BSON.serialize({ db, collection: coll, EOF: true, CRC: this.crc.signed() })));
            this.kept = true;
            this.state = 'eof';
          } else {
            this.oplogHeader = buf;
            this.oplogSegment ??= buf;
            this.state = 'oplog';
          }
          return;
        }
        this.kept = this.keep(db, coll);
        if (this.kept) this.out.push(buf);
        else this.dropped.namespaces.add(`${db}.${coll}`);
        this.state = eof ? 'eof' : 'body';
        return;
      }
      case 'oplog': {
        const [db, coll] = splitNs(str(doc.ns));
        if (!this.keep(db, coll)) {
          this.dropped.oplogEntries++;
          return;
        }
        if (this.oplogHeader) {
          this.out.push(this.oplogHeader);
          this.oplogHeader = undefined;
          this.kept = true;
        }
        this.crc.update(buf);
        this.keptOplogEntries++;
        this.out.push(buf);
        return;
      }
      default:
        throw new Error(`not a mongodump archive: a document in ${this.state}`);
    }
  }

  private terminator(): void {
    switch (this.state) {
      case 'prelude':
        this.out.push(TERMINATOR_BYTES);
        this.state = 'nsheader';
        return;
      case 'body':
      case 'oplog':
      case 'eof':
        if (this.kept) this.out.push(TERMINATOR_BYTES);
        this.oplogHeader = undefined;
        this.kept = false;
        this.state = 'nsheader';
        return;
      default:
        throw new Error(`not a mongodump archive: unexpected terminator (in ${this.state})`);
    }
  }

  private isOplog(db: string, coll: string): boolean {
    return db === '' && coll === 'oplog';
  }
}

function splitNs(ns: string): [string, string] {
  const dot = ns.indexOf('.');
  return dot < 0 ? [ns, ''] : [ns.slice(0, dot), ns.slice(dot + 1)];
}

// CRC-64 with the ECMA-182 polynomial, reflected, as Go's hash/crc64 (crc64.ECMA)
// computes it; 64-bit values as two 32-bit halves (no BigInt per byte).
const POLY_HI = 0xc96c5795;
const POLY_LO = 0xd7870f42;
const TABLE_HI = new Uint32Array(256);
const TABLE_LO = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let hi = 0;
  let lo = n;
  for (let k = 0; k < 8; k++) {
    const odd = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (odd) {
      hi = (hi ^ POLY_HI) >>> 0;
      lo = (lo ^ POLY_LO) >>> 0;
    }
  }
  TABLE_HI[n] = hi;
  TABLE_LO[n] = lo;
}

export class Crc64 {
  // The running value, complemented (Go's crc64.Update complements in and out).
  private hi = 0xffffffff;
  private lo = 0xffffffff;

  update(buf: Uint8Array): void {
    let hi = this.hi;
    let lo = this.lo;
    for (let k = 0; k < buf.length; k++) {
      const x = (lo ^ buf[k]!) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ TABLE_LO[x]!) >>> 0;
      hi = ((hi >>> 8) ^ TABLE_HI[x]!) >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
  }

  /** The checksum as the archive stores it: a signed 64-bit integer (BSON int64). */
  signed(): Long {
    return Long.fromBits(~this.lo | 0, ~this.hi | 0, false);
  }
}
