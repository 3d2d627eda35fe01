// Retention: applies each job's policy (catalog/retention.ts) to what the targets hold
// for this host, per job and per target, on committed backups only. Never removed: the
// newest committed backup, anything without a valid snapagent manifest, and anything of a
// job whose newest backup failed its latest verify or drill. Manifests not signed by a
// trusted key take no part: never removed, never the newest, reported. A backup is
// removed manifest first (so a prune killed half-way leaves an uncommitted directory,
// which the next backup of the job cleans up), then its whole directory; then the job's
// catalog index is rewritten without it.
import type { Config } from '../config/load.ts';
import type { Context, ConfigContext } from '../context.ts';
import { errorMessage } from '../errors.ts';
import { lockJob } from '../runtime/lock.ts';
import { log } from '../log.ts';
import { selectTargets } from '../targets/index.ts';
import type { Target } from '../targets/target.ts';
import { failedCheck, MANIFEST_FILE, newer, untrusted, type Listed } from './manifest.ts';
import { readCatalog, refreshIndex } from './catalog.ts';
import { neededBases } from './chain.ts';
import { applyPolicy, describePolicy, keepFor, subtractDuration } from './retention.ts';
import { catalogTrust } from './trust.ts';
import { expiredSlices, readSlices, SLICE_FILE } from '../pitr/slices.ts';
import type { PointInTime } from '../plugin/contract.ts';
import { DEFAULT_PITR_KEEP } from '../config/schema.ts';

export interface PruneItem {
  id: string;
  started_at: string;
  reasons: string[];
}

export interface PruneReport {
  job: string;
  target: string;
  policy: string;
  /** ok: the policy was applied; refused: the newest backup failed a check, nothing
   * removed; skipped: no policy applies (unknown tier); failed: a removal failed. */
  status: 'ok' | 'refused' | 'skipped' | 'failed';
  /** Newest first. */
  kept: PruneItem[];
  /** Removed (or, with --dry-run, to be removed), oldest first. */
  removed: PruneItem[];
  /** Backups whose manifest is not signed by a trusted key: left alone, and not counted
   * by the policy (a forged manifest must not become "the newest"). */
  untrusted: PruneItem[];
  /** Point-in-time recovery: the job's oplog slices kept and removed (or to be removed)
   * by its `pitr.keep`. */
  slices?: { keep: string; kept: number; removed: number; removed_until?: string };
  error?: string;
}

const item = (b: Listed, reasons: string[]): PruneItem => ({ id: b.manifest.id, started_at: b.manifest.started_at, reasons });

/** Decides what goes for one job on one target (no I/O). `tier`: the job's tier in the plan, if known. */
export function decide(config: Config, job: string, target: string, backups: Listed[], tier?: string): PruneReport {
  const newest = backups.length ? backups.reduce(newer) : undefined;
  const policy = keepFor(config, job, tier ?? newest?.manifest.tier);
  const report: PruneReport = { job, target, policy: policy.keep ? describePolicy(policy.keep) : '-', status: 'ok', kept: [], removed: [], untrusted: [] };
  const keepAll = (status: PruneReport['status'], why: string) => {
    report.status = status;
    report.kept = backups.map((b) => item(b, [why])).reverse();
    return report;
  };
  if (!newest) return report;
  if (!policy.keep) return keepAll('skipped', `tier "${policy.tier}" is not in the config: no retention applies, nothing is removed`);
  const failed = failedCheck(newest);
  if (failed) return keepAll('refused', `the newest backup ${newest.manifest.id} failed its ${failed.kind} check (${failed.at}): nothing is removed until a newer backup exists`);
  const decisions = applyPolicy(backups.map((b) => ({ id: b.manifest.id, startedAt: new Date(b.manifest.started_at), b })), policy.keep);
  // An incremental backup the policy keeps keeps every backup it depends on (its
  // depends_on is already the whole chain, so one pass is enough).
  const needed = neededBases(decisions.filter((d) => d.keep).map((d) => d.item.b));
  for (const d of decisions) {
    const by = needed.get(d.item.id);
    if (!d.keep && by) report.kept.push(item(d.item.b, [`needed by the incremental backup${by.length > 1 ? 's' : ''} ${by.join(', ')}`]));
    else if (by) report.kept.push(item(d.item.b, [...d.reasons, `needed by ${by.join(', ')}`]));
    else (d.keep ? report.kept : report.removed).push(item(d.item.b, d.reasons));
  }
  report.removed.reverse();
  return report;
}

// Removes what `decide` chose, oldest first; the manifest goes first (the commit point).
async function remove(t: Target, backups: Listed[], report: PruneReport): Promise<void> {
  const dirs = new Map(backups.map((b) => [b.manifest.id, b.dir]));
  const done: PruneItem[] = [];
  try {
    for (const r of report.removed) {
      const dir = dirs.get(r.id)!;
      await t.removeFile(`${dir}/${MANIFEST_FILE}`);
      done.push(r);
      await t.removeDir(dir);
      log.info({ job: report.job, target: t.name, id: r.id, why: r.reasons.join('; ') }, 'backup removed by retention');
    }
  } catch (err) {
    report.status = 'failed';
    report.error = errorMessage(err);
    log.error({ job: report.job, target: t.name }, `retention: ${report.error}`);
    report.kept.push(...report.removed.filter((r) => !done.includes(r)).map((r) => ({ ...r, reasons: [`not removed: ${report.error}`] })));
    report.removed = done;
  }
}

// The job's oplog slices no restore within its pitr.keep needs (agent/pitr/slices.ts
// expiredSlices), slice.json first (its commit point), then the directory.
async function pruneSlices(ctx: ConfigContext, t: Target, job: string, kept: Listed[], pitr: PointInTime, report: PruneReport, dryRun: boolean): Promise<void> {
  const keep = ctx.config.jobs.find((j) => j.name === job)?.pitr?.keep ?? DEFAULT_PITR_KEEP;
  const { slices } = await readSlices(t, ctx.config.host, job, (await catalogTrust(ctx)).keys);
  if (slices.length === 0) return;
  const bases = kept.flatMap((b) => {
    const p = pitr.positionOf(b.manifest.stats);
    return p ? [{ id: b.manifest.id, position: p }] : [];
  });
  const now = new Date();
  // unsigned slices are left alone, as unsigned manifests are
  const expired = expiredSlices(slices.filter((l) => l.signature.state === 'signed'), bases, subtractDuration(now, keep).getTime());
  report.slices = { keep, kept: slices.length - expired.length, removed: expired.length, ...(expired.length ? { removed_until: expired.at(-1)!.slice.until } : {}) };
  if (dryRun) return;
  for (const l of expired) {
    await t.removeFile(`${l.dir}/${SLICE_FILE}`);
    await t.removeDir(l.dir);
  }
  if (expired.length) log.info({ job, target: t.name, removed: expired.length, until: report.slices.removed_until, keep }, 'oplog slices removed by retention');
}

/**
 * Applies retention to one job on the given targets, holding the job's lock (waiting up
 * to lock_wait_seconds) and reading each target's catalog under it.
 */
export async function pruneJob(ctx: ConfigContext, job: string, targets: Target[], o: { dryRun?: boolean; tier?: string; signal?: AbortSignal; insecureUnsigned?: boolean } = {}): Promise<PruneReport[]> {
  const { config } = ctx;
  const jlog = log.child({ job });
  const lock = o.dryRun ? undefined : await lockJob(config.stateDir, config.host, job, jlog, { waitSeconds: config.lock_wait_seconds, signal: o.signal });
  const reports: PruneReport[] = [];
  try {
    for (const t of targets) {
      try {
        const trust = await catalogTrust(ctx);
        const cat = await readCatalog(t, `${config.host}/${job}`, trust);
        const mine = cat.backups.filter((b) => b.manifest.job === job);
        const backups = mine.filter((b) => !untrusted(b, o.insecureUnsigned));
        const report = decide(config, job, t.name, backups, o.tier);
        for (const b of mine.filter((x) => untrusted(x, o.insecureUnsigned))) {
          const why = untrusted(b, o.insecureUnsigned)!;
          report.untrusted.push(item(b, [`${why}: left alone, not counted by the policy`]));
          jlog.warn({ target: t.name, id: b.manifest.id }, `retention: ${why}: left alone`);
        }
        if (report.status === 'refused') jlog.warn({ target: t.name }, report.kept[0]!.reasons[0]!);
        if (!o.dryRun && report.removed.length) {
          await remove(t, backups, report);
          await refreshIndex(t, config.host, job, trust);
        }
        const pitr = ctx.registry[backups[0]?.manifest.plugin ?? '']?.pitr;
        if (pitr && report.status === 'ok') {
          const removed = new Set(report.removed.map((r) => r.id));
          await pruneSlices(ctx, t, job, backups.filter((b) => !removed.has(b.manifest.id)), pitr, report, Boolean(o.dryRun));
        }
        reports.push(report);
      } catch (err) {
        reports.push({ job, target: t.name, policy: '-', status: 'failed', kept: [], removed: [], untrusted: [], error: errorMessage(err) });
        jlog.error({ target: t.name }, `retention: ${errorMessage(err)}`);
      }
    }
  } finally {
    await lock?.release();
  }
  return reports;
}

/** What `snapagent prune` asks for: some jobs (default: every job with backups on the
 * targets), one target (default: all). */
export interface PruneRequest {
  jobs: string[];
  target?: string;
  dryRun?: boolean;
  insecureUnsigned?: boolean;
}

/** Retention of the chosen jobs of this host, one job after the other; stops between
 * jobs once the context is cancelled. */
export async function pruneBackups(ctx: Pick<Context, 'config' | 'registry' | 'signal'>, req: PruneRequest): Promise<PruneReport[]> {
  const targets = selectTargets(ctx.config, req.target);
  const jobs = new Set<string>();
  const trust = await catalogTrust(ctx);
  for (const t of targets) {
    for (const b of (await readCatalog(t, ctx.config.host, trust)).backups) jobs.add(b.manifest.job);
  }
  const chosen = req.jobs.length ? req.jobs : [...jobs].sort();
  const reports: PruneReport[] = [];
  for (const job of chosen) {
    if (ctx.signal.aborted) break;
    reports.push(...(await pruneJob(ctx, job, targets, { dryRun: req.dryRun, signal: ctx.signal, insecureUnsigned: req.insecureUnsigned })));
  }
  return reports;
}
