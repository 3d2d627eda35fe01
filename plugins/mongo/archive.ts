// Counts what a `mongodump --archive` stream holds, from the stream itself, so the
// figures come from exactly the data that was dumped (writes going on during the
// backup cannot skew them): per namespace the number of documents, and from the
// prelude each collection's type and index definitions.
//
// The archive format (mongo-tools, docs/archive-spec.md):
//   archive  = magic (0x8199e26d LE), header doc, *collection-metadata doc, terminator,
//              *(namespace-segment | namespace-eof)
//   segment  = namespace-header doc {db, collection, EOF:false}, +document, terminator
//   eof      = namespace-header doc {db, collection, EOF:true, CRC}, terminator
//   terminator = 0xffffffff; a document is a BSON document (int32 LE length first).
// The oplog taken with --oplog travels as the namespace {db: "", collection: "oplog"};
// its entries are read whole, for the window of time the dump covers (their `ts`).
import { Transform, type TransformCallback } from 'node:stream';
import { BSON } from 'mongodb';

const { EJSON } = BSON;

const MAGIC = 0x8199e26d;
const TERMINATOR = -1;
/** Headers and metadata are small; a bigger one means this is not an archive. */
const MAX_META = 64 * 1024 * 1024;

export interface IndexSpec {
  name: string;
  key: Record<string, unknown>;
  unique?: boolean;
  sparse?: boolean;
  expireAfterSeconds?: number;
  partialFilterExpression?: Record<string, unknown>;
}

export interface CollectionStats {
  type: string;
  documents: number;
  indexes: IndexSpec[];
}

/** database -> collection -> stats */
export type ArchiveStats = Record<string, Record<string, CollectionStats>>;

/** One oplog timestamp: `t` seconds since the epoch and `i` the ordinal within that
 * second, as mongorestore --oplogLimit takes them ("t:i"); `time` is `t` in ISO 8601. */
export interface OplogPoint {
  time: string;
  t: number;
  i: number;
}

/** The oplog a dump carries: from the newest entry before the dump started to the last
 * one written while it ran. With --oplogReplay, a restore is the data as of `last`. */
export interface OplogWindow {
  first: OplogPoint;
  last: OplogPoint;
}

export interface ArchiveSummary {
  server_version?: string;
  tool_version?: string;
  oplog_entries: number;
  oplog_window?: OplogWindow;
  databases: ArchiveStats;
}

type State = 'magic' | 'header' | 'prelude' | 'nsheader' | 'body' | 'oplog';

export function oplogPoint(ts: BSON.Timestamp): OplogPoint {
  const t = ts.getHighBitsUnsigned();
  return { time: new Date(t * 1000).toISOString(), t, i: ts.getLowBitsUnsigned() };
}

/** Whether timestamp a is before b. */
export function oplogBefore(a: { t: number; i: number }, b: { t: number; i: number }): boolean {
  return a.t < b.t || (a.t === b.t && a.i < b.i);
}

export class ArchiveCounter extends Transform {
  private state: State = 'magic';
  /** Bytes still to skip of the current body document. */
  private skip = 0;
  /** Partial length or metadata document being assembled. */
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private need = 4;
  private current?: { db: string; coll: string };
  private readonly summary: ArchiveSummary = { oplog_entries: 0, databases: {} };

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  /** The figures; throws when the stream was not a complete archive. */
  stats(): ArchiveSummary {
    if (this.state !== 'nsheader' || this.pendingLen !== 0 || this.skip !== 0) throw new Error(`the mongodump archive ended early (in ${this.state})`);
    return this.summary;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.parse(chunk);
    } catch (err) {
      return cb(err as Error);
    }
    cb(null, chunk);
  }

  private parse(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        off += n;
        continue;
      }
      // Fast path for body documents: read the length in place when it is whole.
      if (this.state === 'body' && this.pendingLen === 0 && off + 4 <= chunk.length) {
        const len = chunk.readInt32LE(off);
        off += 4;
        if (len === TERMINATOR) {
          this.state = 'nsheader';
          continue;
        }
        if (len < 5) throw new Error(`not a mongodump archive: a document of ${len} bytes`);
        this.count();
        this.skip = len - 4;
        continue;
      }
      // Assemble `need` bytes (a length, or a whole metadata document).
      const n = Math.min(this.need - this.pendingLen, chunk.length - off);
      this.pending.push(chunk.subarray(off, off + n));
      this.pendingLen += n;
      off += n;
      if (this.pendingLen < this.need) continue;
      const buf = Buffer.concat(this.pending, this.pendingLen);
      this.pending = [];
      this.pendingLen = 0;
      this.whole(buf);
    }
  }

  private count(): void {
    const cur = this.current!;
    this.collection(cur.db, cur.coll).documents++;
  }

  private collection(db: string, coll: string): CollectionStats {
    const dbs = (this.summary.databases[db] ??= {});
    return (dbs[coll] ??= { type: 'collection', documents: 0, indexes: [] });
  }

  // A complete unit: a 4-byte length/magic, or a whole document (length included).
  private whole(buf: Buffer): void {
    if (this.state === 'magic') {
      if (buf.readUInt32LE(0) !== MAGIC) throw new Error('not a mongodump archive (wrong magic number)');
      this.state = 'header';
      this.need = 4;
      return;
    }
    if (buf.length === 4) {
      const len = buf.readInt32LE(0);
      if (len === TERMINATOR) {
        if (this.state === 'prelude' || this.state === 'body' || this.state === 'oplog') this.state = 'nsheader';
        else throw new Error(`not a mongodump archive: unexpected terminator (in ${this.state})`);
        this.need = 4;
        return;
      }
      if (len < 5 || len > MAX_META) throw new Error(`not a mongodump archive: a document of ${len} bytes (in ${this.state})`);
      if (this.state === 'body') {
        this.count();
        this.skip = len - 4;
        return;
      }
      // Keep the length and read the rest of the document.
      this.pending.push(buf);
      this.pendingLen = 4;
      this.need = len;
      return;
    }
    this.need = 4;
    const doc = BSON.deserialize(buf);
    if (this.state === 'header') {
      this.summary.server_version = doc.server_version;
      this.summary.tool_version = doc.tool_version;
      this.state = 'prelude';
    } else if (this.state === 'prelude') {
      this.metadata(doc);
    } else if (this.state === 'nsheader') {
      this.current = { db: String(doc.db ?? ''), coll: String(doc.collection ?? '') };
      // A segment's documents follow; an EOF header is followed by the terminator only.
      this.state = this.current.db === '' && this.current.coll === 'oplog' ? 'oplog' : 'body';
    } else if (this.state === 'oplog') {
      this.summary.oplog_entries++;
      if (doc.ts instanceof BSON.Timestamp) this.widen(oplogPoint(doc.ts));
    }
  }

  private widen(p: OplogPoint): void {
    const w = this.summary.oplog_window;
    if (!w) this.summary.oplog_window = { first: p, last: p };
    else if (oplogBefore(p, w.first)) w.first = p;
    else if (oplogBefore(w.last, p)) w.last = p;
  }

  private metadata(doc: BSON.Document): void {
    const db = String(doc.db);
    const coll = String(doc.collection);
    if (db === '' && coll === 'oplog') return;
    const c = this.collection(db, coll);
    try {
      const meta = EJSON.parse(String(doc.metadata ?? '{}'), { relaxed: true }) as { type?: string; indexes?: Record<string, unknown>[] };
      c.type = meta.type ?? 'collection';
      c.indexes = (meta.indexes ?? []).map(indexSpec).sort((a, b) => a.name.localeCompare(b.name));
    } catch {
      // Unreadable metadata: the counts still hold; indexes are then not compared.
    }
  }
}

/** The part of an index definition that a restore must reproduce. */
export function indexSpec(ix: Record<string, unknown>): IndexSpec {
  const spec: IndexSpec = { name: String(ix.name), key: normalise(ix.key) as Record<string, unknown> };
  if (ix.unique === true) spec.unique = true;
  if (ix.sparse === true) spec.sparse = true;
  if (typeof ix.expireAfterSeconds === 'number') spec.expireAfterSeconds = ix.expireAfterSeconds;
  if (ix.partialFilterExpression) spec.partialFilterExpression = normalise(ix.partialFilterExpression) as Record<string, unknown>;
  return spec;
}

// Numbers of any BSON width compare equal (an index key of 1 may come back as Int32,
// Double or Long): plain JSON values only.
function normalise(v: unknown): unknown {
  return JSON.parse(EJSON.stringify(v as BSON.Document, { relaxed: true }), (_k, x) => (x && typeof x === 'object' && '$numberLong' in x ? Number(x.$numberLong) : x));
}

/** Differences between the manifest's collections and what a server now holds. */
export function compareCollections(expected: ArchiveStats, actual: ArchiveStats, countsExact: boolean): { diffs: string[]; warnings: string[] } {
  const diffs: string[] = [];
  const warnings: string[] = [];
  for (const [db, colls] of Object.entries(expected)) {
    for (const [name, e] of Object.entries(colls)) {
      const a = actual[db]?.[name];
      const ns = `${db}.${name}`;
      if (!a) {
        diffs.push(`${ns} is missing`);
        continue;
      }
      if (e.type === 'collection' && a.documents !== e.documents) {
        (countsExact ? diffs : warnings).push(`${ns}: ${a.documents} documents, the backup had ${e.documents}`);
      }
      const want = JSON.stringify(e.indexes);
      const got = JSON.stringify(a.indexes);
      if (e.indexes.length && want !== got) {
        const missing = e.indexes.filter((i) => !a.indexes.some((x) => JSON.stringify(x) === JSON.stringify(i))).map((i) => i.name);
        diffs.push(`${ns}: indexes differ from the backup${missing.length ? ` (missing or changed: ${missing.join(', ')})` : ''}`);
      }
    }
  }
  return { diffs, warnings };
}
