// snapagent status: is every job backed up recently enough? Per job: age of the last
// success (the least fresh copy among its targets), state, size trend, next scheduled run.
// Exit 0 when every job is fresh, 1 when one is stale, failing or never backed up (or a
// label is wrong): usable as a monitoring or cron check.
import { ExitCode } from '../errors.ts';
import { hostStatus, humanAge, type JobStatus } from '../observe/status.ts';
import { humanBytes } from '../pipeline/progress.ts';
import { openSession, output, setExit, table, type GlobalOptions } from './common.ts';

// "1.2 GiB (+3%)", or for an incremental "22 MiB of 1.2 GiB (+3%)": what the newest run
// stored, of the data it represents, and the change of the data.
function sizeText(s: JobStatus): string {
  if (s.size === undefined) return '-';
  const represented = s.represented_size ?? s.size;
  const text = s.kind === 'incremental' ? `${humanBytes(s.size)} of ${humanBytes(represented)}` : humanBytes(s.size);
  if (s.size_change === undefined) return text;
  const pct = Math.round(s.size_change * 100);
  return `${text} (${pct >= 0 ? '+' : ''}${pct}%)`;
}

export async function statusCommand(opts: GlobalOptions): Promise<void> {
  const s = openSession(opts);
  const report = await hostStatus(s);
  const { ok, jobs, targets, problems } = report;
  const now = new Date(report.now);
  output(s.json, report, () => {
    const lines: string[] = [];
    if (jobs.length === 0) lines.push('no jobs: add jobs to the config or label volumes/containers (see `snapagent plan`)');
    else {
      lines.push(
        table([
          ['JOB', 'TIER', 'LAST OK', 'RESTORABLE TO', 'STATUS', 'SIZE', 'NEXT RUN'],
          ...jobs.map((j) => [
            j.job,
            j.tier,
            j.last_success_age_seconds !== undefined ? `${humanAge(j.last_success_age_seconds)} ago` : 'never',
            j.recovery_point_age_seconds !== undefined ? `${humanAge(j.recovery_point_age_seconds)} ago${j.pitr ? ' (pitr)' : ''}` : '-',
            j.status,
            sizeText(j),
            j.next_run ? `in ${humanAge((Date.parse(j.next_run) - now.getTime()) / 1000)} (${j.next_run})` : '-',
          ]),
        ]),
      );
    }
    for (const j of jobs.filter((j) => j.reason)) lines.push(`${j.job}: ${j.reason}${j.last_hint ? ` (next: ${j.last_hint})` : ''}`);
    for (const t of targets.filter((t) => !t.reachable)) lines.push(`target ${t.name} could not be listed: ${t.error}`);
    for (const p of problems) lines.push(`problem: ${p.where}: ${p.message}`);
    return lines.join('\n');
  });
  if (!ok) setExit(ExitCode.failed);
}
