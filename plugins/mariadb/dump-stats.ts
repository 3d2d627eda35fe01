// Counts what a mariadb-dump/mysqldump stream holds, from the stream itself, so the
// figures come from exactly the snapshot that was dumped: per database and table, the
// number of rows and a checksum of their dumped text. The checksum combines one hash
// per row with order-free sums and XORs, so it depends neither on row order nor on how
// the dump split its extended INSERTs; a later dump of the restored tables must give
// the same figures.
//
// Algorithms (the manifest names the one it used, as `checksum`):
//   row64-sum  (current) two 32-bit hashes per row, FNV-1a and a multiply-xorshift,
//              computed in the parsing loop itself, then per table their sums and XORs
//              (mod 2^32): 128 bits, 32 hex digits. Not cryptographic: it proves the
//              restore loaded what the dump held; the stored bytes are proven by sha256.
//   sha1-xor   (manifests written before it) the XOR of each row's sha1, 40 hex digits;
//              about 8x slower, as every row cost a hash object.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export const CHECKSUM_ALGORITHMS = ['row64-sum', 'sha1-xor'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

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
  /** row64-sum: sum1, sum2, xor1, xor2 (uint32 each); sha1-xor: 20 bytes. */
  acc: Uint32Array;
  xor: Buffer;
}

export class DumpCounter extends Transform {
  private carry: Buffer[] = [];
  private carryLen = 0;
  private db = '';
  /** The table whose INSERT statement continues on the next line. */
  private insert?: Acc;
  private readonly acc = new Map<string, Map<string, Acc>>();

  private readonly algorithm: ChecksumAlgorithm;

  /** `database`: the database of a dump without "Current Database" markers (one
   * database dumped without --databases). */
  constructor(algorithm: ChecksumAlgorithm = 'row64-sum', database = '') {
    super({ highWaterMark: 1 << 20 });
    this.algorithm = algorithm;
    this.db = database;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let start = 0;
    let nl = chunk.indexOf(NL);
    while (nl !== -1) {
      if (this.carryLen) {
        this.carry.push(chunk.subarray(start, nl));
        const whole = Buffer.concat(this.carry);
        this.line(whole, 0, whole.length);
        this.carry = [];
        this.carryLen = 0;
      } else this.line(chunk, start, nl); // no Buffer per line: millions of them per GiB
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
    if (this.carryLen) {
      const whole = Buffer.concat(this.carry);
      this.line(whole, 0, whole.length);
    }
    cb();
  }

  /** Figures per database and table, including tables dumped with no rows. */
  stats(): DumpStats {
    const out: DumpStats = {};
    for (const [db, tables] of this.acc) {
      out[db] = {};
      for (const [t, a] of tables) {
        const checksum = this.algorithm === 'sha1-xor' ? a.xor.toString('hex') : Array.from(a.acc, (n) => n.toString(16).padStart(8, '0')).join('');
        out[db][t] = { rows: a.rows, checksum };
      }
    }
    return out;
  }

  private table(name: string): Acc {
    let tables = this.acc.get(this.db);
    if (!tables) this.acc.set(this.db, (tables = new Map()));
    let a = tables.get(name);
    if (!a) tables.set(name, (a = { rows: 0, acc: new Uint32Array(4), xor: Buffer.alloc(20) }));
    return a;
  }

  /** One line: buf[s, e), without its newline. */
  private line(buf: Buffer, s: number, e: number): void {
    // Rows may share a line ("(..),(..);") or each have their own (MariaDB >= 10.11.x
    // prints "INSERT INTO `t` VALUES" then one row per line); a row never spans lines
    // because the dump escapes newlines inside strings.
    if (this.insert) {
      if (this.rows(this.insert, buf, s, e)) this.insert = undefined;
      return;
    }
    if (e - s >= INSERT.length && buf[s] === 0x49 && buf.compare(INSERT, 0, INSERT.length, s, s + INSERT.length) === 0) {
      const end = buf.indexOf('`', s + INSERT.length);
      const values = end < 0 || end >= e ? -1 : buf.indexOf(' VALUES', end);
      if (values < 0 || values >= e) return;
      const acc = this.table(unquote(buf.toString('utf8', s + INSERT.length, end)));
      if (!this.rows(acc, buf, values + 7, e)) this.insert = acc;
      return;
    }
    if (buf[s] !== 0x2d || s >= e) return; // "-": comments carry the markers
    const text = buf.toString('utf8', s, Math.min(e, s + 512));
    if (text.startsWith(DB_MARKER)) this.db = unquote(text.slice(DB_MARKER.length, text.lastIndexOf('`')));
    else if (text.startsWith(TABLE_MARKER)) this.table(unquote(text.slice(TABLE_MARKER.length, text.lastIndexOf('`'))));
  }

  // Counts the rows "(...)" at depth 0 outside '...' strings (mariadb-dump escapes
  // quotes and backslashes in strings with a backslash); true when the statement ended.
  private rows(a: Acc, line: Buffer, from: number, end: number): boolean {
    if (this.algorithm === 'sha1-xor') return this.rowsSha1(a, line, from, end);
    // The row64-sum hash (defined above fmix32) is computed in this same pass.
    let depth = 0;
    let inString = false;
    let h1 = 0;
    let h2 = 0;
    let rowStart = 0;
    const acc = a.acc;
    for (let i = from; i < end; i++) {
      let b = line[i]!;
      if (depth > 0) {
        h1 = Math.imul(h1 ^ b, 0x01000193);
        h2 = Math.imul(h2 ^ b, 0x5bd1e995);
        h2 ^= h2 >>> 15;
        if (inString) {
          if (b === BACKSLASH && i + 1 < end) {
            b = line[++i]!;
            h1 = Math.imul(h1 ^ b, 0x01000193);
            h2 = Math.imul(h2 ^ b, 0x5bd1e995);
            h2 ^= h2 >>> 15;
          } else if (b === QUOTE) inString = false;
          continue;
        }
        if (b === QUOTE) inString = true;
        else if (b === OPEN) depth++;
        else if (b === CLOSE && --depth === 0) {
          // h2 was seeded before the length was known: the length is mixed in at the end.
          const f1 = fmix32(h1);
          const f2 = fmix32(h2 ^ Math.imul(i + 1 - rowStart, 0x9e3779b1));
          acc[0] = acc[0]! + f1;
          acc[1] = acc[1]! + f2;
          acc[2] = acc[2]! ^ f1;
          acc[3] = acc[3]! ^ f2;
          a.rows++;
        }
        continue;
      }
      if (b === OPEN) {
        depth = 1;
        rowStart = i;
        h1 = Math.imul(0x811c9dc5 ^ b, 0x01000193);
        h2 = Math.imul(0x9747b28c ^ b, 0x5bd1e995);
        h2 ^= h2 >>> 15;
      } else if (b === QUOTE) inString = true; // not expected between rows; kept for safety
      else if (b === SEMICOLON) return true;
    }
    return false;
  }

  private rowsSha1(a: Acc, line: Buffer, from: number, end: number): boolean {
    let depth = 0;
    let inString = false;
    let rowStart = -1;
    for (let i = from; i < end; i++) {
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

// row64-sum, per row (the loop in rows() computes it inline): over the row's text from
// "(" to ")", h1 = FNV-1a 32 and h2 = multiply-xorshift (seed 0x9747b28c, constant
// 0x5bd1e995); h2 ^= length * 0x9e3779b1; both finalised with murmur3's fmix32; per
// table: [sum h1, sum h2, xor h1, xor h2] mod 2^32.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
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
