// Point-in-time recovery, what is stored: the server's log (MongoDB's oplog) shipped in
// slices between backups, and which of them a restore to a given time replays.
//
//   <target>/<host>/<job>/pitr/<slice-id>/
//       oplog.<format>.zst[.age] the entries, concatenated raw records (BSON documents)
//       slice.json.sig           its signature (host key), written just before it
//       slice.json               written last: the commit point
//
// slice.json (format snapagent.slice/1) says which entries the slice holds: every entry
// after `after` up to `last`, in order (`after` is the previous slice's `last`, or the
// backup's own position when the capture started from a backup), and that the log held
// nothing newer when it was read at `until`: the slice makes every moment up to `until`
// restorable. A slice whose log no longer held `after` is never written: that is a gap,
// closed by a new backup. Readers (restore, status, retention) use only slices whose
// signature a trusted key made, and chain them by position from a backup: see
// `coverage`. readCatalog never sees these files (they are five levels deep).
import { z } from 'zod';
import { artifactSchema, type Artifact, writeSigned } from '../catalog/manifest.ts';
import { checkSignature, SIG_SUFFIX, type HostKey, type Keyring, type SignatureState } from '../catalog/signing.ts';
import { log } from '../log.ts';
import type { LogPosition } from '../plugin/contract.ts';
import type { Target } from '../targets/target.ts';
import { comparePos, posTime, showPos } from './position.ts';

export const SLICE_FORMAT = 'snapagent.slice/1';
export const SLICE_FILE = 'slice.json';
export const PITR_DIR = 'pitr';
/** A slice id: the `until` time, to the millisecond: 20261203T101530.123Z. */
export const SLICE_ID = /^\d{8}T\d{6}\.\d{3}Z$/;

const position = z.strictObject({ t: z.int().min(0), i: z.int().min(0) });

export const sliceSchema = z.object({
  format: z.literal(SLICE_FORMAT),
  id: z.string().regex(SLICE_ID),
  host: z.string(),
  job: z.string(),
  plugin: z.string(),
  /** The entries follow this position (exclusive). */
  after: position,
  /** The newest entry held; equal to `after` when the slice holds none. */
  last: position,
  entries: z.int().min(0),
  /** The log was read at this time and held nothing newer than `last`. */
  until: z.string(),
  artifact: artifactSchema,
});
export type Slice = z.infer<typeof sliceSchema>;

export interface ListedSlice {
  target: Target;
  slice: Slice;
  dir: string;
  signature: SignatureState;
}

export { comparePos, posTime, showPos };

export function sliceId(until: Date): string {
  return until.toISOString().replace(/[-:]/g, '');
}

export function slicesPrefix(host: string, job: string): string {
  return `${host}/${job}/${PITR_DIR}`;
}

/** Writes one slice's data (already compressed/encrypted: `stored`) and then its signed
 * slice.json. A failure leaves at most a directory without slice.json: no slice. */
export async function writeSlice(target: Target, slice: Slice, stored: Buffer, key: HostKey): Promise<void> {
  const dir = `${slicesPrefix(slice.host, slice.job)}/${slice.id}`;
  await target.writeFile(`${dir}/${slice.artifact.name}`, stored);
  await writeSigned(target, `${dir}/${SLICE_FILE}`, Buffer.from(JSON.stringify(slice, null, 2) + '\n'), key);
}

export interface SliceCatalog {
  slices: ListedSlice[];
  /** Slice directories without slice.json (a killed write), and unreadable slices. */
  incomplete: string[];
  invalid: { key: string; reason: string }[];
}

/** Every slice of one job on one target, sorted by id (time); with `since` (a slice id),
 * only those read at or after it. */
export async function readSlices(target: Target, host: string, job: string, keys: Keyring, since?: string): Promise<SliceCatalog> {
  const prefix = slicesPrefix(host, job);
  const dirs = new Map<string, Set<string>>();
  for (const f of await target.list(`${prefix}/`)) {
    const rest = f.key.slice(prefix.length + 1).split('/');
    if (rest.length !== 2 || !SLICE_ID.test(rest[0]!) || (since !== undefined && rest[0]! < since)) continue;
    const dir = `${prefix}/${rest[0]}`;
    if (!dirs.has(dir)) dirs.set(dir, new Set());
    dirs.get(dir)!.add(rest[1]!);
  }
  const out: SliceCatalog = { slices: [], incomplete: [], invalid: [] };
  await Promise.all(
    [...dirs].map(async ([dir, names]) => {
      if (!names.has(SLICE_FILE)) return void out.incomplete.push(dir);
      const key = `${dir}/${SLICE_FILE}`;
      try {
        const bytes = await target.readFile(key);
        const res = sliceSchema.safeParse(JSON.parse(bytes.toString('utf8')));
        if (!res.success) throw new Error(`not a ${SLICE_FORMAT} file: ${res.error.issues[0]?.path.join('.')}: ${res.error.issues[0]?.message}`);
        const s = res.data;
        if (s.host !== host || s.job !== job || `${prefix}/${s.id}` !== dir) throw new Error('host/job/id do not match its location');
        if (comparePos(s.last, s.after) < 0) throw new Error('last is before after');
        if (Number.isNaN(Date.parse(s.until))) throw new Error('until is not an ISO 8601 time');
        const sig = names.has(`${SLICE_FILE}${SIG_SUFFIX}`) ? await target.readFile(`${key}${SIG_SUFFIX}`) : undefined;
        out.slices.push({ target, slice: s, dir, signature: checkSignature(keys, key, bytes, sig) });
      } catch (err) {
        out.invalid.push({ key, reason: (err as Error).message });
      }
    }),
  );
  for (const bad of out.invalid) log.warn({ target: target.name, key: bad.key }, `ignoring an invalid oplog slice: ${bad.reason}`);
  out.slices.sort((a, b) => a.slice.id.localeCompare(b.slice.id));
  return out;
}

/** A backup a replay can start from: its position in the log and when it finished. */
export interface ReplayBase {
  id: string;
  position: LogPosition;
}

export interface Coverage {
  /** The slices to replay, in order. */
  slices: ListedSlice[];
  /** Every moment up to this one is restorable (ms since the epoch). */
  until: number;
  /** The newest position the slices reach. */
  last: LogPosition;
  /** Where the chain stops short, when a slice that would continue it is missing. */
  gap?: { after: LogPosition; next?: LogPosition };
}

/**
 * The slices that continue the log from `base` without a gap, oldest first, up to the
 * first one whose `until` reaches `at` (ms; all of them when undefined). Only trusted
 * slices count. A slice continues the chain when its `after` is at or before the
 * chain's position and its `last` beyond it (slices may overlap: the replay skips
 * entries it already applied); one that only repeats what the chain holds adds its
 * `until`.
 */
export function coverage(base: ReplayBase, slices: ListedSlice[], at?: number): Coverage {
  let pos = base.position;
  let until = base.position.t * 1000;
  const used: ListedSlice[] = [];
  let gap: Coverage['gap'];
  for (const l of slices) {
    if (at !== undefined && until >= at) break;
    const s = l.slice;
    if (l.signature.state !== 'signed') continue;
    if (comparePos(s.last, pos) < 0) continue; // all before the chain's position
    if (comparePos(s.after, pos) > 0) {
      gap = { after: pos, next: s.after };
      break;
    }
    if (comparePos(s.last, pos) > 0) used.push(l);
    pos = s.last;
    until = Math.max(until, Date.parse(s.until));
  }
  return { slices: used, until, last: pos, ...(gap ? { gap } : {}) };
}

/**
 * The slices retention removes: those no restore to a time within `keep` of `now` reads.
 * Such a restore starts from the newest kept backup at or before `now - keep` (else the
 * oldest kept one), so every slice holding nothing after that backup's position goes;
 * with no backup to start from, slices older than `keep` go.
 */
export function expiredSlices(slices: ListedSlice[], bases: ReplayBase[], cutoff: number): ListedSlice[] {
  const sorted = [...bases].sort((a, b) => comparePos(a.position, b.position));
  if (sorted.length === 0) return slices.filter((l) => Date.parse(l.slice.until) < cutoff);
  const anchor = sorted.filter((b) => b.position.t * 1000 <= cutoff).at(-1) ?? sorted[0]!;
  return slices.filter((l) => comparePos(l.slice.last, anchor.position) <= 0 && Date.parse(l.slice.until) < cutoff);
}

/** The artifact's stored key of a slice. */
export function sliceDataKey(l: ListedSlice): string {
  return `${l.dir}/${l.slice.artifact.name}`;
}

export type { Artifact };
