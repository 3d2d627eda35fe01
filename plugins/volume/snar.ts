// GNU tar's snapshot file (--listed-incremental, format 2), the volume plugin's index: a
// header line, the time the dump began, then one record per directory (its mtime, device,
// inode, path, and the names it held, each marked Y: dumped, N: unchanged, D: directory).
// A base's snapshot comes back from a target: it is parsed and checked here before the
// helper's tar reads it, and a fresh one is checked before it is stored.

/** At most this many bytes: about 20 bytes a file, so some ten million files. */
export const SNAR_MAX_BYTES = 256 * 1024 * 1024;

const HEADER = /^GNU tar-\d+(\.\d+)*-2$/;
const NUMBER = /^-?\d{1,20}$/;

export class SnarError extends Error {}

export interface SnarSummary {
  /** Directories recorded. */
  dirs: number;
  /** Non-directory entries this dump stored (Y). */
  shipped: number;
  /** Non-directory entries it found unchanged since the base (N). */
  reused: number;
}

/** Parses a snapshot file written by tar for an archive of "." and checks every field:
 * numbers are numbers, directory paths are "." or "./a/b" (no "..", no empty or "."
 * parts), entry names are single components marked Y, N or D. Throws SnarError. */
export function checkSnar(buf: Buffer): SnarSummary {
  if (buf.length > SNAR_MAX_BYTES) throw new SnarError(`${buf.length} bytes, more than ${SNAR_MAX_BYTES}`);
  const nl = buf.indexOf(0x0a);
  const header = nl < 0 ? '' : buf.toString('latin1', 0, nl);
  if (!HEADER.test(header)) throw new SnarError(`not a GNU tar snapshot file of format 2 (header ${JSON.stringify(header.slice(0, 40))})`);
  let pos = nl + 1;
  const field = (what: string): string => {
    const end = buf.indexOf(0, pos);
    if (end < 0) throw new SnarError(`truncated at byte ${pos} (${what})`);
    // names are bytes, not necessarily UTF-8: checked as latin1 (one char a byte)
    const s = buf.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const number = (what: string) => {
    const s = field(what);
    if (!NUMBER.test(s)) throw new SnarError(`${what} ${JSON.stringify(s.slice(0, 40))} at byte ${pos} is not a number`);
  };
  number('dump time');
  number('dump time (ns)');
  const seen = new Set<string>();
  const out: SnarSummary = { dirs: 0, shipped: 0, reused: 0 };
  while (pos < buf.length) {
    const nfs = field('nfs flag');
    if (nfs !== '0' && nfs !== '1') throw new SnarError(`nfs flag ${JSON.stringify(nfs.slice(0, 40))} at byte ${pos} is not 0 or 1`);
    for (const what of ['directory time', 'directory time (ns)', 'device', 'inode']) number(what);
    const dir = field('directory name');
    if (!plainDir(dir)) throw new SnarError(`directory name ${JSON.stringify(dir.slice(0, 200))} is not below "."`);
    if (seen.has(dir)) throw new SnarError(`directory ${JSON.stringify(dir.slice(0, 200))} is recorded twice`);
    seen.add(dir);
    out.dirs++;
    for (let e = field('entry'); e !== ''; e = field('entry')) {
      const kind = e[0]!;
      const name = e.slice(1);
      if (!'YND'.includes(kind)) throw new SnarError(`entry ${JSON.stringify(e.slice(0, 200))} of ${JSON.stringify(dir.slice(0, 200))} has an unknown mark`);
      if (!plainName(name)) throw new SnarError(`entry ${JSON.stringify(e.slice(0, 200))} of ${JSON.stringify(dir.slice(0, 200))} is not a plain name`);
      if (kind === 'Y') out.shipped++;
      else if (kind === 'N') out.reused++;
    }
    if (field('record end') !== '') throw new SnarError(`missing record terminator after ${JSON.stringify(dir.slice(0, 200))}`);
  }
  return out;
}

function plainName(n: string): boolean {
  return n !== '' && n !== '.' && n !== '..' && !n.includes('/');
}

function plainDir(d: string): boolean {
  return d === '.' || (d.startsWith('./') && d.slice(2).split('/').every(plainName));
}
