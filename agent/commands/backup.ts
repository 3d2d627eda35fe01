// snapagent backup: runs the planned jobs (all, --job, --tier) to every (or --target) target.
import { ExitCode, UsageError } from '../errors.ts';
import { log } from '../log.ts';
import { reportRun } from '../observe/report.ts';
import { backupJob, type BackupResult } from '../pipeline/backup-job.ts';
import { humanBytes, humanDuration } from '../pipeline/progress.ts';
import { buildPlan, selectJobs } from '../plan.ts';
import { selectTargets } from '../targets/index.ts';
import { openSession, output, setExit, table, type GlobalOptions } from './common.ts';

export interface BackupOptions extends GlobalOptions {
  job: string[];
  tier?: string;
  target?: string;
}

export async function backupCommand(opts: BackupOptions): Promise<void> {
  const s = openSession(opts);
  if (opts.tier && !s.config.tiers[opts.tier]) throw new UsageError(`unknown tier "${opts.tier}"`, `tiers: ${Object.keys(s.config.tiers).join(', ')}`);
  const targets = selectTargets(s.config, opts.target);
  await s.docker.ping();
  const plan = await buildPlan(s.config, s.docker);
  let jobs;
  try {
    jobs = selectJobs(plan, opts.job, opts.tier);
  } catch (err) {
    throw new UsageError((err as Error).message, 'see `snapagent plan`');
  }
  for (const p of plan.problems) log.error({ where: p.where }, p.message);
  if (jobs.length === 0 && plan.problems.length === 0) {
    log.warn('nothing to back up: no job matches (see `snapagent plan`)');
  }
  const results: BackupResult[] = [];
  for (const job of jobs) {
    if (s.signal.aborted) break;
    const r = await backupJob(s.config, s.docker, job, targets, s.progress, s.signal);
    if (r.status === 'ok') log.info({ job: r.job, id: r.id, size: r.size, raw: r.raw_size, seconds: r.duration_seconds }, 'backup ok');
    else log.error({ job: r.job, hint: r.hint }, `backup failed: ${r.error}`);
    results.push(r);
  }
  await reportRun(s.config, results, plan.jobs);
  // Problems elsewhere in the plan do not fail a run that named its jobs.
  const counted = opts.job.length ? [] : plan.problems;
  const ok = results.every((r) => r.status === 'ok') && counted.length === 0 && !s.signal.aborted;
  output(s.json, { ok, host: s.config.host, results, problems: plan.problems }, () =>
    results.length === 0
      ? ''
      : table([
          ['JOB', 'STATUS', 'ID', 'SIZE', 'RAW', 'TIME', 'DETAIL'],
          ...results.map((r) => [
            r.job,
            r.status,
            r.id ?? '-',
            r.size !== undefined ? humanBytes(r.size) : '-',
            r.raw_size !== undefined ? humanBytes(r.raw_size) : '-',
            humanDuration(r.duration_seconds),
            r.status === 'ok' ? r.targets.map((t) => t.target).join(',') : `${r.error ?? ''}${r.hint ? ` (${r.hint})` : ''}`,
          ]),
        ]),
  );
  if (!ok) setExit(counted.length && results.every((r) => r.status === 'ok') ? ExitCode.usage : ExitCode.failed);
}
