// One backup of one job, end to end, as named steps over one run object (backup-run.ts):
//   prepare ─► produce ─► compress & upload (.partial) ─► build manifest ─► publish ─► after-commit
// The artifact is published, then manifest.json is written LAST: it is the commit point.
// Anything that fails before the manifest is written leaves no committed backup: the
// partial files are removed now, and a dir left by a killed run is removed by the next.
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

export type { BackupResult, TargetOutcome } from './backup-run.ts';

export type BackupJobOptions = PrepareOptions;

/** Backs up `job` to those of `targets` it names. Never throws for the job's failure:
 * it is in the result. */
export async function backupJob(ctx: Context, job: Job, targets: Target[], o: BackupJobOptions = {}): Promise<BackupResult> {
  const run = startRun(ctx, job);
  try {
    const ready = await prepare(run, targets, o);
    const producing = await produce(ready);
    const written = await compressAndUpload(producing);
    const manifest = await manifestFor(producing, written);
    await publish(producing, written, manifest);
    await afterCommit(producing);
    settle(run.result);
  } catch (err) {
    failRun(run, err);
  }
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
  const stream = await run.plugin.backup({ ...run.pluginCtx, signal: abort.signal, backupId: run.id }, run.job).catch((err: unknown) => {
    unfollow();
    throw err;
  });
  const openedAt = performance.now();
  stream.done.catch(() => undefined); // handled by the upload; must not count as unhandled meanwhile
  const artifactName = artifactFileName(stream.artifact.name, stream.artifact.format, run.recipients !== undefined);
  return Object.assign(run, { stream, artifactName, key: `${run.dir}/${artifactName}`, abort, unfollow, askedAt, openedAt });
}

// Step 4: the manifest of what was stored, once the producer succeeded; its figures go
// into the result too.
async function manifestFor(run: ProducingRun, out: Written): Promise<Manifest> {
  const stats = await run.stream.done;
  // Where the time went: the plugin's preparation (e.g. a snapshot), the data flow until
  // every target held the artifact, and the plugin's finish (e.g. clearing the snapshot).
  const timings = { prepare_seconds: secs(run.openedAt - run.askedAt), stream_seconds: secs(out.streamedAt - run.openedAt), finish_seconds: secs(performance.now() - out.streamedAt) };
  const rawBytes = out.rawBytes ?? Number(stats.stream_bytes ?? 0);
  Object.assign(run.result, { size: out.bytes, raw_size: rawBytes, sha256: out.sha256, timings });
  return buildManifest({
    id: run.id,
    host: run.ctx.config.host,
    job: run.job,
    started: run.started,
    finished: new Date(),
    source: run.stream.source,
    stats,
    artifact: { name: run.artifactName, format: run.stream.artifact.format, size: out.bytes, sha256: out.sha256, rawSize: rawBytes, recipients: run.recipients?.list },
    timings,
  });
}

const secs = (ms: number) => Number((ms / 1000).toFixed(3));

// Step 5, per target: the artifact takes its final name, then the signed manifest commits
// the backup. A target that failed the upload or fails here is cleared and reported.
async function publish(run: ProducingRun, out: Written, manifest: Manifest): Promise<void> {
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

// Step 6: the plugin's work after a commit (e.g. pruning what the datastore keeps
// locally); a failure is logged, the backup stays committed.
async function afterCommit(run: ProducingRun): Promise<void> {
  const { stream, result } = run;
  if (!stream.committed || !result.targets.some((t) => t.status === 'ok')) return;
  await stream.committed().catch((err: unknown) => log.warn({ job: run.job.name, id: run.id }, `after the commit: ${errorMessage(err)}`));
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
