// snapagent prune: removes old backups by each job's retention policy
// (agent/catalog/prune.ts says what is never removed); --dry-run shows what would go and why.
import { pruneBackups } from '../catalog/prune.ts';
import { ExitCode, openSession, output, setExit, table, type GlobalOptions } from './common.ts';

export interface PruneOptions extends GlobalOptions {
  job: string[];
  target?: string;
  dryRun?: boolean;
  insecureUnsigned?: boolean;
}

export async function pruneCommand(opts: PruneOptions): Promise<void> {
  const s = openSession(opts);
  const reports = await pruneBackups(s, { jobs: opts.job, target: opts.target, dryRun: opts.dryRun, insecureUnsigned: opts.insecureUnsigned });
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
