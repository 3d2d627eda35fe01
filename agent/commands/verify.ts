// snapagent verify: re-reads stored backups and checks them against their manifests
// (verify.json); with --drill, restores them into throwaway copies and compares
// (drill.json). Default: the latest backup of every job on every target.
import { refreshMetrics } from '../observe/report.ts';
import { UsageError } from '../errors.ts';
import { log } from '../log.ts';
import { drillBackup } from '../restore/drill.ts';
import { humanDuration } from '../pipeline/progress.ts';
import { chooseBackups, verifyBackup, type CheckResult } from '../catalog/verify.ts';
import { listCatalog, refusedByName } from './list.ts';
import { ExitCode, openSession, output, setExit, table, type GlobalOptions } from './common.ts';

export interface VerifyOptions extends GlobalOptions {
  job?: string;
  id?: string;
  tier?: string;
  target?: string;
  host?: string;
  drill?: boolean;
  image?: string;
  insecureUnsigned?: boolean;
}

export async function verifyCommand(opts: VerifyOptions): Promise<void> {
  const s = openSession(opts);
  if (opts.tier && !s.config.tiers[opts.tier]) throw new UsageError(`unknown tier "${opts.tier}"`, `tiers: ${Object.keys(s.config.tiers).join(', ')}`);
  const cat = await listCatalog(s.config, opts);
  if (!cat.backups.some((b) => b.manifest.id === opts.id)) {
    const refused = refusedByName(cat.invalid, opts.id, opts.job);
    if (refused) throw refused;
  }
  const chosen = chooseBackups(cat.backups, opts.id, opts.tier);
  if (chosen.length === 0) {
    const what = `no committed backups of host ${opts.host ?? s.config.host}${opts.job ? `, job ${opts.job}` : ''}${opts.tier ? `, tier ${opts.tier}` : ''} on ${opts.target ?? 'the configured targets'}`;
    if (opts.job) throw new UsageError(what, 'see `snapagent list`');
    log.warn(`nothing to verify: ${what}`);
  }
  if (opts.image && !opts.drill) throw new UsageError('--image needs --drill');
  if (opts.drill && chosen.length) await s.docker.ping();
  const results: CheckResult[] = [];
  for (const l of chosen) {
    if (s.signal.aborted) break;
    const insecure = Boolean(opts.insecureUnsigned);
    results.push(opts.drill ? await drillBackup(s.config, s.docker, l, s.progress, s.signal, opts.image, insecure) : await verifyBackup(s.config, l, s.signal, insecure));
  }
  const ok = results.length === chosen.length && results.every((r) => r.exitCode === 0);
  // drill figures (and a failed check) show in the metrics at once, not after the next backup
  if (results.some((r) => r.recorded) && !opts.host) await refreshMetrics(s.config);
  output(s.json, { ok, results }, () =>
    table([
      ['TARGET', 'JOB', 'ID', 'CHECK', 'STATUS', 'TIME', 'RTO', 'DETAIL'],
      ...results.map((r) => [r.target, r.job, r.id, r.kind, r.status, humanDuration(r.duration_seconds), r.rto_seconds !== undefined ? `${r.rto_seconds.toFixed(1)}s` : '-', r.errors.join('; ') || (r.recorded ? 'recorded' : '')]),
    ]),
  );
  if (!ok) setExit(Math.max(ExitCode.failed, ...results.map((r) => r.exitCode)));
}
