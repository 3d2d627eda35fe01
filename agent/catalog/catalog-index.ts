// The catalog index: `<host>/<job>/catalog.json` (+ `.sig`), format "snapagent.catalog/1".
// It holds, for every backup directory of the job with a manifest, the exact bytes of its
// catalog files (manifest.json, verify.json, drill.json and their signatures) and what the
// listing said of each (size, modified stamp), so that a reader gets the whole job in one
// read and checks every manifest's own signature exactly as if it had read the file. It
// is a cache, never an authority: a reader takes an entry only while the target's listing
// still shows the same files with the same sizes and stamps, and only for files whose own
// signature holds (docs/design.md "Catalog index"). This module is the format (no I/O).
import { z } from 'zod';
import { CHECK_FILES, MANIFEST_FILE } from './manifest.ts';
import { SIG_SUFFIX } from './signing.ts';
import type { StoredFile } from '../targets/target.ts';

export const INDEX_FORMAT = 'snapagent.catalog/1';
export const INDEX_FILE = 'catalog.json';
/** Files bigger than this are not embedded (listed with their size only, read from the
 * target): a manifest is a few KiB; a huge one is someone else's file. */
export const MAX_EMBEDDED = 256 * 1024;

/** The files of a backup directory a catalog reader reads. */
export const CATALOG_FILES: readonly string[] = [MANIFEST_FILE, ...Object.values(CHECK_FILES)].flatMap((f) => [f, `${f}${SIG_SUFFIX}`]);

/** One catalog file as listed, with its bytes when they are known. */
export interface IndexedFile {
  size: number;
  modified?: string;
  bytes?: Buffer;
}

/** One backup directory (by its name, the backup id) and its catalog files. */
export interface IndexEntry {
  id: string;
  files: Map<string, IndexedFile>;
}

/** For people and scripts reading catalog.json (`jq`); the agent reads the embedded files. */
export interface EntrySummary {
  kind: string;
  tier: string;
  started_at: string;
  size: number;
  sha256: string;
  depends_on?: string[];
  verify?: string;
  drill?: string;
  signature: string;
}

const fileSchema = z.strictObject({
  size: z.int().min(0),
  modified: z.string().optional(),
  text: z.string().optional(),
  base64: z.string().optional(),
});

const indexSchema = z.object({
  format: z.literal(INDEX_FORMAT),
  host: z.string(),
  job: z.string(),
  written_at: z.string(),
  backups: z.array(
    z.object({
      id: z.string().regex(/^[^/\0]+$/),
      summary: z.record(z.string(), z.unknown()).optional(),
      files: z.record(z.string(), fileSchema),
    }),
  ),
});

/** The catalog files of one directory as a listing shows them. */
export function listedFiles(names: ReadonlyMap<string, StoredFile>): Map<string, IndexedFile> {
  const out = new Map<string, IndexedFile>();
  for (const name of CATALOG_FILES) {
    const f = names.get(name);
    if (f) out.set(name, { size: f.size, ...(f.modified !== undefined ? { modified: f.modified } : {}) });
  }
  return out;
}

/** Whether an entry covers exactly the files listed, with the same sizes and stamps. */
export function sameListing(entry: IndexEntry, listed: ReadonlyMap<string, IndexedFile>): boolean {
  if (entry.files.size !== listed.size) return false;
  for (const [name, l] of listed) {
    const e = entry.files.get(name);
    if (!e || e.size !== l.size || e.modified !== l.modified) return false;
  }
  return true;
}

/** Whether two entries say the same (listing and bytes). */
export function sameEntry(a: IndexEntry, b: IndexEntry): boolean {
  if (a.id !== b.id || !sameListing(a, b.files)) return false;
  for (const [name, f] of a.files) {
    const g = b.files.get(name)!;
    if (f.size > MAX_EMBEDDED) continue; // never embedded
    if ((f.bytes === undefined) !== (g.bytes === undefined) || (f.bytes && !f.bytes.equals(g.bytes!))) return false;
  }
  return true;
}

/** The bytes of catalog.json for `entries` (sorted by id). */
export function encodeIndex(host: string, job: string, entries: readonly IndexEntry[], summaries: ReadonlyMap<string, EntrySummary>, now = new Date()): Buffer {
  const backups = [...entries]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((e) => ({
      id: e.id,
      ...(summaries.has(e.id) ? { summary: summaries.get(e.id) } : {}),
      files: Object.fromEntries(
        [...e.files].map(([name, f]) => {
          const out: z.infer<typeof fileSchema> = { size: f.size, ...(f.modified !== undefined ? { modified: f.modified } : {}) };
          if (f.bytes && f.bytes.length === f.size && f.size <= MAX_EMBEDDED) {
            // as text when it round-trips (readable with jq), else base64
            const text = f.bytes.toString('utf8');
            if (Buffer.from(text, 'utf8').equals(f.bytes)) out.text = text;
            else out.base64 = f.bytes.toString('base64');
          }
          return [name, out];
        }),
      ),
    }));
  return Buffer.from(JSON.stringify({ format: INDEX_FORMAT, host, job, written_at: now.toISOString(), backups }) + '\n');
}

/** The entries of catalog.json, by id; throws saying why it is not one for `host`/`job`. */
export function decodeIndex(bytes: Buffer, host: string, job: string): Map<string, IndexEntry> {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('not JSON');
  }
  const res = indexSchema.safeParse(raw);
  if (!res.success) throw new Error(`not a ${INDEX_FORMAT} index: ${res.error.issues[0]?.path.join('.')}: ${res.error.issues[0]?.message}`);
  const doc = res.data;
  if (doc.host !== host || doc.job !== job) throw new Error(`an index of ${doc.host}/${doc.job}, not ${host}/${job}`);
  const out = new Map<string, IndexEntry>();
  for (const b of doc.backups) {
    if (out.has(b.id)) throw new Error(`backup ${b.id} is listed twice`);
    const files = new Map<string, IndexedFile>();
    for (const [name, f] of Object.entries(b.files)) {
      if (!CATALOG_FILES.includes(name)) throw new Error(`backup ${b.id}: ${name} is not a catalog file`);
      const data = f.text !== undefined ? Buffer.from(f.text, 'utf8') : f.base64 !== undefined ? Buffer.from(f.base64, 'base64') : undefined;
      // embedded bytes of another length than recorded are not these bytes: read the file
      files.set(name, { size: f.size, ...(f.modified !== undefined ? { modified: f.modified } : {}), ...(data && data.length === f.size ? { bytes: data } : {}) });
    }
    out.set(b.id, { id: b.id, files });
  }
  return out;
}
