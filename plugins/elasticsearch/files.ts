// The file list of an incremental backup: every file of the live repository when the
// snapshot was taken (path, size, sha256) and the backup whose data artifact holds it.
// Repository blobs are written once and never changed (only index-N, index.latest and
// new snapshots' files appear), so a file whose path, size and sha256 equal the base's
// is not shipped again: the list names the backup that did ship it. A restore assembles
// the repository from exactly these files, each piece read once, every file's sha256
// checked before Elasticsearch reads it. Pure functions: the helper containers that see
// the files are in backup.ts and restore.ts.
import { z } from 'zod';
import { BACKUP_ID, IntegrityError, SnapError } from '../../agent/plugin/index.ts';

export const INDEX_FORMAT = 'json';
const LIST_VERSION = 'snapagent-elasticsearch-files/1';

// What a repository file may be called: the names Elasticsearch writes (index-N,
// index.latest, snap-<uuid>.dat, indices/<uuid>/<shard>/__<uuid>: base64url, digits,
// dots, never a leading dot). Nothing a shell, tar's name lists or sha256sum's output
// would read otherwise, and never the restore's own work directory (.snapagent).
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$/;

export function isRepoPath(p: string): boolean {
  return p.length <= 4096 && p.split('/').every((s) => SEGMENT.test(s));
}

const SHA256 = /^[0-9a-f]{64}$/;

export interface FileEntry {
  path: string;
  size: number;
  sha256: string;
  /** The backup whose data artifact holds the file. */
  in: string;
}

const entrySchema = z.strictObject({
  path: z.string().refine(isRepoPath, 'a repository file name'),
  size: z.int().nonnegative(),
  sha256: z.string().regex(SHA256),
  in: z.string().regex(BACKUP_ID),
});

const listSchema = z.strictObject({
  version: z.literal(LIST_VERSION),
  /** The backup this list describes. */
  id: z.string().regex(BACKUP_ID),
  snapshot: z.string().min(1),
  files: z.array(entrySchema),
});

export type FileList = z.output<typeof listSchema>;

/** The list as stored: JSON, one file per line (readable, and diffs well). */
export function encodeList(list: Omit<FileList, 'version'>): Buffer {
  const files = list.files.map((f) => JSON.stringify({ path: f.path, size: f.size, sha256: f.sha256, in: f.in })).join(',\n');
  return Buffer.from(`{"version":${JSON.stringify(LIST_VERSION)},"id":${JSON.stringify(list.id)},"snapshot":${JSON.stringify(list.snapshot)},"files":[\n${files}\n]}\n`);
}

/** A stored list, read back: written by an earlier backup, so checked like any input
 * (schema, names, one entry per path). Throws with `where` in the message. */
export function parseList(bytes: Buffer, where: string): FileList {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new IntegrityError(`${where}: not JSON (${(err as Error).message})`);
  }
  const res = listSchema.safeParse(raw);
  if (!res.success) {
    const first = res.error.issues[0];
    throw new IntegrityError(`${where}: not a file list of this plugin (${first?.path.join('.') || 'top'}: ${first?.message})`);
  }
  const seen = new Set<string>();
  for (const f of res.data.files) {
    if (seen.has(f.path)) throw new IntegrityError(`${where}: ${f.path} is listed twice`);
    seen.add(f.path);
  }
  return res.data;
}

export interface Listed {
  path: string;
  size: number;
  sha256: string;
}

/** What the listing helper printed (scripts.ts LIST): NUL-terminated records
 * "s <size> <path>" (find), "<sha256>  <path>" (sha256sum -z) and "state <digest>"
 * before and after hashing. Every file must have exactly one size and one digest, and
 * the repository must not have changed while it was read. */
export function parseListing(out: string, where: string): { files: Listed[]; state: string } {
  const sizes = new Map<string, number>();
  const hashes = new Map<string, string>();
  const states: string[] = [];
  for (const rec of out.split('\0')) {
    if (rec === '' || rec === '\n') continue;
    let m: RegExpExecArray | null;
    if ((m = /^s (\d+) (.+)$/s.exec(rec))) {
      checkName(m[2]!, where);
      sizes.set(m[2]!, Number(m[1]));
    } else if ((m = /^([0-9a-f]{64}) {2}(.+)$/s.exec(rec))) {
      checkName(m[2]!, where);
      hashes.set(m[2]!, m[1]!);
    } else if ((m = /^state ([0-9a-f]{64})$/.exec(rec))) {
      states.push(m[1]!);
    } else {
      throw new SnapError(`${where}: unexpected output of the listing helper: ${JSON.stringify(rec.slice(0, 120))}`);
    }
  }
  if (states.length !== 2) throw new SnapError(`${where}: the listing helper did not report the repository's state`);
  if (states[0] !== states[1] || sizes.size !== hashes.size) {
    throw new SnapError(`${where}: files changed while they were read (another snapshot or a delete in the same repository?)`);
  }
  const files: Listed[] = [];
  for (const [path, size] of sizes) {
    const sha256 = hashes.get(path);
    if (sha256 === undefined) throw new SnapError(`${where}: files changed while they were read (${path} appeared or vanished)`);
    files.push({ path, size, sha256 });
  }
  if (files.length === 0) throw new SnapError(`${where}: the repository holds no files after the snapshot`);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, state: states[0]! };
}

function checkName(p: string, where: string): void {
  if (!isRepoPath(p)) {
    throw new SnapError(`${where}: the repository holds a file named ${JSON.stringify(p.slice(0, 200))}, not a name Elasticsearch writes`, {
      hint: 'remove files that are not Elasticsearch\'s from the repository directory (the agent ships exactly what the repository holds)',
    });
  }
}

/** What one backup stores and what it refers to. */
export interface Diff {
  files: FileEntry[];
  /** The files this backup's data artifact holds. */
  ship: FileEntry[];
  /** The earlier backups it needs, oldest first (empty: a full). */
  dependsOn: string[];
}

/** The base a backup may build on, as the core hands it: checked, or why it cannot be used. */
export interface Base {
  id: string;
  dependsOn: readonly string[];
  list: FileList;
}

/** Reads the base's stored list; a string says why the backup is a full instead. */
export function baseList(base: { id: string; dependsOn: readonly string[]; index: Buffer }): Base | string {
  let list: FileList;
  try {
    list = parseList(base.index, `the file list of backup ${base.id}`);
  } catch (err) {
    return (err as Error).message;
  }
  if (list.id !== base.id) return `the file list stored with backup ${base.id} describes backup ${list.id}`;
  const known = new Set([base.id, ...base.dependsOn]);
  const stray = list.files.find((f) => !known.has(f.in));
  if (stray) return `the file list of backup ${base.id} names ${stray.in} for ${stray.path}, not a backup it depends on`;
  return { id: base.id, dependsOn: base.dependsOn, list };
}

/** The files of this backup: those whose path, size and sha256 equal the base's entry
 * refer to the backup that holds them; the rest are shipped now. */
export function diff(listed: Listed[], self: string, base?: Base): Diff {
  const old = new Map((base?.list.files ?? []).map((f) => [f.path, f]));
  const files: FileEntry[] = listed.map((f) => {
    const b = old.get(f.path);
    return { ...f, in: b && b.size === f.size && b.sha256 === f.sha256 ? b.in : self };
  });
  const ship = files.filter((f) => f.in === self);
  const used = new Set(files.map((f) => f.in));
  // oldest first: the base's own chain order, then the base
  const dependsOn = base ? [...base.dependsOn, base.id].filter((id, i, all) => id !== self && used.has(id) && all.indexOf(id) === i) : [];
  return { files, ship, dependsOn };
}

/** The same files, all shipped by this backup (a full). */
export function asFull(d: Diff, self: string): Diff {
  const files = d.files.map((f) => ({ ...f, in: self }));
  return { files, ship: files, dependsOn: [] };
}

export function totalBytes(files: readonly { size: number }[]): number {
  return files.reduce((n, f) => n + f.size, 0);
}

/** A restore's plan: which files to take from which piece (chain order, then the chosen
 * backup's own data), and the check of the assembled repository. */
export interface Assembly {
  pieces: { id: string; paths: string[] }[];
  /** For the helper (scripts.ts ASSEMBLE/CHECK): "piece <n> <path>" and "check
   * <sha256> <path>" lines; names checked by isRepoPath, so one token each. */
  plan: Buffer;
}

/** Plans the assembly of `list` (the chosen backup `id`'s) from `chain` (its depends_on,
 * oldest first) and its own data: every file must come from a piece of the chain. */
export function assemble(list: FileList, id: string, chain: readonly string[]): Assembly {
  if (list.id !== id) throw new IntegrityError(`the file list stored with backup ${id} describes backup ${list.id}`);
  const order = [...chain, id];
  const byPiece = new Map<string, string[]>(order.map((p) => [p, []]));
  for (const f of list.files) {
    const paths = byPiece.get(f.in);
    if (!paths) throw new IntegrityError(`backup ${id}: its file list takes ${f.path} from backup ${f.in}, which is not in its depends_on (${chain.join(', ') || 'none'})`);
    paths.push(f.path);
  }
  const pieces = order.map((p) => ({ id: p, paths: byPiece.get(p)! }));
  const lines: string[] = [];
  pieces.forEach((p, n) => p.paths.forEach((path) => lines.push(`piece ${n} ${path}`)));
  for (const f of list.files) lines.push(`check ${f.sha256} ${f.path}`);
  return { pieces, plan: Buffer.from(`${lines.join('\n')}\n`) };
}
