// The index of a cassandra backup (BackupStream.index, format "json"): every file of its
// snapshot — keyspace, table, name in the table's snapshot dir, size, sha256 — and the
// backup whose data artifact holds it. SSTable components never change once written, so
// a file of the next snapshot with the same keyspace, table, name, size and sha256 as one
// of the base's index is the same file: it is not shipped again, its entry names the
// backup that holds it (as Medusa's differential mode keeps each file once). The
// snapshot's own manifest.json and schema.cql are always shipped: a few hundred bytes,
// which would otherwise tie every later backup to the one that first stored them (a
// restore reads each backup it depends on in full). A restore
// takes exactly the files of the chosen backup's index, each from the backup that holds
// it, and checks every one's sha256 before loading. Indexes are read back from storage:
// each is parsed with a schema and every name checked as the plugin checks names read
// from a node, before any of it is used.
import { z } from 'zod';
import { BACKUP_ID, type IncrementalBase, IntegrityError, type Logger } from '../../agent/plugin/index.ts';
import { checkFile, checkTables, FILE, KEYSPACE, TABLE } from './names.ts';

/** A file of a table's snapshot as the node listed it. */
export interface SnapshotFile {
  keyspace: string;
  table: string;
  /** Relative to the table's snapshot dir ("nb-1-big-Data.db", ".<index>/nb-1-big-Data.db"). */
  name: string;
  size: number;
  sha256: string;
}

/** A file of the index: where its bytes are stored. */
export interface IndexedFile extends SnapshotFile {
  /** The backup whose data artifact holds the file, as tables/<keyspace>/<table>/<name>. */
  backup: string;
}

const fileSchema = z.strictObject({
  keyspace: z.string().regex(KEYSPACE),
  table: z.string().regex(TABLE),
  name: z.string().regex(FILE),
  size: z.int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  backup: z.string().regex(BACKUP_ID),
});

const indexSchema = z.strictObject({
  version: z.literal(1),
  /** The backup this index belongs to (its snapshot tag). */
  backup: z.string().regex(BACKUP_ID),
  files: z.array(fileSchema),
});

export type FileIndex = z.output<typeof indexSchema>;

export const INDEX_FORMAT = 'json';

/** The files of a snapshot dir that describe it rather than hold data: always shipped. */
const OWN = new Set(['manifest.json', 'schema.cql']);

const keyOf = (f: SnapshotFile) => `${f.keyspace}.${f.table}/${f.name}`;
const sameFile = (f: SnapshotFile) => `${keyOf(f)} ${f.size} ${f.sha256}`;

/** An index read back from storage, or why it cannot be used. */
export function parseIndex(bytes: Buffer, where: string): FileIndex {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new IndexError(`${where} is not JSON: ${(err as Error).message}`);
  }
  const res = indexSchema.safeParse(raw);
  if (!res.success) {
    const i = res.error.issues[0]!;
    throw new IndexError(`${where} is not a cassandra file index: ${i.path.join('.') || '(top level)'}: ${i.message}`);
  }
  const index = res.data;
  // the zod patterns are the names.ts rules; checkName adds the shared one (no leading "-")
  checkTables(index.files, [], where, true);
  const seen = new Set<string>();
  for (const f of index.files) {
    checkFile(f.name, `table ${f.keyspace}.${f.table} in ${where}`, true);
    if (seen.has(keyOf(f))) throw new IndexError(`${where} lists ${keyOf(f)} twice`);
    seen.add(keyOf(f));
  }
  return index;
}

/** An index that cannot be used: damaged, or not written by snapagent. */
export class IndexError extends IntegrityError {
  constructor(message: string) {
    super(message, 'the index stored with this backup is damaged or was not written by snapagent: restore another backup');
  }
}

/** The base's index when it can be built on: parsed and checked, every file held by the
 * base or a backup it depends on. Otherwise undefined, with a warning: the backup is then
 * a full, which is always right. */
export function usableBase(base: IncrementalBase | undefined, log: Logger): { id: string; dependsOn: readonly string[]; index: FileIndex } | undefined {
  if (!base) return undefined;
  try {
    const index = parseIndex(base.index, `the index of backup ${base.id}`);
    if (index.backup !== base.id) throw new IndexError(`the index of backup ${base.id} belongs to backup ${index.backup}`);
    const held = new Set([base.id, ...base.dependsOn]);
    const stray = index.files.find((f) => !held.has(f.backup));
    if (stray) throw new IndexError(`the index of backup ${base.id} places ${keyOf(stray)} in backup ${stray.backup}, which it does not depend on`);
    return { id: base.id, dependsOn: base.dependsOn, index };
  } catch (err) {
    log.warn({ base: base.id, err: (err as Error).message }, `the index of backup ${base.id} cannot be built on: taking a full backup`);
    return undefined;
  }
}

export interface BackupPlan {
  index: FileIndex;
  /** The files this backup's data artifact carries. */
  ship: SnapshotFile[];
  /** The earlier backups holding the other files, oldest first. */
  dependsOn: string[];
  shipped: { files: number; bytes: number };
  reused: { files: number; bytes: number };
}

/** Which files of the snapshot `id` ships and which it takes from the base's chain: an
 * SSTable component equal (keyspace, table, name, size, sha256) to one of the base's
 * index stays where the base's index says it is; every other file is shipped. */
export function planBackup(id: string, files: SnapshotFile[], base?: { id: string; dependsOn: readonly string[]; index: FileIndex }): BackupPlan {
  const stored = new Map((base?.index.files ?? []).map((f) => [sameFile(f), f.backup]));
  const plan: BackupPlan = { index: { version: 1, backup: id, files: [] }, ship: [], dependsOn: [], shipped: { files: 0, bytes: 0 }, reused: { files: 0, bytes: 0 } };
  const used = new Set<string>();
  for (const f of [...files].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0))) {
    const held = OWN.has(f.name) ? undefined : stored.get(sameFile(f));
    const entry = { keyspace: f.keyspace, table: f.table, name: f.name, size: f.size, sha256: f.sha256, backup: held ?? id };
    plan.index.files.push(entry);
    const tally = held ? plan.reused : plan.shipped;
    tally.files += 1;
    tally.bytes += f.size;
    if (held) used.add(held);
    else plan.ship.push(f);
  }
  // oldest first: the base's own order of its chain, then the base
  plan.dependsOn = base ? [...base.dependsOn, base.id].filter((b) => used.has(b)) : [];
  return plan;
}

export const encodeIndex = (index: FileIndex): Buffer => Buffer.from(`${JSON.stringify(index)}\n`);

/** Raw bytes of the state a backup represents: every indexed file. */
export const representedBytes = (index: FileIndex): number => index.files.reduce((n, f) => n + f.size, 0);

/** A table a restore brings back, with what the manifest recorded of it. */
export interface WantedTable {
  keyspace: string;
  table: string;
  files?: number;
  bytes?: number;
}

/** The files a restore takes, grouped by the backup that holds them, in the order the
 * backups are read (oldest first, the chosen one last); backups holding none of them are
 * left out. Every file must be held by the chosen backup or one it depends on, and each
 * table's files must add up to what the (signed) manifest recorded of it. */
export function planRestore(index: FileIndex, id: string, chain: readonly string[], tables: WantedTable[]): { pieces: { backup: string; files: IndexedFile[] }[]; files: IndexedFile[] } {
  if (index.backup !== id) throw new IndexError(`the index of backup ${id} belongs to backup ${index.backup}`);
  const order = [...chain, id];
  const wanted = new Set(tables.map((t) => `${t.keyspace}.${t.table}`));
  const files = index.files.filter((f) => wanted.has(`${f.keyspace}.${f.table}`));
  for (const f of files) {
    if (!order.includes(f.backup)) throw new IndexError(`the index of backup ${id} places ${keyOf(f)} in backup ${f.backup}, which is not in its depends_on`);
  }
  for (const t of tables) {
    const own = files.filter((f) => f.keyspace === t.keyspace && f.table === t.table);
    const bytes = own.reduce((n, f) => n + f.size, 0);
    if ((t.files !== undefined && own.length !== t.files) || (t.bytes !== undefined && bytes !== t.bytes)) {
      throw new IndexError(`the index of backup ${id} lists ${own.length} files (${bytes} bytes) of table ${t.keyspace}.${t.table}; its manifest records ${t.files} (${t.bytes} bytes)`);
    }
  }
  const pieces = order.map((backup) => ({ backup, files: files.filter((f) => f.backup === backup) })).filter((p) => p.files.length > 0);
  return { pieces, files };
}

/** Where a file sits in a backup's tar, and in the restore's staging dir. */
export const memberOf = (f: SnapshotFile) => `tables/${f.keyspace}/${f.table}/${f.name}`;
