// `snapagent verify`: checks the chosen stored backups one after the other, each either
// against its manifest (catalog/verify.ts, verify.json) or, as a drill, by restoring it
// into a throwaway copy (restore/drill.ts, drill.json). Default: the latest backup of
// every job on every target; a verify (not a drill) of a point-in-time job's latest or
// all backups also checks its oplog slices on that target (pitr/verify.ts).
import type { Context } from '../context.ts';
import { UsageError } from '../errors.ts';
import { log } from '../log.ts';
import { refreshMetrics } from '../observe/report.ts';
import { drillBackup } from '../restore/drill.ts';
import { listCatalog, refusedByName } from './list.ts';
import { chooseBackups, verifyBackup, type CheckResult } from './verify.ts';
import { refreshIndexes } from './catalog.ts';
import type { Listed } from './manifest.ts';
import { catalogTrust } from './trust.ts';
import { verifySlices } from '../pitr/verify.ts';

export interface CheckRequest {
  job?: string;
  /** "latest" (default), "all" or one id. */
  id?: string;
  tier?: string;
  target?: string;
  host?: string;
  drill?: boolean;
  image?: string;
  insecureUnsigned?: boolean;
}

export interface CheckReport {
  /** Every chosen backup was checked, and passed. */
  ok: boolean;
  results: CheckResult[];
}

export async function checkBackups(ctx: Context, req: CheckRequest): Promise<CheckReport> {
  const { config } = ctx;
  if (req.tier && !config.tiers[req.tier]) throw new UsageError(`unknown tier "${req.tier}"`, `tiers: ${Object.keys(config.tiers).join(', ')}`);
  const cat = await listCatalog(ctx, req);
  if (!cat.backups.some((b) => b.manifest.id === req.id)) {
    const refused = refusedByName(cat.invalid, req.id, req.job);
    if (refused) throw refused;
  }
  const chosen = chooseBackups(cat.backups, req.id, req.tier);
  if (chosen.length === 0) {
    const what = `no committed backups of host ${req.host ?? config.host}${req.job ? `, job ${req.job}` : ''}${req.tier ? `, tier ${req.tier}` : ''} on ${req.target ?? 'the configured targets'}`;
    if (req.job) throw new UsageError(what, 'see `snapagent list`');
    log.warn(`nothing to verify: ${what}`);
  }
  if (req.image && !req.drill) throw new UsageError('--image needs --drill');
  if (req.drill && chosen.length) await ctx.docker.ping();
  const results: CheckResult[] = [];
  const recorded: Listed[] = [];
  for (const l of chosen) {
    if (ctx.signal.aborted) break;
    const insecure = Boolean(req.insecureUnsigned);
    const r = req.drill ? await drillBackup(ctx, l, req.image, insecure) : await verifyBackup(config, l, ctx.signal, insecure, cat.backups);
    results.push(r);
    if (r.recorded) recorded.push(l);
  }
  let trust: Awaited<ReturnType<typeof catalogTrust>> | undefined;
  // the oplog slices of each point-in-time job checked (not drilled: a drill replays the
  // ones it needs), once per job and target
  if (!req.drill && (req.id === undefined || req.id === 'latest' || req.id === 'all')) {
    const keys = (trust ??= await catalogTrust(ctx)).keys;
    const seen = new Set<string>();
    for (const l of chosen) {
      const job = l.manifest.job;
      const key = `${l.target.name}\0${job}`;
      if (ctx.signal.aborted || seen.has(key) || !config.jobs.find((j) => j.name === job)?.pitr?.enabled) continue;
      seen.add(key);
      results.push(await verifySlices(config, l.target, req.host ?? config.host, job, keys, ctx.signal, Boolean(req.insecureUnsigned)));
    }
  }
  // once per job and target, after all its records: a run over many backups writes each index once
  if (recorded.length) await refreshIndexes(recorded, (trust ??= await catalogTrust(ctx)));
  const ok = results.filter((r) => r.kind !== 'slices').length === chosen.length && results.every((r) => r.exitCode === 0);
  // drill figures (and a failed check) show in the metrics at once, not after the next backup
  if (results.some((r) => r.recorded) && !req.host) await refreshMetrics(ctx);
  return { ok, results };
}
