// Restores from the targets alone: one job (its latest backup, one id, or the newest at
// or before a time), every job, or the ones an operator picked. A whole-host restore
// brings the volumes back first, then starts the compose stack (config `compose`), then
// restores each datastore into its container once that is ready; every job is verified
// against its manifest by its plugin, and each gets its recovery time (RTO).
import { performance } from 'node:perf_hooks';
import type { Context } from '../context.ts';
import { errorMessage, ExitCode, IntegrityError, SnapError, UsageError } from '../errors.ts';
import { log } from '../log.ts';
import { untrusted, UNTRUSTED_HINT, type Listed } from '../catalog/manifest.ts';
import { listCatalog, refusedByName } from '../catalog/list.ts';
import { buildPlan, type Plan } from '../plan/plan.ts';
import { restoreBackup, type RestoreResult } from './restore-job.ts';
import { jobFromManifest } from './restore-trust.ts';
import { latestPerJob, pickOne, restoreOrder, type HostChoice } from './restore-choice.ts';
import { startStack, waitReady } from './stack.ts';
import { catalogTrust } from '../catalog/trust.ts';
import { planPointInTime, type PointInTimePlan } from '../pitr/point.ts';

/** One job's restore, with its recovery time (seconds from t0). */
export type Outcome = RestoreResult & { plugin: string; rto_seconds: number };

/** What to restore: one job (`job`, with `id` or `before`), every job's latest (`all`),
 * or the operator's choice (`pick`, given the latest backup of each job and all of them). */
export interface RestoreSelection {
  job?: string;
  id?: string;
  all?: boolean;
  pick?: (latest: Listed[], all: Listed[]) => Promise<Listed[]>;
  target?: string;
  host?: string;
  /** The newest backup at or before this time; a job with point-in-time recovery (config
   * `pitr`) is restored to this very time (as with `at`). */
  before?: Date;
  /** One job (with pitr) restored to this time: its newest backup before it and the
   * oplog slices after that backup, replayed up to it. */
  at?: Date;
  toVolume?: string;
  toContainer?: string;
  database?: string;
  collection?: string;
  renameTo?: string;
  stop?: boolean;
  force?: boolean;
  restoreUsers?: boolean;
  /** Accept backups whose manifest has no signature (made before signing), with a warning. */
  insecureUnsigned?: boolean;
  /** performance.now() when the operator asked: the RTOs count from there (default: now). */
  t0?: number;
}

export interface HostRestore {
  ok: boolean;
  host: string;
  before?: string;
  results: Outcome[];
  skipped: HostChoice['skipped'];
  /** The compose stack, when a whole-host restore started it. */
  stack?: { seconds: number; error?: string };
  /** Seconds from t0 until the last job was restored and verified. */
  rto_seconds: number;
}

/** Restores the selection; a whole host in order: volumes, then the compose stack (its
 * apps start on restored data), then the datastores. Never throws for a job's failure:
 * it is in the results. */
export async function restoreBackups(ctx: Context, sel: RestoreSelection): Promise<HostRestore> {
  const t0 = sel.t0 ?? performance.now();
  const { before } = sel;
  const cat = await listCatalog(ctx, { target: sel.target, host: sel.host, job: sel.job });
  const backups = cat.backups;
  if (sel.job !== undefined && !backups.some((b) => b.manifest.job === sel.job && b.manifest.id === sel.id)) {
    const refused = refusedByName(cat.invalid, sel.id, sel.job);
    if (refused) throw refused;
  }
  let choice: HostChoice;
  const pits = new Map<string, PointInTimePlan | SnapError>();
  if (sel.job !== undefined && sel.at) {
    const p = await planFor(ctx, backups, sel.job, sel.at, undefined);
    pits.set(sel.job, p);
    choice = { chosen: [p.base], skipped: [] };
  } else if (sel.job !== undefined) choice = { chosen: [pickOne(backups, sel.job, sel.id, before)], skipped: [] };
  else if (sel.all || !sel.pick) choice = latestPerJob(backups, before);
  else choice = { chosen: await sel.pick(latestPerJob(backups, before).chosen, backups), skipped: [] };
  for (const k of choice.skipped) log.warn({ job: k.job, oldest: k.oldest }, `job ${k.job} has no backup at or before ${before!.toISOString()}: skipped`);
  if (choice.chosen.length === 0) {
    throw new UsageError(
      `no committed backups of host ${sel.host ?? ctx.config.host}${before ? ` at or before ${before.toISOString()}` : ''} on ${sel.target ?? 'the configured targets'}`,
      'check `snapagent list` and the config\'s host and targets',
    );
  }
  await ctx.docker.ping();
  let plan = await buildPlan(ctx, ctx.docker);
  // --all --before: the jobs with point-in-time recovery go back to that very time
  if (sel.job === undefined && before) {
    choice.chosen = await Promise.all(
      choice.chosen.map(async (l) => {
        const job = plan.jobs.find((j) => j.name === l.manifest.job);
        if (!job?.pitr) return l;
        try {
          const p = await planFor(ctx, backups, job.name, before, job.plugin);
          pits.set(job.name, p);
          return p.base;
        } catch (err) {
          pits.set(job.name, err instanceof SnapError ? err : new SnapError(errorMessage(err)));
          return l;
        }
      }),
    );
  }
  const results: Outcome[] = [];
  let stack: { seconds: number; error?: string } | undefined;
  let stackError: SnapError | undefined;
  const run = async (list: Listed[]) => {
    for (const l of list) if (!ctx.signal.aborted) results.push(await restoreOne(ctx, l, plan, sel, stackError, t0, pits.get(l.manifest.job)));
  };
  if (sel.job !== undefined) await run(choice.chosen);
  else {
    // the whole host: volumes, then the stack (its apps start on restored data), then
    // the datastores, ordered with the plan that sees the stack's containers
    await run(restoreOrder(choice.chosen.filter((l) => l.manifest.plugin === 'volume'), plan.jobs));
    if (ctx.config.compose && !ctx.signal.aborted) ({ stack, plan, stackError } = await bringUpStack(ctx, plan));
    await run(restoreOrder(choice.chosen.filter((l) => l.manifest.plugin !== 'volume'), plan.jobs));
  }
  const total = (performance.now() - t0) / 1000;
  const ok = results.length === choice.chosen.length && results.every((r) => r.status === 'ok') && !stack?.error;
  return { ok, host: sel.host ?? ctx.config.host, before: before?.toISOString(), results, skipped: choice.skipped, stack, rto_seconds: round(total) };
}

// Starts the compose stack once, then plans again: the datastore jobs' containers exist now.
async function bringUpStack(ctx: Context, plan: Plan): Promise<{ stack: { seconds: number; error?: string }; plan: Plan; stackError?: SnapError }> {
  const t = performance.now();
  try {
    await startStack(ctx.config.compose!, ctx.config.docker.socket, log, ctx.signal);
    const seconds = round((performance.now() - t) / 1000);
    log.info({ seconds }, 'stack started');
    return { stack: { seconds }, plan: await buildPlan(ctx, ctx.docker) };
  } catch (err) {
    const e = err instanceof SnapError ? err : new SnapError(errorMessage(err));
    log.error({ hint: e.hint }, e.message);
    return { stack: { seconds: round((performance.now() - t) / 1000), error: e.message }, plan, stackError: e };
  }
}

// A job's restore to a point in time; the plugin comes from the backups when not planned.
async function planFor(ctx: Context, backups: Listed[], job: string, at: Date, plugin: string | undefined): Promise<PointInTimePlan> {
  const name = plugin ?? backups.find((b) => b.manifest.job === job)?.manifest.plugin;
  if (!name) throw new UsageError(`no committed backup of job "${job}"`, 'see `snapagent list` for what the targets hold');
  const pitr = ctx.registry[name]?.pitr;
  if (!pitr) throw new UsageError(`--at: job ${job} (plugin ${name}) has no point-in-time recovery`, 'use --before to restore its newest backup at or before a time');
  return planPointInTime(backups, job, at, pitr, (await catalogTrust(ctx)).keys);
}

async function restoreOne(ctx: Context, l: Listed, plan: Plan, sel: RestoreSelection, stackError: SnapError | undefined, t0: number, pit?: PointInTimePlan | SnapError): Promise<Outcome> {
  const m = l.manifest;
  const finish = (r: RestoreResult): Outcome => ({ ...r, plugin: m.plugin, rto_seconds: round((performance.now() - t0) / 1000) });
  const failed = (err: SnapError): Outcome => {
    log.error({ job: m.job, id: m.id, hint: err.hint }, `restore failed: ${err.message}`);
    return finish({ job: m.job, id: m.id, target: l.target.name, status: 'failed', duration_seconds: 0, error: err.message, hint: err.hint, exitCode: err.exitCode });
  };
  // a manifest anyone with access to the target could have written gives no instructions
  const why = untrusted(l, sel.insecureUnsigned);
  if (why) return failed(new IntegrityError(`not restored: ${why}`, UNTRUSTED_HINT));
  if (l.signature.state === 'unsigned') log.warn({ job: m.job, id: m.id, target: l.target.name }, `--insecure-unsigned: trusting the unsigned manifest of backup ${m.job}/${m.id}`);
  if (stackError) return failed(new SnapError(`not restored: ${stackError.message}`, { hint: stackError.hint }));
  if (pit instanceof SnapError) return failed(pit);
  const contested = plan.contested.get(m.job);
  if (contested) return failed(new SnapError(`not restored: ${contested.message}`, { hint: `claimants: ${contested.where}`, exitCode: ExitCode.usage }));
  let job;
  try {
    job = jobFromManifest(ctx, l, plan.jobs.find((j) => j.name === m.job), { toVolume: sel.toVolume, toContainer: sel.toContainer });
  } catch (err) {
    return failed(err instanceof SnapError ? err : new SnapError(errorMessage(err)));
  }
  const container = sel.toContainer ?? job.container;
  if (container && m.plugin !== 'volume') {
    try {
      await waitReady(ctx.docker, container, ctx.config.compose?.wait_seconds ?? 600, log.child({ job: job.name }), ctx.signal);
    } catch (err) {
      return failed(err instanceof SnapError ? err : new SnapError(errorMessage(err)));
    }
  }
  log.info({ job: job.name, id: m.id, target: l.target.name }, 'restore started');
  const r = await restoreBackup(ctx, l, job, { toVolume: sel.toVolume, toContainer: sel.toContainer, database: sel.database, collection: sel.collection, renameTo: sel.renameTo, stop: Boolean(sel.stop), force: Boolean(sel.force), restoreUsers: Boolean(sel.restoreUsers), insecureUnsigned: sel.insecureUnsigned, pointInTime: pit });
  if (r.status === 'ok') log.info({ job: r.job, id: r.id, destination: r.destination, seconds: r.duration_seconds }, 'restore ok');
  else log.error({ job: r.job, id: r.id, hint: r.hint }, `restore failed: ${r.error}`);
  return finish(r);
}

const round = (n: number) => Math.round(n * 10) / 10;
