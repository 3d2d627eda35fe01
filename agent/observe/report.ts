// After jobs have run (backup, the daemon): record each job's run, rewrite the metrics
// file, send the notifications. Independent of how the results were produced (one job or
// many, in sequence or in parallel); nothing here changes a run's outcome or exit code.
import type { ConfigContext } from '../context.ts';
import { errorMessage } from '../errors.ts';
import { log, runId } from '../log.ts';
import type { BackupResult } from '../backup/backup-job.ts';
import { jobTargetNames, type KnownJob } from './health.ts';
import { writeMetrics } from './metrics.ts';
import { backupEvent, notify, type RunEvent } from './notify.ts';
import { recordRun } from './run-state.ts';

/** `known`: the jobs of the plan (so label jobs that never ran appear in the metrics);
 * `run`: the run id the results belong to (another than ours for a killed run's). */
export async function reportRun(ctx: ConfigContext, results: BackupResult[], known: KnownJob[] = [], run = runId): Promise<void> {
  const { config } = ctx;
  const events: RunEvent[] = [];
  for (const r of results) {
    let failures = r.status === 'ok' ? 0 : 1;
    try {
      const targets = known.find((k) => k.name === r.job)?.targets ?? jobTargetNames(config, r.job);
      failures = (await recordRun(config.stateDir, config.host, r, run, targets)).failures_in_a_row;
    } catch (err) {
      log.warn({ job: r.job }, `could not record the run in ${config.stateDir}: ${errorMessage(err)}`);
    }
    events.push(backupEvent(config.host, r, run, failures));
  }
  await refreshMetrics(ctx, known);
  await notify(config, events).catch((err: unknown) => log.warn(`notifications: ${errorMessage(err)}`));
}

/** Rewrites the metrics file from the targets and the run state (after prune, verify...). */
export async function refreshMetrics(ctx: ConfigContext, known: KnownJob[] = []): Promise<void> {
  try {
    const file = await writeMetrics(ctx, known);
    if (file) log.debug({ file }, 'metrics written');
  } catch (err) {
    log.warn(`could not write the metrics file: ${errorMessage(err)}`);
  }
}
