// Is every job backed up recently enough? Per job: age of the last success (the least
// fresh copy among its targets), state, size trend, next scheduled run; `snapagent
// status` prints it and exits 1 when a job is stale, failing or never backed up.
import type { Config } from '../config/load.ts';
import type { Context } from '../context.ts';
import { errorMessage } from '../errors.ts';
import { log } from '../log.ts';
import { humanDuration } from '../pipeline/progress.ts';
import { buildPlan, type Plan, type PlanProblem } from '../plan/plan.ts';
import { nextRun } from '../plan/schedule.ts';
import { interruptedRestores } from '../runtime/inflight.ts';
import { interruptedMessage } from '../runtime/recovery.ts';
import { gatherHealth, STALE_FACTOR, type JobHealth, type TargetReach } from './health.ts';

export type JobState = 'ok' | 'failed' | 'stale' | 'never';

export interface JobStatus {
  job: string;
  plugin: string;
  tier: string;
  status: JobState;
  /** Why the status is not ok, in words. */
  reason?: string;
  /** The newest backup's end time on the least fresh target. */
  last_success_at?: string;
  last_success_age_seconds?: number;
  expected_interval_seconds?: number;
  stale_after_seconds?: number;
  last_attempt_at?: string;
  last_run_status?: 'ok' | 'failed';
  last_error?: string;
  last_hint?: string;
  failures_in_a_row: number;
  /** Stored bytes of the newest backup (an incremental stores what changed). */
  size?: number;
  previous_size?: number;
  /** Raw bytes of the state the newest backup represents, and the one before it. */
  represented_size?: number;
  previous_represented_size?: number;
  /** (represented_size - previous_represented_size) / previous_represented_size, e.g.
   * -0.6 for a 60% drop of the data (not of what a run stored). */
  size_change?: number;
  /** The newest backup's kind. */
  kind?: 'full' | 'incremental';
  next_run?: string;
  /** The newest moment the job can be restored to (the least recent target's), and how
   * old it is: the recovery point objective the job has now. */
  recovery_point_at?: string;
  recovery_point_age_seconds?: number;
  /** Point-in-time recovery (config pitr): how it reaches that point, and what the
   * capture last did. */
  pitr?: { slice_seconds: number; keep: string; base?: string; slices?: number; gap?: { target: string; after: string; next?: string }[]; last_slice_at?: string; capture_error?: string; last_gap?: { found_at: string; reason: string; closed_at?: string } };
  targets: { target: string; reachable: boolean; backups?: number; fulls?: number; last_success_at?: string; last_id?: string; size?: number; represented_size?: number; error?: string }[];
}

/** The status of one job at `now` (pure: the unit tests drive it). */
export function jobStatus(j: JobHealth, config: Config, now: Date): JobStatus {
  const ages = j.targets.map((t) => ({ t, at: t.last_success_at ? Date.parse(t.last_success_at) : undefined }));
  const have = ages.filter((a) => a.at !== undefined);
  const oldest = have.sort((a, b) => a.at! - b.at!)[0];
  const sized = j.targets.find((t) => t.size !== undefined);
  const interval = j.expected_interval_seconds;
  const staleAfter = interval !== undefined ? interval * STALE_FACTOR : undefined;
  const age = oldest ? Math.max(0, (now.getTime() - oldest.at!) / 1000) : undefined;
  const schedule = config.tiers[j.tier]?.schedule;
  let next: string | undefined;
  try {
    next = schedule ? nextRun(schedule, now).toISOString() : undefined;
  } catch {
    next = undefined;
  }
  const missing = ages.filter((a) => a.at === undefined).map((a) => a.t.target);
  // the recovery point: the least recent of the targets'
  const points = j.targets.map((t) => t.recovery_point).filter((p) => p !== undefined);
  const point = points.sort((a, b) => Date.parse(a.at) - Date.parse(b.at))[0];
  const pointAge = point ? Math.max(0, (now.getTime() - Date.parse(point.at)) / 1000) : undefined;
  // a job with pitr should be restorable to a few slices ago
  const pitrLimit = j.pitr ? Math.max(300, 10 * j.pitr.slice_seconds) : undefined;
  const gaps = j.targets.flatMap((t) => (t.recovery_point?.gap ? [{ target: t.target, ...t.recovery_point.gap }] : []));
  let status: JobState = 'ok';
  let reason: string | undefined;
  if (j.state?.last_status === 'failed') {
    status = 'failed';
    reason = `the last run (${j.state.last_attempt_at}) failed: ${j.state.last_error ?? 'unknown error'}`;
  } else if (have.length === 0) {
    status = 'never';
    reason = j.targets.length ? 'no committed backup on any target' : 'none of its targets is configured';
  } else if (missing.length) {
    status = 'stale';
    reason = `no committed backup on ${missing.join(', ')}`;
  } else if (staleAfter !== undefined && age! > staleAfter) {
    status = 'stale';
    reason = `the last success is ${humanAge(age!)} old, more than ${STALE_FACTOR} × the tier's interval (${humanAge(interval!)})`;
  } else if (pitrLimit !== undefined && pointAge !== undefined && pointAge > pitrLimit) {
    status = 'stale';
    reason = gaps.length
      ? `point-in-time recovery reaches only ${point!.at} (${humanAge(pointAge)} ago): the stored oplog has a gap after ${gaps[0]!.after} on ${gaps.map((g) => g.target).join(', ')}; the next backup closes it`
      : `point-in-time recovery reaches only ${point!.at} (${humanAge(pointAge)} ago), more than ${humanAge(pitrLimit)}: is the daemon (snapagent run) capturing the oplog?${j.capture?.error ? ` its last error: ${j.capture.error}` : ''}`;
  }
  return {
    job: j.job,
    plugin: j.plugin,
    tier: j.tier,
    status,
    reason,
    last_success_at: oldest && new Date(oldest.at!).toISOString(),
    last_success_age_seconds: age,
    expected_interval_seconds: interval,
    stale_after_seconds: staleAfter,
    last_attempt_at: j.state?.last_attempt_at,
    last_run_status: j.state?.last_status,
    last_error: j.state?.last_error,
    last_hint: j.state?.last_hint,
    failures_in_a_row: j.state?.failures_in_a_row ?? 0,
    size: sized?.size,
    previous_size: sized?.previous_size,
    represented_size: sized?.represented_size,
    previous_represented_size: sized?.previous_represented_size,
    size_change: change(sized?.represented_size ?? sized?.size, sized?.previous_represented_size ?? sized?.previous_size),
    kind: sized?.kind,
    next_run: next,
    recovery_point_at: point?.at,
    recovery_point_age_seconds: pointAge,
    ...(j.pitr
      ? {
          pitr: {
            ...j.pitr,
            base: point?.base,
            slices: point?.slices,
            ...(gaps.length ? { gap: gaps } : {}),
            last_slice_at: j.capture?.last_slice_at,
            capture_error: j.capture?.error,
            ...(j.capture?.gap ? { last_gap: { found_at: j.capture.gap.found_at, reason: j.capture.gap.reason, closed_at: j.capture.gap.closed_at } } : {}),
          },
        }
      : {}),
    targets: j.targets.map((t) => ({ target: t.target, reachable: t.reachable, backups: t.backups, fulls: t.fulls, last_success_at: t.last_success_at, last_id: t.last_id, size: t.size, represented_size: t.represented_size, error: t.error })),
  };
}

const change = (now?: number, before?: number) => (now !== undefined && before ? (now - before) / before : undefined);

export function humanAge(seconds: number): string {
  if (seconds < 48 * 3600) return humanDuration(seconds);
  return `${Math.floor(seconds / 86400)}d${String(Math.floor((seconds % 86400) / 3600)).padStart(2, '0')}h`;
}

// Label jobs come from Docker; without it, status still answers for the config's jobs
// and those with a recorded run.
async function planOrConfig(ctx: Pick<Context, 'config' | 'registry' | 'docker'>): Promise<Plan> {
  try {
    await ctx.docker.ping();
    return await buildPlan(ctx, ctx.docker);
  } catch (err) {
    log.warn(`Docker is not reachable, label jobs that never ran are not shown: ${errorMessage(err)}`);
    return buildPlan(ctx, undefined);
  }
}

/** What `snapagent status` reports: every job's status at `now`, the targets' reach, and
 * the problems (the plan's, and restores a killed run left unfinished). */
export interface HostStatus {
  ok: boolean;
  host: string;
  now: string;
  stale_factor: number;
  jobs: JobStatus[];
  targets: TargetReach[];
  problems: PlanProblem[];
}

/** `at`: the time to judge freshness at (default: once the targets have been read). */
export async function hostStatus(ctx: Pick<Context, 'config' | 'registry' | 'docker'>, at?: Date): Promise<HostStatus> {
  const plan = await planOrConfig(ctx);
  const health = await gatherHealth(ctx, plan.jobs);
  const now = at ?? new Date();
  const jobs = health.jobs.map((j) => jobStatus(j, ctx.config, now));
  // restores a killed run left unfinished: the data there may be half restored
  const interrupted = (await interruptedRestores(ctx.config.stateDir, ctx.config.host)).map((r) => ({ where: `restore of job ${r.job}`, message: interruptedMessage(r) }));
  const problems = [...plan.problems, ...interrupted];
  const ok = jobs.every((j) => j.status === 'ok') && problems.length === 0;
  return { ok, host: ctx.config.host, now: now.toISOString(), stale_factor: STALE_FACTOR, jobs, targets: health.targets, problems };
}
