// Counts what a mariadb-dump/mysqldump stream holds, from the stream itself, so the
// figures come from exactly the snapshot that was dumped: per database and table, the
// number of rows and a checksum of their dumped text. The checksum is the XOR of each
// row's sha1, so it depends neither on row order nor on how the dump split its
// extended INSERTs; a later dump of the restored tables must give the same figures.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export interface TableStats {
  rows: number;
  checksum: string;
}

/** database -> table -> stats */
export type DumpStats = Record<string, Record<string, TableStats>>;

const NL = 0x0a;
const QUOTE = 0x27;
const BACKSLASH = 0x5c;
const OPEN = 0x28;
const CLOSE = 0x29;
const SEMICOLON = 0x3b;
const INSERT = Buffer.from('INSERT INTO `');
const DB_MARKER = '-- Current Database: `';
const TABLE_MARKER = '-- Dumping data for table `';
const MAX_LINE = 1 << 30;

interface Acc {
  rows: number;
  xor: Buffer;
}

export class DumpCounter extends Transform {
  private carry: Buffer[] = [];
  private carryLen = 0;
  private db = '';
  /** The table whose INSERT statement continues on the next line. */
  private insert?: Acc;
  private readonly acc = new Map<string, Map<string, Acc>>();

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let start = 0;
    let nl = chunk.indexOf(NL);
    while (nl !== -1) {
      if (this.carryLen) {
        this.carry.push(chunk.subarray(start, nl));
        this.line(Buffer.concat(this.carry));
        this.carry = [];
        this.carryLen = 0;
      } else this.line(chunk.subarray(start, nl));
      start = nl + 1;
      nl = chunk.indexOf(NL, start);
    }
    if (start < chunk.length) {
      this.carry.push(chunk.subarray(start));
      this.carryLen += chunk.length - start;
      if (this.carryLen > MAX_LINE) return cb(new Error('dump line longer than 1 GiB: not a mariadb-dump stream'));
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.carryLen) this.line(Buffer.concat(this.carry));
    cb();
  }

  /** Figures per database and table, including tables dumped with no rows. */
  stats(): DumpStats {
    const out: DumpStats = {};
    for (const [db, tables] of this.acc) {
      out[db] = {};
      for (const [t, a] of tables) out[db][t] = { rows: a.rows, checksum: a.xor.toString('hex') };
    }
    return out;
  }

  private table(name: string): Acc {
    let tables = this.acc.get(this.db);
    if (!tables) this.acc.set(this.db, (tables = new Map()));
    let a = tables.get(name);
    if (!a) tables.set(name, (a = { rows: 0, xor: Buffer.alloc(20) }));
    return a;
  }

  private line(line: Buffer): void {
    // Rows may share a line ("(..),(..);") or each have their own (MariaDB >= 10.11.x
    // prints "INSERT INTO `t` VALUES" then one row per line); a row never spans lines
    // because the dump escapes newlines inside strings.
    if (this.insert) {
      if (this.rows(this.insert, line, 0)) this.insert = undefined;
      return;
    }
    if (line.length >= INSERT.length && line[0] === 0x49 && line.subarray(0, INSERT.length).equals(INSERT)) {
      const end = line.indexOf('`', INSERT.length);
      const values = line.indexOf(' VALUES', end);
      if (end < 0 || values < 0) return;
      const acc = this.table(unquote(line.toString('utf8', INSERT.length, end)));
      if (!this.rows(acc, line, values + 7)) this.insert = acc;
      return;
    }
    if (line[0] !== 0x2d) return; // "-": comments carry the markers
    const text = line.toString('utf8', 0, Math.min(line.length, 512));
    if (text.startsWith(DB_MARKER)) this.db = unquote(text.slice(DB_MARKER.length, text.lastIndexOf('`')));
    else if (text.startsWith(TABLE_MARKER)) this.table(unquote(text.slice(TABLE_MARKER.length, text.lastIndexOf('`'))));
  }

  // Counts the rows "(...)" at depth 0 outside '...' strings (mariadb-dump escapes
  // quotes and backslashes in strings with a backslash); true when the statement ended.
  private rows(a: Acc, line: Buffer, from: number): boolean {
    let depth = 0;
    let inString = false;
    let rowStart = -1;
    for (let i = from; i < line.length; i++) {
      const b = line[i]!;
      if (inString) {
        if (b === BACKSLASH) i++;
        else if (b === QUOTE) inString = false;
        continue;
      }
      if (b === QUOTE) inString = true;
      else if (b === OPEN) {
        if (depth++ === 0) rowStart = i;
      } else if (b === CLOSE && --depth === 0) {
        const digest = createHash('sha1').update(line.subarray(rowStart, i + 1)).digest();
        for (let k = 0; k < 20; k++) a.xor[k]! ^= digest[k]!;
        a.rows++;
      } else if (b === SEMICOLON && depth === 0) return true;
    }
    return false;
  }
}

function unquote(name: string): string {
  return name.replaceAll('``', '`');
}

/** Differences between two dumps' figures, as readable lines (empty: equal). */
export function compareStats(expected: DumpStats, actual: DumpStats, only?: string[]): string[] {
  const diffs: string[] = [];
  for (const db of Object.keys(expected)) {
    if (only && !only.includes(db)) continue;
    const exp = expected[db]!;
    const act = actual[db];
    if (!act) {
      diffs.push(`database ${db} is missing`);
      continue;
    }
    for (const [t, e] of Object.entries(exp)) {
      const a = act[t];
      if (!a) diffs.push(`${db}.${t} is missing`);
      else if (a.rows !== e.rows) diffs.push(`${db}.${t}: ${a.rows} rows, the backup had ${e.rows}`);
      else if (a.checksum !== e.checksum) diffs.push(`${db}.${t}: content differs from the backup (checksum)`);
    }
  }
  return diffs;
}
