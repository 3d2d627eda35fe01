// What metrics and `snapagent status` report for each job on each target: committed
// backups read from the target (the truth: last success, sizes, count, latest drill) and
// the job's last run from the state dir (attempt, failure). A target that cannot be read
// falls back to the last success this agent recorded for it.
import type { Config } from '../config/load.ts';
import type { ConfigContext } from '../context.ts';
import { errorMessage } from '../errors.ts';
import { log } from '../log.ts';
import { catalogTrust } from '../catalog/trust.ts';
import { kindOf, representedSize, type CheckRecord, type Listed } from '../catalog/manifest.ts';
import { readCatalog } from '../catalog/catalog.ts';
import { expectedIntervalSeconds } from '../plan/schedule.ts';
import { makeTarget } from '../targets/index.ts';
import { readRunStates, type JobState } from './run-state.ts';
import { recoveryPoint, type RecoveryPoint } from '../pitr/point.ts';
import { captureStateFile, readCaptureState, type CaptureState } from '../pitr/capture-state.ts';

/** A backup is stale once its age exceeds this many expected intervals (alert rules too). */
export const STALE_FACTOR = 1.5;

export interface TargetHealth {
  target: string;
  /** False when the target could not be listed; figures then come from the run state. */
  reachable: boolean;
  error?: string;
  /** Committed backups of the job on this target (undefined when unreachable). */
  backups?: number;
  last_success_at?: string;
  last_id?: string;
  /** Stored bytes of the newest backup, and of the one before it. */
  size?: number;
  previous_size?: number;
  /** Raw bytes of the state the newest backup represents (an incremental stores less),
   * and of the one before it: what a size-drop alert should compare. */
  represented_size?: number;
  previous_represented_size?: number;
  /** The newest backup's kind. */
  kind?: 'full' | 'incremental';
  /** Of `backups`: how many are fulls (the rest are incrementals). */
  fulls?: number;
  /** Outcome of the job's last run on this target. */
  last_status?: 'ok' | 'failed';
  /** The newest restore drill recorded for the job on this target. */
  drill?: CheckRecord;
  /** The newest moment the job can be restored to from this target (with pitr: its
   * newest dump and the oplog slices after it). */
  recovery_point?: RecoveryPoint;
}

export interface JobHealth {
  job: string;
  plugin: string;
  tier: string;
  /** From the tier's schedule; undefined when the tier is gone or its schedule is invalid. */
  expected_interval_seconds?: number;
  state?: JobState;
  targets: TargetHealth[];
  /** The job's pitr settings (config), when it has point-in-time recovery. */
  pitr?: { slice_seconds: number; keep: string };
  /** What the job's oplog capture last did on this host (agent/pitr/capture.ts). */
  capture?: CaptureState;
}

export interface TargetReach {
  name: string;
  reachable: boolean;
  error?: string;
}

export interface Health {
  /** When it was gathered (ms since the epoch). */
  at?: number;
  jobs: JobHealth[];
  targets: TargetReach[];
}

export interface KnownJob {
  name: string;
  plugin: string;
  tier: string;
  targets: string[];
}

/** The targets a job writes to: its config entry's, else every target. */
export function jobTargetNames(config: Config, job: string): string[] {
  return config.jobs.find((j) => j.name === job)?.targets ?? config.targets.map((t) => t.name);
}

/**
 * Health of the config's jobs, the `known` ones (the plan's, with label jobs) and every
 * job with a recorded run, sorted by name; one listing per target. Backups of jobs that
 * are none of these (retired jobs, another install) are not reported.
 */
export async function gatherHealth(ctx: ConfigContext, known: KnownJob[] = []): Promise<Health> {
  const { config } = ctx;
  const states = await readRunStates(config.stateDir, config.host);
  const byTarget = new Map<string, { backups: Map<string, Listed[]> } | { error: string }>();
  await Promise.all(
    config.targets.map(async (tc) => {
      try {
        const cat = await readCatalog(makeTarget(tc), config.host, await catalogTrust(ctx));
        const backups = new Map<string, Listed[]>();
        // only signed backups count: a manifest anyone could write proves no success
        for (const b of cat.backups.filter((x) => x.signature.state === 'signed')) backups.set(b.manifest.job, [...(backups.get(b.manifest.job) ?? []), b]);
        byTarget.set(tc.name, { backups });
      } catch (err) {
        log.warn({ target: tc.name }, `cannot list the target: ${errorMessage(err)}`);
        byTarget.set(tc.name, { error: errorMessage(err) });
      }
    }),
  );
  // the jobs as they run now: the plan's (known), the config's, else as last recorded
  const jobs = new Map<string, KnownJob>();
  for (const st of states.values()) jobs.set(st.job, { name: st.job, plugin: st.plugin, tier: st.tier, targets: jobTargetNames(config, st.job) });
  for (const j of config.jobs) jobs.set(j.name, { name: j.name, plugin: j.plugin, tier: j.tier, targets: jobTargetNames(config, j.name) });
  for (const k of known) jobs.set(k.name, k);
  const list = [...jobs.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((k): JobHealth => ({
      job: k.name,
      plugin: k.plugin,
      tier: k.tier,
      expected_interval_seconds: intervalOf(config, k.tier),
      state: states.get(k.name),
      targets: k.targets.filter((t) => byTarget.has(t)).map((t) => targetHealth(t, byTarget.get(t)!, k.name, states.get(k.name))),
    }));
  // the recovery point of each job on each target (a job with pitr: one more listing)
  const keys = (await catalogTrust(ctx)).keys;
  // each job's pitr settings and its plugin's PointInTime, when both are there
  const pitrOf = new Map(
    list.flatMap((j) => {
      const cfg = config.jobs.find((c) => c.name === j.job)?.pitr;
      const pitr = cfg?.enabled ? ctx.registry[j.plugin]?.pitr : undefined;
      return cfg && pitr ? [[j.job, { cfg, pitr }] as const] : [];
    }),
  );
  await Promise.all(
    list.flatMap((j) =>
      j.targets.map(async (t) => {
        const held = byTarget.get(t.target);
        if (!held || !('backups' in held)) return;
        const pitr = pitrOf.get(j.job)?.pitr;
        try {
          t.recovery_point = await recoveryPoint(held.backups.get(j.job) ?? [], pitr, keys);
        } catch (err) {
          log.warn({ job: j.job, target: t.target }, `cannot read the oplog slices: ${errorMessage(err)}`);
          t.recovery_point = await recoveryPoint(held.backups.get(j.job) ?? [], undefined, keys);
        }
      }),
    ),
  );
  for (const j of list) {
    const cfg = pitrOf.get(j.job)?.cfg;
    if (!cfg) continue;
    Object.assign(j, { pitr: { slice_seconds: cfg.slice_seconds, keep: cfg.keep }, capture: await readCaptureState(captureStateFile(config.stateDir, config.host, j.job)) });
  }
  const targets = config.targets.map((tc) => {
    const t = byTarget.get(tc.name)!;
    return 'backups' in t ? { name: tc.name, reachable: true } : { name: tc.name, reachable: false, error: t.error };
  });
  return { at: Date.now(), jobs: list, targets };
}

function targetHealth(target: string, t: { backups: Map<string, Listed[]> } | { error: string }, job: string, state: JobState | undefined): TargetHealth {
  const recorded = state?.targets[target];
  if (!('backups' in t)) {
    return { target, reachable: false, error: t.error, last_success_at: recorded?.last_success_at, last_id: recorded?.last_success_id, size: recorded?.last_size, last_status: recorded?.status };
  }
  const list = t.backups.get(job) ?? [];
  const last = list.at(-1);
  const drills = list.map((b) => b.checks.drill).filter((d): d is CheckRecord => d !== undefined);
  return {
    target,
    reachable: true,
    backups: list.length,
    last_success_at: last?.manifest.finished_at,
    last_id: last?.manifest.id,
    size: last && sizeOf(last),
    previous_size: list.length > 1 ? sizeOf(list.at(-2)!) : undefined,
    represented_size: last && representedSize(last.manifest),
    previous_represented_size: list.length > 1 ? representedSize(list.at(-2)!.manifest) : undefined,
    kind: last && kindOf(last.manifest),
    fulls: list.filter((b) => kindOf(b.manifest) === 'full').length,
    last_status: recorded?.status,
    drill: drills.sort((a, b) => a.at.localeCompare(b.at)).at(-1),
  };
}

function sizeOf(b: Listed): number {
  return b.manifest.artifacts.reduce((n, a) => n + a.size, 0);
}

function intervalOf(config: Config, tier: string): number | undefined {
  const schedule = config.tiers[tier]?.schedule;
  if (!schedule) return undefined;
  try {
    return expectedIntervalSeconds(schedule);
  } catch {
    return undefined;
  }
}
