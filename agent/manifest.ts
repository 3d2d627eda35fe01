// manifest.json: the commit point of a backup, written last. A backup directory
// without a valid manifest does not exist for list, restore or retention.
// Format "snapagent.manifest/1" (README "Manifest format").
import { z } from 'zod';
import type { Target } from './targets/target.ts';
import { log } from './log.ts';

export const MANIFEST_FORMAT = 'snapagent.manifest/1';
export const MANIFEST_FILE = 'manifest.json';

const artifactSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9._-]+$/),
  format: z.string(),
  compression: z.enum(['zstd', 'none']),
  encryption: z.enum(['age', 'none']),
  size: z.int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  raw_size: z.int().min(0),
  /** age: the public recipients it was encrypted to (which private key opens it). */
  recipients: z.array(z.string()).optional(),
});

/** What every backup id looks like: 20261121T020000Z-critical. */
export const BACKUP_ID = /^\d{8}T\d{6}Z(-[A-Za-z0-9_.-]+)?$/;

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  id: z.string().regex(BACKUP_ID),
  host: z.string(),
  job: z.string(),
  plugin: z.string(),
  tier: z.string(),
  started_at: z.string(),
  finished_at: z.string(),
  duration_seconds: z.number(),
  agent: z.object({ name: z.literal('snapagent'), version: z.string() }),
  source: z.record(z.string(), z.unknown()),
  options: z.record(z.string(), z.unknown()),
  artifacts: z.array(artifactSchema).min(1),
  stats: z.record(z.string(), z.unknown()),
  /** Seconds spent preparing (plugin: e.g. a snapshot), streaming (until every target
   * held the artifact) and finishing (plugin: e.g. clearing the snapshot). */
  timings: z.object({ prepare_seconds: z.number(), stream_seconds: z.number(), finish_seconds: z.number() }).optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;

// Checks of a committed backup, written next to its manifest after the fact by
// `snapagent verify` (verify.json) and `snapagent verify --drill` (drill.json); each file
// holds the latest result of its kind. Retention keeps everything of a job whose newest
// backup has a failed record, and metrics report drills from drill.json.
export const CHECK_FORMAT = 'snapagent.check/1';
export const CHECK_FILES = { verify: 'verify.json', drill: 'drill.json' } as const;
export type CheckKind = keyof typeof CHECK_FILES;

export const checkRecordSchema = z.object({
  format: z.literal(CHECK_FORMAT),
  kind: z.enum(['verify', 'drill']),
  id: z.string(),
  at: z.string(),
  status: z.enum(['ok', 'failed']),
  duration_seconds: z.number(),
  /** Drills: seconds from the start of the restore to verified data (the measured RTO). */
  rto_seconds: z.number().optional(),
  errors: z.array(z.string()).default([]),
  details: z.record(z.string(), z.unknown()).default({}),
});
export type CheckRecord = z.infer<typeof checkRecordSchema>;
export type Artifact = z.infer<typeof artifactSchema>;

/** Backup ids sort by time: 20261121T020000Z-critical. */
export function backupId(at: Date, tier: string): string {
  const iso = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${iso}-${tier}`;
}

export function backupDir(host: string, job: string, id: string): string {
  return `${host}/${job}/${id}`;
}

export interface Listed {
  target: Target;
  manifest: Manifest;
  dir: string;
  /** The latest verify/drill results recorded next to the manifest, if any. */
  checks: Partial<Record<CheckKind, CheckRecord>>;
}

/** Which backup is newer: by start time, then id. Ids of scheduled runs are their slot
 * (a catch-up or `backup --tier` run may be newer than a later-sorting start-time id). */
export function newer(a: Listed, b: Listed): Listed {
  const ta = Date.parse(a.manifest.started_at);
  const tb = Date.parse(b.manifest.started_at);
  return tb > ta || (tb === ta && b.manifest.id > a.manifest.id) ? b : a;
}

/** True when the latest recorded check of this backup (verify or drill) failed. */
export function failedCheck(b: Listed): CheckRecord | undefined {
  return Object.values(b.checks).find((c) => c?.status === 'failed');
}

export interface Catalog {
  backups: Listed[];
  /** Backup directories (named like a backup id) without a manifest: interrupted or in
   * progress. Other directories were not written by snapagent and are left alone. */
  incomplete: string[];
  /** Manifests that could not be read or are not ours. */
  invalid: { key: string; reason: string }[];
}

/** Reads every committed backup below `prefix` (e.g. "<host>/" or "<host>/<job>/"). */
export async function readCatalog(target: Target, prefix: string): Promise<Catalog> {
  const files = await target.list(prefix);
  const dirs = new Map<string, Set<string>>();
  for (const f of files) {
    const parts = f.key.split('/');
    if (parts.length !== 4) continue; // <host>/<job>/<id>/<file>
    const dir = parts.slice(0, 3).join('/');
    if (!dirs.has(dir)) dirs.set(dir, new Set());
    dirs.get(dir)!.add(parts[3]!);
  }
  const cat: Catalog = { backups: [], incomplete: [], invalid: [] };
  await Promise.all(
    [...dirs].map(async ([dir, names]) => {
      if (!names.has(MANIFEST_FILE)) {
        if (BACKUP_ID.test(dir.split('/')[2]!)) cat.incomplete.push(dir);
        return;
      }
      const key = `${dir}/${MANIFEST_FILE}`;
      try {
        const raw = JSON.parse((await target.readFile(key)).toString('utf8')) as unknown;
        const res = manifestSchema.safeParse(raw);
        if (!res.success) throw new Error(`not a ${MANIFEST_FORMAT} manifest: ${res.error.issues[0]?.path.join('.')}: ${res.error.issues[0]?.message}`);
        const [host, job, id] = dir.split('/') as [string, string, string];
        const m = res.data;
        if (m.host !== host || m.job !== job || m.id !== id) throw new Error('manifest host/job/id do not match its location');
        const checks: Listed['checks'] = {};
        for (const [kind, file] of Object.entries(CHECK_FILES) as [CheckKind, string][]) {
          if (!names.has(file)) continue;
          const text = (await target.readFile(`${dir}/${file}`)).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          const rec = checkRecordSchema.safeParse(parsed);
          // An unreadable record counts as a failed check: retention stays on the safe side.
          checks[kind] = rec.success ? rec.data : { format: CHECK_FORMAT, kind, id, at: m.finished_at, status: 'failed', duration_seconds: 0, errors: [`unreadable ${file}`], details: {} };
        }
        cat.backups.push({ target, manifest: m, dir, checks });
      } catch (err) {
        cat.invalid.push({ key, reason: (err as Error).message });
      }
    }),
  );
  for (const bad of cat.invalid) log.warn({ target: target.name, key: bad.key }, `ignoring invalid manifest: ${bad.reason}`);
  cat.backups.sort((a, b) => a.manifest.job.localeCompare(b.manifest.job) || a.manifest.id.localeCompare(b.manifest.id));
  cat.incomplete.sort();
  return cat;
}
