// One run of backups: plans, then backs up the chosen jobs (all, some, or a tier's) to
// every (or one) target, each followed by its retention. The CLI's `backup`, the daemon's
// scheduled tier runs and its catch-up all go through runBackups(), so what follows a run
// (retention, then the run state, metrics and notifications) is in one place.
import type { Context } from '../context.ts';
import { UsageError } from '../errors.ts';
import { jobSlots } from '../runtime/job-slots.ts';
import { log } from '../log.ts';
import { reportRun } from '../observe/report.ts';
import { buildPlan, selectJobs, type PlanProblem } from '../plan/plan.ts';
import type { Job } from '../plugin/contract.ts';
import { pruneJob, type PruneReport } from '../catalog/prune.ts';
import { selectTargets } from '../targets/index.ts';
import type { Target } from '../targets/target.ts';
import { backupJob, type BackupResult } from './backup-job.ts';

export interface RunRequest {
  jobs?: string[];
  tier?: string;
  target?: string;
  /** The schedule slot of a scheduled run: backup ids become "<slot>-<tier>". */
  slot?: Date;
}

export interface JobRun extends BackupResult {
  /** Retention applied after the commit, per target. */
  retention?: { target: string; status: PruneReport['status']; removed: string[]; error?: string }[];
}

export interface RunReport {
  ok: boolean;
  host: string;
  tier?: string;
  slot?: string;
  results: JobRun[];
  problems: PlanProblem[];
  /** Problems that fail this run (a run that named its jobs ignores the others'). */
  counted: PlanProblem[];
}

/** One run: plans, then backs up the chosen jobs, up to `concurrency` at once, each
 * followed by its retention. Never throws for a job's failure: it is in the results. */
export async function runBackups(ctx: Context, req: RunRequest): Promise<RunReport> {
  const { config } = ctx;
  if (req.tier && !config.tiers[req.tier]) throw new UsageError(`unknown tier "${req.tier}"`, `tiers: ${Object.keys(config.tiers).join(', ')}`);
  const targets = selectTargets(config, req.target);
  await ctx.docker.ping();
  const plan = await buildPlan(ctx, ctx.docker);
  let jobs;
  try {
    jobs = selectJobs(plan, req.jobs ?? [], req.tier);
  } catch (err) {
    throw new UsageError((err as Error).message, 'see `snapagent plan`');
  }
  for (const p of plan.problems) log.error({ where: p.where }, p.message);
  if (jobs.length === 0 && plan.problems.length === 0) {
    log.warn({ tier: req.tier }, 'nothing to back up: no job matches (see `snapagent plan`)');
  }
  const slots = jobSlots(config.concurrency);
  const runs = jobs.map(async (job): Promise<JobRun | undefined> => {
    const release = await slots.acquire(job.stop);
    try {
      if (ctx.signal.aborted) return undefined;
      const r: JobRun = await backupJob(ctx, job, targets, { slot: req.slot });
      if (r.status === 'ok') log.info({ job: r.job, id: r.id, size: r.size, raw: r.raw_size, seconds: r.duration_seconds }, 'backup ok');
      else log.error({ job: r.job, hint: r.hint }, `backup failed: ${r.error}`);
      if (r.status === 'ok' || r.targets.some((t) => t.status === 'ok')) r.retention = await retainAfterBackup(ctx, job, targets, r);
      return r;
    } finally {
      release();
    }
  });
  const results = (await Promise.all(runs)).filter((r) => r !== undefined);
  await reportRun(ctx, results, plan.jobs);
  const counted = req.jobs?.length ? [] : plan.problems;
  const ok = results.every((r) => r.status === 'ok') && counted.length === 0 && !ctx.signal.aborted;
  return { ok, host: config.host, tier: req.tier, slot: req.slot?.toISOString(), results, problems: plan.problems, counted };
}

// Retention of the job on the targets that hold the new backup. A failure is reported
// with the run; it does not fail the backup, which is committed.
async function retainAfterBackup(ctx: Context, job: Job, targets: Target[], r: BackupResult): Promise<JobRun['retention']> {
  const ok = targets.filter((t) => r.targets.some((x) => x.target === t.name && x.status === 'ok'));
  try {
    const reports = await pruneJob(ctx, job.name, ok, { tier: job.tier, signal: ctx.signal });
    return reports.map((p) => ({ target: p.target, status: p.status, removed: p.removed.map((x) => x.id), error: p.error }));
  } catch (err) {
    log.error({ job: job.name }, `retention after the backup: ${(err as Error).message}`);
    return ok.map((t) => ({ target: t.name, status: 'failed', removed: [], error: (err as Error).message }));
  }
}
