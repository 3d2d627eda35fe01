// Continuous log capture (the daemon, for jobs with `pitr`): every slice_seconds, the
// entries the server's log (MongoDB's oplog) gained since the last slice go to each of
// the job's targets as one slice (agent/pitr/slices.ts): zstd, age when encrypting,
// signed like a manifest. The capture continues the chain from the job's newest backup:
// at start it reads the targets, so an agent killed mid-slice resumes from the last
// slice it committed and loses no entry. When the log no longer holds that position (it
// rolled over while the agent was down, or the server was restored) the entries between
// are lost: the gap is logged, shows in `status` and the metrics (the recovery point's
// age grows, snapagent_pitr_gap), and is closed by taking a backup at once.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { constants as zlibConstants, zstdCompressSync } from 'node:zlib';
import { artifactFileName } from '../catalog/manifest.ts';
import { readCatalog } from '../catalog/catalog.ts';
import { hostKey } from '../catalog/signing.ts';
import { catalogTrust } from '../catalog/trust.ts';
import type { Context } from '../context.ts';
import { errorMessage, LogGapError } from '../errors.ts';
import { log as rootLog, type Logger } from '../log.ts';
import { captureStateFile, saveState, type CaptureState } from './capture-state.ts';
import { ageEncryptBytes, recipientsFor, type Recipients } from '../pipeline/age.ts';
import type { Job, LogPosition, LogReader, PluginContext } from '../plugin/contract.ts';
import { lockJob } from '../runtime/lock.ts';
import { refreshMetrics } from '../observe/report.ts';
import { makeTarget } from '../targets/index.ts';
import type { Target } from '../targets/target.ts';
import { comparePos, coverage, readSlices, showPos, sliceId, SLICE_FORMAT, type ReplayBase, type Slice, writeSlice } from './slices.ts';

/** The most raw bytes one slice holds; a busier interval is shipped as several slices. */
export const MAX_SLICE_BYTES = 64 << 20;

/** Runs the capture of one job until `ctx.signal` aborts. `takeBackup` runs a backup of
 * the job (the daemon's, so that it queues with the tier's runs) and says whether it
 * committed. */
export async function captureLog(ctx: Context, job: Job, takeBackup: (needed: () => Promise<boolean>) => Promise<boolean>): Promise<void> {
  const { config, signal } = ctx;
  const plugin = ctx.registry[job.plugin]!;
  const pitr = plugin.pitr!;
  const every = job.pitr!.sliceSeconds * 1000;
  const log = rootLog.child({ job: job.name, pitr: true });
  // One capture per job and host: a second daemon's waits out as an error.
  const lock = await lockJob(config.stateDir, config.host, `${job.name}@pitr`, log).catch((err: unknown) => {
    log.error(`oplog capture not started: ${errorMessage(err)}`);
    return undefined;
  });
  if (!lock) return;
  const targets = config.targets.filter((t) => job.targets.includes(t.name)).map(makeTarget);
  const stateFile = captureStateFile(config.stateDir, config.host, job.name);
  const state: CaptureState = { format: 'snapagent.pitr-capture/1', job: job.name };
  const save = () => saveState(stateFile, state).catch((err: unknown) => log.warn(`cannot record the capture state: ${errorMessage(err)}`));
  let recipients: Recipients | undefined;
  let reader: LogReader | undefined;
  try {
    recipients = await recipientsFor(config);
    const key = await hostKey(config.stateDir);
    await removeIncomplete(targets, config.host, job.name, log);
    const pctx: PluginContext = { docker: ctx.docker, log, signal, helperImage: config.docker.helper_image, host: config.host };
    let pos: LogPosition | undefined;
    /** The time the newest slice id stands for: ids stay unique when two reads share a millisecond. */
    let lastIdAt = 0;
    let backupAfter = 0;
    let metricsAt = 0;
    log.info({ slice_seconds: job.pitr!.sliceSeconds, targets: targets.map((t) => t.name) }, 'oplog capture started');
    while (!signal.aborted) {
      const tick = Date.now();
      try {
        pos ??= await resumePosition(ctx, job, targets, log);
        if (!pos) {
          // nothing to replay onto yet: a backup first (not more often than every 5 min)
          if (Date.now() >= backupAfter) {
            log.info('no backup with an oplog position to replay from: taking one');
            backupAfter = Date.now() + Math.max(5 * 60_000, 10 * every);
            // (a run of the tier queued before this one may have taken it meanwhile)
            if (await takeBackup(async () => (await resumePosition(ctx, job, targets, log)) === undefined)) pos = await resumePosition(ctx, job, targets, log);
          }
        }
        if (pos) {
          reader ??= await pitr.openLog(pctx, job);
          for (;;) {
            const readAt = new Date();
            const r = await reader.read(pos, MAX_SLICE_BYTES);
            const idAt = Math.max(readAt.getTime(), lastIdAt + 1);
            const id = sliceId(new Date(idAt));
            const slice = await ship(config.host, targets, job, pitr.format, pos, r.last ?? pos, r.entries, r.bytes, id, readAt, recipients, key, log, signal);
            lastIdAt = idAt;
            pos = slice.last;
            Object.assign(state, { position: pos, last_slice_at: new Date().toISOString(), last_slice_id: id, error: undefined });
            if (!r.more || signal.aborted) break;
          }
        }
      } catch (err) {
        if (err instanceof LogGapError && pos) {
          log.error({ after: showPos(pos) }, `oplog gap: ${err.message}; taking a backup to close it`);
          const gapAt = pos;
          if (!state.gap || state.gap.closed_at) state.gap = { found_at: new Date().toISOString(), after: gapAt, reason: err.message };
          pos = undefined;
          // a backup closes it (one attempt per 5 min at most: a failing dump is not hammered)
          if (Date.now() >= backupAfter) {
            backupAfter = Date.now() + Math.max(5 * 60_000, 10 * every);
            const needed = async () => {
              const p = await resumePosition(ctx, job, targets, log);
              return !p || comparePos(p, gapAt) <= 0;
            };
            if (await takeBackup(needed)) {
              pos = await resumePosition(ctx, job, targets, log);
              if (pos && comparePos(pos, gapAt) > 0) Object.assign(state.gap, { closed_at: new Date().toISOString(), closed_by: 'a backup taken at once' });
            }
          }
        } else if (!signal.aborted) {
          state.error = errorMessage(err);
          log.error(`oplog capture: ${state.error}`);
          await reader?.close().catch(() => undefined);
          reader = undefined;
        }
      }
      await save();
      // the recovery point moved on: the metrics file says so (at most once a minute)
      if (config.metrics && Date.now() - metricsAt >= Math.max(60_000, every) && !signal.aborted) {
        metricsAt = Date.now();
        await refreshMetrics(ctx).catch((err: unknown) => log.warn(`cannot write the metrics file: ${errorMessage(err)}`));
      }
      await sleep(Math.max(0, tick + every - Date.now()), undefined, { signal }).catch(() => undefined);
    }
  } catch (err) {
    log.error(`oplog capture stopped: ${errorMessage(err)}`);
  } finally {
    await reader?.close().catch(() => undefined);
    await recipients?.cleanup();
    await lock.release();
    log.info('oplog capture stopped');
  }
}


// One slice to every target. A target that fails misses this slice (its chain then has a
// gap until the next backup: status shows it per target); the slice counts once one
// target holds it. None: the error, and the same entries are read again next time.
async function ship(
  host: string,
  targets: Target[],
  job: Job,
  format: string,
  after: LogPosition,
  last: LogPosition,
  entries: Buffer[],
  bytes: number,
  id: string,
  readAt: Date,
  recipients: Recipients | undefined,
  key: Awaited<ReturnType<typeof hostKey>>,
  log: Logger,
  signal: AbortSignal,
): Promise<Slice> {
  const raw = Buffer.concat(entries, bytes);
  let stored: Buffer = zstdCompressSync(raw, { params: { [zlibConstants.ZSTD_c_checksumFlag]: 1, [zlibConstants.ZSTD_c_compressionLevel]: 3 } });
  if (recipients) stored = await ageEncryptBytes(recipients.files, stored, signal);
  const slice: Slice = {
    format: SLICE_FORMAT,
    id,
    host,
    job: job.name,
    plugin: job.plugin,
    after,
    last,
    entries: entries.length,
    until: readAt.toISOString(),
    artifact: {
      name: artifactFileName('oplog', format, recipients !== undefined),
      format,
      compression: 'zstd',
      encryption: recipients ? 'age' : 'none',
      size: stored.length,
      sha256: createHash('sha256').update(stored).digest('hex'),
      raw_size: raw.length,
      ...(recipients ? { recipients: [...recipients.list] } : {}),
    },
  };
  const res = await Promise.allSettled(targets.map((t) => writeSlice(t, slice, stored, key)));
  const failed = res.flatMap((r, k) => (r.status === 'rejected' ? [`${targets[k]!.name}: ${errorMessage(r.reason)}`] : []));
  if (failed.length === targets.length) throw new Error(`no target took the oplog slice: ${failed.join('; ')}`);
  for (const f of failed) log.error(`oplog slice ${id} not stored on ${f}; that target's point-in-time chain has a gap until the next backup`);
  log.debug({ slice: id, entries: entries.length, raw_bytes: raw.length, stored_bytes: stored.length, last: showPos(last) }, 'oplog slice shipped');
  return slice;
}

// Where the capture continues: the end of the chain of slices from the job's newest
// backup with a log position, on the target that is least far (a target behind gets the
// entries again: slices may overlap). Undefined: no such backup on any target.
async function resumePosition(ctx: Context, job: Job, targets: Target[], log: Logger): Promise<LogPosition | undefined> {
  const trust = await catalogTrust(ctx);
  const pitr = ctx.registry[job.plugin]!.pitr!;
  const ends: LogPosition[] = [];
  for (const t of targets) {
    try {
      const base = newestBase(ctx, job, (await readCatalog(t, `${ctx.config.host}/${job.name}`, trust)).backups, pitr.positionOf.bind(pitr));
      if (!base) continue;
      const cov = coverage(base, (await readSlices(t, ctx.config.host, job.name, trust.keys)).slices);
      ends.push(cov.last);
    } catch (err) {
      log.warn({ target: t.name }, `cannot read the target to resume the oplog capture: ${errorMessage(err)}`);
    }
  }
  return ends.sort(comparePos)[0];
}

/** The job's newest trusted backup that a replay can start from. */
export function newestBase(ctx: Pick<Context, 'config'>, job: Pick<Job, 'name'>, backups: Awaited<ReturnType<typeof readCatalog>>['backups'], positionOf: (stats: Record<string, unknown>) => LogPosition | undefined): ReplayBase | undefined {
  let best: ReplayBase | undefined;
  for (const b of backups) {
    if (b.manifest.job !== job.name || b.manifest.host !== ctx.config.host || b.signature.state !== 'signed') continue;
    const p = positionOf(b.manifest.stats);
    if (p && (!best || comparePos(p, best.position) > 0)) best = { id: b.manifest.id, position: p };
  }
  return best;
}

// Slice directories without slice.json: a write the agent did not finish (killed). Only
// the capture writes there, and it holds the job's capture lock.
async function removeIncomplete(targets: Target[], host: string, job: string, log: Logger): Promise<void> {
  for (const t of targets) {
    try {
      const cat = await readSlices(t, host, job, new Map());
      for (const dir of cat.incomplete) {
        log.warn({ target: t.name, dir }, 'removing an oplog slice left incomplete by a killed agent');
        await t.removeDir(dir);
      }
    } catch (err) {
      log.warn({ target: t.name }, `cannot clear incomplete oplog slices: ${errorMessage(err)}`);
    }
  }
}

