// snapagent prune: applies each job's retention policy (agent/catalog/retention.ts) to what the
// targets hold for this host, per job and per target, on committed backups only. Never
// removed: the newest committed backup, anything without a valid snapagent manifest, and
// anything of a job whose newest backup failed its latest verify or drill. Manifests not
// signed by a trusted key take no part: never removed, never the newest, reported (exit 3). A backup is
// removed manifest first (so a prune killed half-way leaves an uncommitted directory,
// which the next backup of the job cleans up), then its whole directory.
import type { Config } from '../config/load.ts';
import type { KeepPolicy } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { lockJob } from '../runtime/lock.ts';
import { log } from '../log.ts';
import { failedCheck, MANIFEST_FILE, newer, readCatalog, untrusted, type Listed } from '../catalog/manifest.ts';
import { catalogTrust } from '../catalog/trust.ts';
import { applyPolicy, describePolicy } from '../catalog/retention.ts';
import { selectTargets } from '../targets/index.ts';
import type { Target } from '../targets/target.ts';
import { ExitCode, openSession, output, setExit, table, type GlobalOptions } from './common.ts';

export interface PruneOptions extends GlobalOptions {
  job: string[];
  target?: string;
  dryRun?: boolean;
  insecureUnsigned?: boolean;
}

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
  error?: string;
}

/** The job's policy: its own `keep` in the config, else its tier's (config job, else `tier`). */
export function keepFor(config: Config, job: string, tier: string | undefined): { keep?: KeepPolicy; tier?: string } {
  const j = config.jobs.find((x) => x.name === job);
  if (j?.keep) return { keep: j.keep, tier: j.tier };
  const t = j?.tier ?? tier;
  return { keep: t ? config.tiers[t]?.keep : undefined, tier: t };
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
  for (const d of decisions) (d.keep ? report.kept : report.removed).push(item(d.item.b, d.reasons));
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

/**
 * Applies retention to one job on the given targets, holding the job's lock (waiting up
 * to lock_wait_seconds) and reading each target's catalog under it.
 */
export async function pruneJob(config: Config, job: string, targets: Target[], o: { dryRun?: boolean; tier?: string; signal?: AbortSignal; insecureUnsigned?: boolean } = {}): Promise<PruneReport[]> {
  const jlog = log.child({ job });
  const lock = o.dryRun ? undefined : await lockJob(config.stateDir, config.host, job, jlog, { waitSeconds: config.lock_wait_seconds, signal: o.signal });
  const reports: PruneReport[] = [];
  try {
    for (const t of targets) {
      try {
        const cat = await readCatalog(t, `${config.host}/${job}`, await catalogTrust(config));
        const mine = cat.backups.filter((b) => b.manifest.job === job);
        const backups = mine.filter((b) => !untrusted(b, o.insecureUnsigned));
        const report = decide(config, job, t.name, backups, o.tier);
        for (const b of mine.filter((x) => untrusted(x, o.insecureUnsigned))) {
          const why = untrusted(b, o.insecureUnsigned)!;
          report.untrusted.push(item(b, [`${why}: left alone, not counted by the policy`]));
          jlog.warn({ target: t.name, id: b.manifest.id }, `retention: ${why}: left alone`);
        }
        if (report.status === 'refused') jlog.warn({ target: t.name }, report.kept[0]!.reasons[0]!);
        if (!o.dryRun && report.removed.length) await remove(t, backups, report);
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

export async function pruneCommand(opts: PruneOptions): Promise<void> {
  const s = openSession(opts);
  const targets = selectTargets(s.config, opts.target);
  const jobs = new Set<string>();
  const trust = await catalogTrust(s.config);
  for (const t of targets) {
    for (const b of (await readCatalog(t, s.config.host, trust)).backups) jobs.add(b.manifest.job);
  }
  const chosen = opts.job.length ? opts.job : [...jobs].sort();
  const reports: PruneReport[] = [];
  for (const job of chosen) {
    if (s.signal.aborted) break;
    reports.push(...(await pruneJob(s.config, job, targets, { dryRun: opts.dryRun, signal: s.signal, insecureUnsigned: opts.insecureUnsigned })));
  }
  const ok = reports.every((r) => (r.status === 'ok' || r.status === 'skipped') && r.untrusted.length === 0) && !s.signal.aborted;
  const dry = Boolean(opts.dryRun);
  output(s.json, { ok, dry_run: dry, host: s.config.host, jobs: reports }, () => {
    if (reports.every((r) => r.kept.length + r.removed.length + r.untrusted.length === 0)) return `no committed backups of host ${s.config.host}${opts.job.length ? ` for ${opts.job.join(', ')}` : ''} on ${opts.target ?? 'any target'}`;
    const rows = reports.flatMap((r) => [
      ...r.removed.map((i) => [r.target, r.job, i.id, dry ? 'would remove' : 'removed', i.reasons.join('; ')]),
      ...r.kept.map((i) => [r.target, r.job, i.id, 'keep', i.reasons.join('; ')]),
      ...r.untrusted.map((i) => [r.target, r.job, i.id, 'refused', i.reasons.join('; ')]),
    ]);
    const gone = reports.reduce((n, r) => n + r.removed.length, 0);
    const lines = [table([['TARGET', 'JOB', 'ID', 'ACTION', 'WHY'], ...rows]), ''];
    lines.push(dry ? `dry run: ${gone} backup(s) would be removed; run without --dry-run to remove them` : `${gone} backup(s) removed`);
    for (const r of reports.filter((x) => x.error)) lines.push(`failed: ${r.target} ${r.job}: ${r.error}`);
    return lines.join('\n');
  });
  if (reports.some((r) => r.status === 'failed') || s.signal.aborted) setExit(ExitCode.failed);
  else if (reports.some((r) => r.untrusted.length)) setExit(ExitCode.integrity);
  else if (reports.some((r) => r.status === 'refused')) setExit(ExitCode.refused);
}
