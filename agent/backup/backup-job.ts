// One backup of one job, end to end, as named steps over one run object (backup-run.ts):
//   prepare ─► produce ─► compress & upload (.partial) ─► index ─► build manifest ─► publish ─► after-commit
// The artifact (and the plugin's index, if any) is published, then manifest.json is
// written LAST: it is the commit point.
// Anything that fails before the manifest is written leaves no committed backup: the
// partial files are removed now, and a dir left by a killed run is removed by the next.
import { createHash } from 'node:crypto';
import { constants as zlibConstants, zstdCompressSync } from 'node:zlib';
import { artifactFileName, buildManifest, MANIFEST_FILE, writeSigned, type Manifest } from '../catalog/manifest.ts';
import type { Context } from '../context.ts';
import { errorMessage, SnapError } from '../errors.ts';
import { log, redactedJson } from '../log.ts';
import type { Job } from '../plugin/contract.ts';
import type { Target } from '../targets/target.ts';
import { faultPoint } from '../testing.ts';
import { endRun, failRun, startRun, type BackupResult, type PreparedRun, type ProducingRun } from './backup-run.ts';
import { prepare, type PrepareOptions } from './prepare.ts';
import { compressAndUpload, type Written } from './upload.ts';
import { cacheIndex } from './base.ts';
import { refreshIndex } from '../catalog/catalog.ts';
import { catalogTrust } from '../catalog/trust.ts';
import { ageEncryptBytes } from '../pipeline/age.ts';

export type { BackupResult, TargetOutcome } from './backup-run.ts';

export type BackupJobOptions = PrepareOptions;

/** Backs up `job` to those of `targets` it names. Never throws for the job's failure:
 * it is in the result. */
export async function backupJob(ctx: Context, job: Job, targets: Target[], o: BackupJobOptions = {}): Promise<BackupResult> {
  const run = startRun(ctx, job);
  let opened: ProducingRun | undefined;
  try {
    const ready = await prepare(run, targets, o);
    const producing = (opened = await produce(ready));
    const written = await compressAndUpload(producing);
    const [index, manifest] = await uncommittedOnFailure(producing, async () => {
      const ix = await indexOf(producing);
      return [ix, await manifestFor(producing, written, ix)] as const;
    });
    await publish(producing, written, manifest, index);
    await afterCommit(producing, index);
    settle(run.result);
  } catch (err) {
    failRun(run, err);
  }
  if (opened) degraded(opened);
  return endRun(run);
}

// Step 2: the plugin starts producing (e.g. a snapshot, then a dump). From here until the
// bytes are stored, the caller's cancellation aborts the run's own signal.
async function produce(run: PreparedRun): Promise<ProducingRun> {
  const { signal } = run.ctx;
  const abort = new AbortController();
  const onAbort = () => abort.abort(signal.reason);
  signal.throwIfAborted();
  signal.addEventListener('abort', onAbort, { once: true });
  const unfollow = () => signal.removeEventListener('abort', onAbort);
  const askedAt = performance.now();
  const stream = await run.plugin.backup({ ...run.pluginCtx, signal: abort.signal, backupId: run.id, base: run.base }, run.job).catch((err: unknown) => {
    unfollow();
    throw err;
  });
  const openedAt = performance.now();
  stream.done.catch(() => undefined); // handled by the upload; must not count as unhandled meanwhile
  const artifactName = artifactFileName(stream.artifact.name, stream.artifact.format, run.recipients !== undefined);
  return Object.assign(run, { stream, artifactName, key: `${run.dir}/${artifactName}`, abort, unfollow, askedAt, openedAt });
}

// Between the upload and the commit, a failure removes what the targets hold of the run.
async function uncommittedOnFailure<T>(run: ProducingRun, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    for (const t of run.targets) await t.removeDir(run.dir).catch(() => undefined);
    throw err;
  }
}

// Step 3b (incremental plugins): the plugin's index of this backup and what it depends on,
// stored like the data (zstd, age when encrypting) as a small file beside it. The plugin's
// dependsOn must lie within the base's chain; the manifest gets its closure, oldest first.
async function indexOf(run: ProducingRun): Promise<StoredIndex | undefined> {
  if (!run.stream.index) return undefined;
  const ix = await run.stream.index;
  const chain = run.baseChain.map((b) => b.manifest.id);
  const stray = ix.dependsOn.filter((id) => !chain.includes(id));
  if (stray.length) throw new SnapError(`plugin ${run.job.plugin}: the backup would depend on ${stray.join(', ')}, which is not in the chain of its base (${chain.join(', ') || 'no base'})`);
  const wanted = new Set(ix.dependsOn);
  for (const b of run.baseChain) if (wanted.has(b.manifest.id)) for (const d of b.manifest.depends_on ?? []) wanted.add(d);
  const dependsOn = chain.filter((id) => wanted.has(id));
  if (!/^[a-z0-9]+$/.test(ix.format)) throw new SnapError(`plugin ${run.job.plugin}: index format "${ix.format}" is not a plain name`);
  let stored: Buffer = zstdCompressSync(ix.bytes, { params: { [zlibConstants.ZSTD_c_checksumFlag]: 1 } });
  if (run.recipients) stored = await ageEncryptBytes(run.recipients.files, stored, run.abort.signal);
  return { name: artifactFileName('index', ix.format, run.recipients !== undefined), format: ix.format, raw: ix.bytes, stored, sha256: createHash('sha256').update(stored).digest('hex'), dependsOn, representedBytes: ix.representedBytes };
}

interface StoredIndex {
  name: string;
  format: string;
  raw: Buffer;
  stored: Buffer;
  sha256: string;
  dependsOn: string[];
  representedBytes?: number;
}


// Step 4: the manifest of what was stored, once the producer succeeded; its figures go
// into the result too.
async function manifestFor(run: ProducingRun, out: Written, index: StoredIndex | undefined): Promise<Manifest> {
  const stats = await run.stream.done;
  // Where the time went: the plugin's preparation (e.g. a snapshot), the data flow until
  // every target held the artifact, and the plugin's finish (e.g. clearing the snapshot).
  const timings = { prepare_seconds: secs(run.openedAt - run.askedAt), stream_seconds: secs(out.streamedAt - run.openedAt), finish_seconds: secs(performance.now() - out.streamedAt) };
  const rawBytes = out.rawBytes ?? Number(stats.stream_bytes ?? 0);
  // size: every stored byte of the backup (its data, and its index if any), as `list` and
  // the metrics count it; sha256: the data artifact's
  Object.assign(run.result, { size: out.bytes + (index?.stored.length ?? 0), raw_size: rawBytes, sha256: out.sha256, timings });
  if (index) Object.assign(run.result, { kind: index.dependsOn.length ? 'incremental' : 'full', ...(index.dependsOn.length ? { depends_on: index.dependsOn } : {}) });
  return buildManifest({
    id: run.id,
    host: run.ctx.config.host,
    job: run.job,
    started: run.started,
    finished: new Date(),
    source: run.stream.source,
    stats,
    artifact: { name: run.artifactName, format: run.stream.artifact.format, size: out.bytes, sha256: out.sha256, rawSize: rawBytes, recipients: run.recipients?.list },
    index: index && { name: index.name, format: index.format, size: index.stored.length, sha256: index.sha256, rawSize: index.raw.length },
    dependsOn: index?.dependsOn,
    representedSize: index?.representedBytes,
    timings,
  });
}

const secs = (ms: number) => Number((ms / 1000).toFixed(3));

// Step 5, per target: the artifact takes its final name, then the signed manifest commits
// the backup. A target that failed the upload or fails here is cleared and reported.
async function publish(run: ProducingRun, out: Written, manifest: Manifest, index: StoredIndex | undefined): Promise<void> {
  const { job, dir, result } = run;
  for (const t of run.targets) {
    const failure = out.failures.get(t.name);
    if (failure) {
      result.targets.push({ target: t.name, status: 'failed', ...failure });
      await t.removeDir(dir).catch(() => undefined);
      continue;
    }
    try {
      await t.publish(run.key);
      if (index) await t.writeFile(`${dir}/${index.name}`, index.stored);
      faultPoint('backup-before-manifest');
      await writeSigned(t, `${dir}/${MANIFEST_FILE}`, Buffer.from(redactedJson(manifest)), run.signer);
      result.targets.push({ target: t.name, status: 'ok' });
      log.info({ job: job.name, target: t.name, id: run.id, size: out.bytes, raw: result.raw_size }, 'backup committed');
    } catch (err) {
      result.targets.push({ target: t.name, status: 'failed', error: errorMessage(err), hint: err instanceof SnapError ? err.hint : undefined });
      await t.removeDir(dir).catch(() => undefined);
    }
  }
}

// Step 6: the job's catalog index on each target takes the new backup in, the index
// becomes the job's cached one (the next run's base), and the plugin's work after a
// commit (e.g. pruning what the datastore keeps locally); a failure is logged, the backup
// stays committed.
async function afterCommit(run: ProducingRun, index: StoredIndex | undefined): Promise<void> {
  const { stream, result } = run;
  if (!result.targets.some((t) => t.status === 'ok')) return;
  const trust = await catalogTrust(run.ctx);
  await Promise.all(run.targets.filter((t) => result.targets.some((x) => x.target === t.name && x.status === 'ok')).map((t) => refreshIndex(t, run.ctx.config.host, run.job.name, trust)));
  if (index) await cacheIndex(run.ctx.config, run.job.name, run.id, index.sha256, index.raw).catch((err: unknown) => log.warn({ job: run.job.name, id: run.id }, `could not cache the index (the next backup reads it from the target): ${errorMessage(err)}`));
  if (!stream.committed) return;
  await stream.committed().catch((err: unknown) => log.warn({ job: run.job.name, id: run.id }, `after the commit: ${errorMessage(err)}`));
}

// The backup is good (committed where the targets took it) but the plugin left the
// datastore needing a hand (BackupStream.degraded): the job fails, naming that first.
function degraded(run: ProducingRun): void {
  const err = run.stream.degraded?.();
  if (!err) return;
  const { result } = run;
  if (result.error?.includes(err.message)) return;
  result.status = 'failed';
  result.error = result.error ? `${err.message}; ${result.error}` : err.message;
  result.hint = err.hint ?? result.hint;
}

// The job is ok only when every target it names holds the backup.
function settle(result: BackupResult): void {
  const failed = result.targets.filter((t) => t.status === 'failed');
  result.status = failed.length ? 'failed' : 'ok';
  if (failed.length) {
    result.error = `some targets failed: ${failed.map((t) => `${t.target}: ${t.error}`).join('; ')}`;
    result.hint = result.targets.find((t) => t.hint)?.hint;
  }
}
