// snapagent backup: runs the planned jobs (all, --job, --tier) to every (or --target)
// target (agent/backup/run.ts), and prints what each job did.
import { ExitCode } from '../errors.ts';
import { humanBytes, humanDuration } from '../pipeline/progress.ts';
import { slotAt } from '../plan/schedule.ts';
import { runBackups } from '../backup/run.ts';
import { openSession, output, setExit, table, type GlobalOptions } from './common.ts';

export interface BackupOptions extends GlobalOptions {
  job: string[];
  tier?: string;
  target?: string;
}

export async function backupCommand(opts: BackupOptions): Promise<void> {
  const s = openSession(opts);
  const tier = opts.tier ? s.config.tiers[opts.tier] : undefined;
  // `backup --tier T` is what the cron lines run: it belongs to T's current slot.
  const slot = tier ? slotAt(tier.schedule, new Date()) : undefined;
  const run = await runBackups(s, { jobs: opts.job, tier: opts.tier, target: opts.target, slot });
  const { results } = run;
  output(s.json, { ok: run.ok, host: run.host, results, problems: run.problems }, () =>
    results.length === 0
      ? ''
      : table([
          ['JOB', 'STATUS', 'ID', 'SIZE', 'RAW', 'TIME', 'PRUNED', 'DETAIL'],
          ...results.map((r) => [
            r.job,
            r.status,
            r.id ?? '-',
            r.size !== undefined ? humanBytes(r.size) : '-',
            r.raw_size !== undefined ? humanBytes(r.raw_size) : '-',
            humanDuration(r.duration_seconds),
            String(r.retention?.reduce((n, x) => n + x.removed.length, 0) ?? '-'),
            r.status === 'ok' ? r.targets.map((t) => t.target).join(',') : `${r.error ?? ''}${r.hint ? ` (${r.hint})` : ''}`,
          ]),
        ]),
  );
  if (!run.ok) setExit(run.counted.length && results.every((r) => r.status === 'ok') ? ExitCode.usage : ExitCode.failed);
}
