// Which committed backup an incremental builds on, and the plugin index it needs
// (docs/design.md "Incremental backups"). A base is taken only when the increment would
// be restorable from every target of the run on its own:
//   - the plugin takes increments and the job has a `full_every`;
//   - every target's newest trusted backup of the job is the same id (a target that missed
//     a run gets a full, not an increment on something it does not hold);
//   - that backup's latest verify/drill did not fail and its chain resolves on each target;
//   - its chain's full started less than full_every ago (less a little slack, so that a
//     daily run at the same hour a week later takes the full);
//   - its index is readable: the local cache (written when it was committed, named by the
//     stored sha256 the signed manifest holds), else read back from a target (an encrypted
//     index needs the age identity; without one the run takes a full).
// Anything else: a full, and the log says why. Only committed manifests are candidates, so
// a killed or failed run never becomes a base.
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file.ts';
import { chainOf } from '../catalog/chain.ts';
import { failedCheck, indexArtifact, newer, type Artifact, type Listed } from '../catalog/manifest.ts';
import { subtractDuration } from '../catalog/retention.ts';
import type { Config } from '../config/load.ts';
import { errorMessage } from '../errors.ts';
import { checkIdentity, identityPath, requireIdentity } from '../pipeline/age.ts';
import { StoredInput } from '../pipeline/stored-input.ts';
import type { IncrementalBase } from '../plugin/contract.ts';
import type { Target } from '../targets/target.ts';

export interface BaseChoice {
  base?: IncrementalBase;
  /** The base's chain (depends_on) and the base, oldest first, on the first target. */
  chain: Listed[];
  /** Why the run takes a full (undefined when it takes an increment). */
  fullBecause?: string;
}

/** The most raw bytes of an index read back from a target. */
const MAX_INDEX_BYTES = 1 << 30;

export async function chooseBase(
  config: Config,
  job: { name: string; fullEvery?: string },
  incremental: boolean,
  catalogs: Map<Target, Listed[]>,
  signal: AbortSignal,
  now = new Date(),
): Promise<BaseChoice> {
  if (!incremental) return { chain: [] };
  if (!job.fullEvery) return { chain: [], fullBecause: 'incremental backups are off for this job' };
  const per = [...catalogs].map(([t, backups]) => ({ t, backups, newest: backups.length ? backups.reduce(newer) : undefined }));
  const first = per[0]?.newest;
  if (!first) return { chain: [], fullBecause: 'no earlier backup of this job' };
  const differ = per.find((p) => p.newest?.manifest.id !== first.manifest.id);
  if (differ) return { chain: [], fullBecause: `the newest backup differs between targets (${first.target.name}: ${first.manifest.id}, ${differ.t.name}: ${differ.newest?.manifest.id ?? 'none'})` };
  const failed = per.map((p) => failedCheck(p.newest!)).find(Boolean);
  if (failed) return { chain: [], fullBecause: `the newest backup ${first.manifest.id} failed its ${failed.kind} check` };
  let chain: Listed[] = [];
  try {
    for (const p of per) {
      const c = chainOf(p.newest!, p.backups);
      if (p === per[0]) chain = c;
    }
  } catch (err) {
    return { chain: [], fullBecause: `the newest backup's chain is broken: ${errorMessage(err)}` };
  }
  const full = chain[0] ?? first;
  const due = dueAt(new Date(full.manifest.started_at), job.fullEvery);
  if (now >= due) return { chain: [], fullBecause: `the chain's full ${full.manifest.id} is older than full_every ${job.fullEvery}` };
  const idx = indexArtifact(first.manifest);
  if (!idx) return { chain: [], fullBecause: `the newest backup ${first.manifest.id} has no index (made by a full-only agent or plugin)` };
  let index: Buffer;
  try {
    index = (await cachedIndex(config, job.name, first.manifest.id, idx)) ?? (await readIndex(config, first, idx, signal));
  } catch (err) {
    return { chain: [], fullBecause: `the index of ${first.manifest.id} cannot be read: ${errorMessage(err)}` };
  }
  return { base: { id: first.manifest.id, dependsOn: first.manifest.depends_on ?? [], index, stats: first.manifest.stats }, chain: [...chain, first] };
}

// full_every less min(1 h, full_every / 24): a daily job's run at 02:00:01 a week after the
// full's 02:00:03 start takes the new full.
function dueAt(fullStarted: Date, fullEvery: string): Date {
  const span = fullStarted.getTime() - subtractDuration(fullStarted, fullEvery).getTime();
  return new Date(fullStarted.getTime() + span - Math.min(3_600_000, span / 24));
}

/** Reads a backup's index artifact whole: size and sha256 against the manifest, age -d,
 * zstd -d (bounded by its raw_size). */
export async function readIndex(config: Config, l: Listed, a: Artifact, signal: AbortSignal): Promise<Buffer> {
  const key = `${l.dir}/${a.name}`;
  let identity: string | undefined;
  if (a.encryption === 'age') {
    if (!identityPath(config)) throw new Error('it is encrypted and this host has no age identity (encryption.age_identity_file)');
    identity = await requireIdentity(config, `the index of backup ${l.manifest.job}/${l.manifest.id}`);
    await checkIdentity(l.target, key, identity, signal);
  }
  if (a.raw_size > MAX_INDEX_BYTES) throw new Error(`its raw size ${a.raw_size} is above ${MAX_INDEX_BYTES} bytes`);
  const input = new StoredInput(l.target, key, a, signal, identity);
  const chunks: Buffer[] = [];
  try {
    for await (const c of input.stream()) chunks.push(c as Buffer);
    await input.integrity;
  } finally {
    input.kill();
  }
  return Buffer.concat(chunks);
}

// The index cache: <state dir>/index/<job>/<id>.<stored sha256>, the raw index of the
// job's newest committed backup (the only one that can be a base), written at its commit.
const cacheDir = (config: Config, job: string) => path.join(config.stateDir, 'index', job);

async function cachedIndex(config: Config, job: string, id: string, a: Artifact): Promise<Buffer | undefined> {
  return readFile(path.join(cacheDir(config, job), `${id}.${a.sha256}`)).catch(() => undefined);
}

/** Keeps the raw index of a just committed backup as the job's only cached index. */
export async function cacheIndex(config: Config, job: string, id: string, storedSha256: string, raw: Buffer): Promise<void> {
  const dir = cacheDir(config, job);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const name = `${id}.${storedSha256}`;
  await writeFileAtomic(path.join(dir, name), raw);
  for (const f of await readdir(dir)) if (f !== name && !f.startsWith('.')) await unlink(path.join(dir, f)).catch(() => undefined);
}
