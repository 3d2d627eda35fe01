// manifest.json: the commit point of a backup, written last. A backup directory
// without a valid manifest does not exist for list, restore or retention.
// Format "snapagent.manifest/1" (docs/design.md "Manifest format").
import { z } from 'zod';
import type { Target } from '../targets/target.ts';
import { VERSION } from '../version.ts';
import { SIG_SUFFIX, signatureFile, type HostKey, type Keyring, type SignatureState } from './signing.ts';

export const MANIFEST_FORMAT = 'snapagent.manifest/1';
export const MANIFEST_FILE = 'manifest.json';

export const artifactSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9._-]+$/),
  format: z.string(),
  compression: z.enum(['zstd', 'none']),
  encryption: z.enum(['age', 'none']),
  size: z.int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  raw_size: z.int().min(0),
  /** age: the public recipients it was encrypted to (which private key opens it). */
  recipients: z.array(z.string()).optional(),
  /** "data" (default): what a restore reads; "index": the plugin's index for the next
   * incremental backup (GNU tar's snapshot file, a file list). */
  role: z.enum(['data', 'index']).optional(),
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
  /** "incremental": the data artifact holds only what changed; its restore also reads
   * every backup in depends_on. Absent: a full. */
  kind: z.enum(['full', 'incremental']).optional(),
  /** Incremental: ids of earlier backups of the same host and job whose data its restore
   * needs, oldest first: every transitive dependency is listed. */
  depends_on: z.array(z.string().regex(BACKUP_ID)).optional(),
  /** Raw bytes of the whole state the backup represents (what a full would hold); the
   * data artifact's raw_size is what it stored. Absent: the raw_size. */
  represented_size: z.int().min(0).optional(),
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
  /** Drills: seconds from the newest moment the drill could restore to until the drill
   * started (the RPO the job had then; with pitr: its oplog slices replayed). */
  rpo_seconds: z.number().optional(),
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

/** The stored artifact's file name: the plugin's stem and format, then what the agent
 * did to the bytes (always zstd, age when encrypting), e.g. "volume.tar.zst.age". */
export function artifactFileName(stem: string, format: string, encrypted: boolean): string {
  return `${stem}.${format}.zst${encrypted ? '.age' : ''}`;
}

/** What a finished backup run knows, for its manifest. */
export interface ManifestFacts {
  id: string;
  host: string;
  job: { name: string; plugin: string; tier: string; options: unknown };
  started: Date;
  finished: Date;
  /** The plugin's description of the source and its counts. */
  source: Record<string, unknown>;
  stats: Record<string, unknown>;
  artifact: {
    name: string;
    format: string;
    /** Stored (compressed, maybe encrypted) bytes and their sha256. */
    size: number;
    sha256: string;
    rawSize: number;
    /** age: the public recipients it was encrypted to; absent when not encrypted. */
    recipients?: readonly string[];
  };
  /** The plugin's index for the next incremental, as stored (same recipients). */
  index?: { name: string; format: string; size: number; sha256: string; rawSize: number };
  /** An incremental: the backups it depends on, oldest first (absent or empty: a full). */
  dependsOn?: readonly string[];
  /** Raw bytes of the state it represents, when the plugin knows them. */
  representedSize?: number;
  timings: NonNullable<Manifest['timings']>;
}

/** The manifest of one backup (pure: no clock, no I/O). */
export function buildManifest(f: ManifestFacts): Manifest {
  const a = f.artifact;
  return {
    format: MANIFEST_FORMAT,
    id: f.id,
    host: f.host,
    job: f.job.name,
    plugin: f.job.plugin,
    tier: f.job.tier,
    started_at: f.started.toISOString(),
    finished_at: f.finished.toISOString(),
    duration_seconds: (f.finished.getTime() - f.started.getTime()) / 1000,
    agent: { name: 'snapagent', version: VERSION },
    source: f.source,
    options: f.job.options as Record<string, unknown>,
    artifacts: [
      {
        name: a.name,
        format: a.format,
        compression: 'zstd',
        encryption: a.recipients ? 'age' : 'none',
        size: a.size,
        sha256: a.sha256,
        raw_size: a.rawSize,
        ...(a.recipients ? { recipients: [...a.recipients] } : {}),
      },
      ...(f.index
        ? [
            {
              name: f.index.name,
              format: f.index.format,
              compression: 'zstd' as const,
              encryption: a.recipients ? ('age' as const) : ('none' as const),
              size: f.index.size,
              sha256: f.index.sha256,
              raw_size: f.index.rawSize,
              ...(a.recipients ? { recipients: [...a.recipients] } : {}),
              role: 'index' as const,
            },
          ]
        : []),
    ],
    stats: f.stats,
    timings: f.timings,
    ...(f.index ? { kind: f.dependsOn?.length ? ('incremental' as const) : ('full' as const) } : {}),
    ...(f.dependsOn?.length ? { depends_on: [...f.dependsOn] } : {}),
    ...(f.representedSize !== undefined ? { represented_size: f.representedSize } : {}),
  };
}

/** The artifact a restore reads (the first "data" one). */
export function dataArtifact(m: Manifest): Artifact {
  return m.artifacts.find((a) => (a.role ?? 'data') === 'data') ?? m.artifacts[0]!;
}

/** The plugin's index stored with the backup, if any. */
export function indexArtifact(m: Manifest): Artifact | undefined {
  return m.artifacts.find((a) => a.role === 'index');
}

/** "full" or "incremental" (a backup made before incrementals is a full). */
export const kindOf = (m: Manifest): 'full' | 'incremental' => m.kind ?? 'full';

/** Raw bytes of the state a backup represents. */
export const representedSize = (m: Manifest): number => m.represented_size ?? dataArtifact(m).raw_size;

export interface Listed {
  target: Target;
  manifest: Manifest;
  dir: string;
  /** The latest verify/drill results recorded next to the manifest, if any. */
  checks: Partial<Record<CheckKind, CheckRecord>>;
  /** Whether the manifest carries a valid signature by a trusted key. */
  signature: SignatureState;
}

/** What a catalog reader trusts: the keys, and the plugins this agent has. */
export interface CatalogTrust {
  keys: Keyring;
  plugins: readonly string[];
  /** Now, for "in the future" (default: the clock). */
  now?: number;
  /** Who rewrites a missing or stale catalog index: this host (only its own jobs'), with
   * its key. Absent: readers leave indexes as they are. */
  writer?: { host: string; key: HostKey };
}

/** The reason's prefix of a manifest refused by `sanityProblems`. */
export const IMPLAUSIBLE = 'implausible manifest';

/** How far in the future a manifest's times may be (another host's clock). */
export const CLOCK_SKEW_MS = 10 * 60_000;
/** The most a zstd frame expands: one 4-byte RLE block per 128 KiB block. */
export const ZSTD_MAX_RATIO = 32_768;
/** How long before its start a backup's id (a schedule slot) may be: a missed slot of a
 * yearly schedule caught up, or a long lock wait. */
const SLOT_BEFORE_START_MS = 367 * 86_400_000;

/** Why a manifest cannot be what it says it is (empty: plausible). Checked for every
 * manifest, signed or not: these are never listed, restored, verified or pruned. */
export function sanityProblems(m: Manifest, plugins: readonly string[], now = Date.now()): string[] {
  const out: string[] = [];
  if (!plugins.includes(m.plugin)) out.push(`unknown plugin "${m.plugin}" (this agent has ${plugins.join(', ')})`);
  const started = Date.parse(m.started_at);
  const finished = Date.parse(m.finished_at);
  if (Number.isNaN(started) || Number.isNaN(finished)) out.push('started_at/finished_at are not ISO 8601 times');
  else {
    if (started > now + CLOCK_SKEW_MS) out.push(`started_at ${m.started_at} is in the future`);
    if (finished > now + CLOCK_SKEW_MS) out.push(`finished_at ${m.finished_at} is in the future`);
    if (finished < started) out.push('finished_at is before started_at');
  }
  const c = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:-(.*))?$/.exec(m.id);
  if (!c || c[7] !== m.tier) out.push(`id ${m.id} does not end in its tier "-${m.tier}"`);
  else if (!Number.isNaN(started) && !Number.isNaN(finished)) {
    const at = Date.UTC(+c[1]!, +c[2]! - 1, +c[3]!, +c[4]!, +c[5]!, +c[6]!);
    // the id is the start time (bumped by seconds past ids already used, before the data
    // moves) or the schedule slot the run belongs to, which precedes the start
    if (at > finished || at < started - SLOT_BEFORE_START_MS) out.push(`id ${m.id} does not match started_at ${m.started_at}`);
  }
  if (m.kind === 'incremental' && !m.depends_on?.length) out.push('an incremental backup without depends_on');
  if (m.depends_on?.includes(m.id)) out.push('depends_on lists the backup itself');
  if (new Set(m.depends_on ?? []).size !== (m.depends_on ?? []).length) out.push('depends_on lists an id twice');
  if (m.artifacts.filter((a) => (a.role ?? 'data') === 'data').length !== 1) out.push('not exactly one data artifact');
  if (m.artifacts.filter((a) => a.role === 'index').length > 1) out.push('more than one index artifact');
  for (const a of m.artifacts) {
    const max = a.compression === 'zstd' ? a.size * ZSTD_MAX_RATIO : a.size;
    if (a.raw_size > max) out.push(`artifact ${a.name}: raw_size ${a.raw_size} is more than ${a.compression === 'zstd' ? `${ZSTD_MAX_RATIO} times its size ${a.size} (the most zstd expands)` : `its size ${a.size} (not compressed)`}`);
  }
  return out;
}

/** Writes `<key>.sig`, then `key` (so a file is never there without its signature). */
export async function writeSigned(target: Target, key: string, bytes: Buffer, host: HostKey): Promise<void> {
  await target.writeFile(`${key}${SIG_SUFFIX}`, signatureFile(host, key, bytes));
  await target.writeFile(key, bytes);
}

/** Why `l` must not be acted on (restore, verify, drill, prune), or undefined. With
 * `insecureUnsigned`, backups without a signature (made before signing) are accepted. */
export function untrusted(l: Listed, insecureUnsigned = false): string | undefined {
  const s = l.signature;
  const name = `backup ${l.manifest.job}/${l.manifest.id} on target ${l.target.name}`;
  if (s.state === 'signed') return undefined;
  if (s.state === 'unsigned') return insecureUnsigned ? undefined : `${name}: its manifest is not signed`;
  return `${name}: bad manifest signature: ${s.reason}`;
}

/** The hint that goes with `untrusted`. */
export const UNTRUSTED_HINT =
  'a manifest not signed by this host or a key in trusted_keys may have been written by anyone with access to the target; ' +
  'add the signing host\'s key (`snapagent key` there) to trusted_keys, or, for a backup made before snapagent signed manifests, pass --insecure-unsigned';

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
