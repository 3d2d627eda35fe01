// Tells, during a restore, which tables the client has finished loading, so that each
// can be verified while the next ones load. After a table's data section the dump
// stream gets one more statement, `SELECT 'snapagent-loaded:<n>' AS snapagent_marker;`;
// the client (run with --unbuffered) prints its result only once it has executed
// everything before it, i.e. once table n is complete.
//
// A data section ("-- Dumping data for table `t`") ends at the next section header
// that mariadb-dump/mysqldump write ("-- Table structure for table", "-- Current
// Database:", "-- Dumping events/routines", "-- Final view structure", ...), or at the
// end of the stream; the marker goes before that header, and only while the client's
// delimiter is ";" (trigger definitions switch it to ";;").
import { Transform, type TransformCallback } from 'node:stream';

const NL = 0x0a;
const DB_MARKER = '-- Current Database: `';
const TABLE_MARKER = '-- Dumping data for table `';
const RESULT = /^snapagent-loaded:(\d+)$/;

export interface LoadedTable {
  database: string;
  table: string;
}

export class LoadMarkers extends Transform {
  /** Marker number -> table. */
  readonly tables = new Map<number, LoadedTable>();
  private carry = Buffer.alloc(0);
  private db: string;
  private pending?: LoadedTable;
  private delimiter = ';';
  /** Whether the bytes passed on so far end with a newline. */
  private ended = true;

  constructor(database = '') {
    super({ highWaterMark: 1 << 20 });
    this.db = database;
  }

  /** The table a line of the client's output announces as loaded, if any. */
  loaded(outputLine: string): LoadedTable | undefined {
    const m = RESULT.exec(outputLine.trim());
    return m ? this.tables.get(Number(m[1])) : undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    // Only lines starting with "-" or "D" (DELIMITER) matter: find them without
    // splitting the rest, and pass the bytes on in as few pieces as possible.
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    let out = 0;
    let start = 0;
    let nl = buf.indexOf(NL);
    while (nl !== -1) {
      const first = buf[start];
      if (first === 0x2d || first === 0x44) {
        const text = buf.toString('utf8', start, Math.min(nl, start + 512));
        const marker = this.header(text);
        if (marker) {
          if (start > out) this.push(buf.subarray(out, start));
          this.push(marker);
          out = start;
        }
      }
      start = nl + 1;
      nl = buf.indexOf(NL, start);
    }
    if (start > out) this.push(buf.subarray(out, start));
    if (start > 0) this.ended = true;
    this.carry = Buffer.from(buf.subarray(start));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.carry.length) {
      const text = this.carry.toString('utf8', 0, Math.min(this.carry.length, 512));
      const marker = this.header(text);
      if (marker) this.push(marker);
      this.push(this.carry);
      this.ended = this.carry[this.carry.length - 1] === NL;
      this.carry = Buffer.alloc(0);
    }
    const last = this.close();
    // After an unterminated last line, the marker needs a line of its own (that line
    // may be a comment).
    if (last) this.push(this.ended ? last : Buffer.concat([Buffer.from('\n'), last]));
    cb();
  }

  /** The marker statement to insert before this line, if it ends a data section. */
  private header(line: string): Buffer | undefined {
    if (line.startsWith('DELIMITER ')) {
      this.delimiter = line.slice('DELIMITER '.length).trim();
      return undefined;
    }
    // Under another delimiter we are inside a trigger/routine/event body: its text is
    // the user's, whatever it looks like.
    if (!line.startsWith('-- ') || this.delimiter !== ';') return undefined;
    const section = /^-- (Current Database: `|Table structure for table `|Dumping data for table `|Dumping events for database|Dumping routines for database|Final view structure|Temporary (table|view) structure|Dumping (sequences|structure))/.test(line);
    if (!section) return undefined;
    const marker = this.close();
    if (line.startsWith(DB_MARKER)) this.db = unquote(line.slice(DB_MARKER.length, line.lastIndexOf('`')));
    else if (line.startsWith(TABLE_MARKER)) this.pending = { database: this.db, table: unquote(line.slice(TABLE_MARKER.length, line.lastIndexOf('`'))) };
    return marker;
  }

  private close(): Buffer | undefined {
    if (!this.pending || this.delimiter !== ';') return undefined;
    const n = this.tables.size + 1;
    this.tables.set(n, this.pending);
    this.pending = undefined;
    return Buffer.from(`SELECT 'snapagent-loaded:${n}' AS snapagent_marker;\n`);
  }
}

function unquote(name: string): string {
  return name.replaceAll('``', '`');
}
