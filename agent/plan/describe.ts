// What `snapagent plan` shows: the config's targets and tiers (with their next run and
// retention) and every planned job, with where it comes from and why; the plan's
// problems. Plain data: the command prints it as a table or as JSON.
import type { ConfigContext } from '../context.ts';
import type { DockerClient } from '../docker/client.ts';
import type { KeepPolicy } from '../config/schema.ts';
import { keepFor } from '../catalog/retention.ts';
import { buildPlan, type Plan, type PlanProblem } from './plan.ts';
import { nextRun } from './schedule.ts';

export interface PlanDescription {
  config: string;
  host: string;
  targets: { name: string; type: string; location: string }[];
  tiers: { name: string; schedule: string; next_run: string; keep: KeepPolicy }[];
  jobs: {
    name: string;
    plugin: string;
    tier: string;
    schedule?: string;
    keep?: KeepPolicy;
    volume?: string;
    container?: string;
    stop: boolean;
    order: number;
    targets: string[];
    reason: string;
    /** "full" (every backup a full) or "incremental" (fulls every full_every, increments between). */
    backups: 'full' | 'incremental';
    full_every?: string;
    /** Point-in-time recovery: the daemon ships the server's log this often, kept this long. */
    pitr?: { slice_seconds: number; keep: string };
  }[];
  problems: PlanProblem[];
}

/** The plan with Docker's labels (`docker` given), described at `now` (default: once planned). */
export async function describePlan(ctx: ConfigContext, docker: DockerClient | undefined, now?: Date): Promise<PlanDescription> {
  const plan = await buildPlan(ctx, docker);
  return planDescription(ctx, plan, now ?? new Date());
}

/** The description of a plan already built (pure). */
export function planDescription({ config, registry }: ConfigContext, plan: Plan, now: Date): PlanDescription {
  return {
    config: config.source,
    host: config.host,
    targets: config.targets.map((t) => ({ name: t.name, type: t.type, location: t.type === 'local' ? t.path : t.remote })),
    tiers: Object.entries(config.tiers).map(([name, t]) => ({ name, schedule: t.schedule, next_run: nextRun(t.schedule, now).toISOString(), keep: t.keep })),
    jobs: plan.jobs.map((j) => ({
      name: j.name,
      plugin: j.plugin,
      tier: j.tier,
      schedule: config.tiers[j.tier]?.schedule,
      keep: keepFor(config, j.name, j.tier).keep,
      volume: j.volume,
      container: j.container,
      stop: j.stop,
      order: j.order,
      targets: j.targets,
      reason: j.reason,
      ...(registry[j.plugin]?.incremental && j.fullEvery ? { backups: 'incremental' as const, full_every: j.fullEvery } : { backups: 'full' as const }),
      ...(j.pitr ? { pitr: { slice_seconds: j.pitr.sliceSeconds, keep: j.pitr.keep } } : {}),
    })),
    problems: plan.problems,
  };
}
