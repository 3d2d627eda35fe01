// snapagent restore: one job (--job, --id or latest), every job (--all), or the ones
// an operator picks on a terminal (--pick), optionally as of a point in time
// (--before). Reads only the target. A whole-host restore brings the volumes back
// first, then starts the compose stack (config `compose`), then restores each
// datastore into its container once that is ready; every job is verified against its
// manifest by its plugin, and the summary gives each job's recovery time.
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline/promises';
import { ExitCode, UsageError } from '../errors.ts';
import { dataArtifact, type Listed } from '../catalog/manifest.ts';
import { humanBytes } from '../pipeline/progress.ts';
import { parseBefore, pickOne, type HostChoice } from '../restore/restore-choice.ts';
import { restoreBackups, type Outcome, type RestoreSelection } from '../restore/run.ts';
import { openSession, output, setExit, table, type GlobalOptions } from './common.ts';

export interface RestoreOptions extends GlobalOptions, Omit<RestoreSelection, 'before' | 'at' | 'pick' | 't0'> {
  /** ISO 8601; without a zone: local time. */
  before?: string;
  /** ISO 8601: a restore to this point in time (jobs with pitr). */
  at?: string;
  pick?: boolean;
}

export async function restoreCommand(opts: RestoreOptions): Promise<void> {
  const t0 = performance.now();
  const modes = [opts.job !== undefined, Boolean(opts.all), Boolean(opts.pick)].filter(Boolean).length;
  if (modes !== 1) throw new UsageError('say what to restore: --job J [--id ID], --all, or --pick', 'see `snapagent list` for the jobs and ids');
  if ((opts.all || opts.pick) && (opts.toVolume || opts.toContainer || opts.database || opts.collection || opts.renameTo || opts.id)) {
    throw new UsageError('--to-volume, --to-container, --database, --collection, --rename-to and --id need a single --job');
  }
  if (opts.collection && !opts.database) throw new UsageError('--collection needs --database (the collection\'s database)');
  if (opts.renameTo && !opts.database) {
    throw new UsageError('--rename-to needs --database (and --collection to rename one collection)');
  }
  const before = opts.before !== undefined ? parseBefore(opts.before) : undefined;
  if (before && opts.id && opts.id !== 'latest') throw new UsageError('--before and --id exclude each other', '--before picks the newest backup at or before a time; --id names one');
  const at = opts.at !== undefined ? parseBefore(opts.at, '--at') : undefined;
  if (at && (opts.job === undefined || before || (opts.id && opts.id !== 'latest'))) {
    throw new UsageError('--at takes one --job, without --id or --before', 'for every job: --all --before TIME (jobs with pitr are restored to that very time)');
  }
  const s = openSession(opts);
  const { job, id, all, target, host, toVolume, toContainer, database, collection, renameTo, stop, force, restoreUsers, insecureUnsigned } = opts;
  const pick = opts.pick ? askOperator : undefined;
  const r = await restoreBackups(s, { job, id, all, pick, target, host, before, at, toVolume, toContainer, database, collection, renameTo, stop, force, restoreUsers, insecureUnsigned, t0 });
  output(s.json, r, () => summary(r.results, r.skipped, r.stack, r.rto_seconds, r.ok));
  if (!r.ok) setExit(Math.max(ExitCode.failed, ...r.results.map((x) => x.exitCode ?? (x.status === 'ok' ? 0 : ExitCode.failed))));
}

// RTO: seconds from the start of the command until this job's data was restored and
// verified; TOTAL: until the last one.
function summary(results: Outcome[], skipped: HostChoice['skipped'], stack: { seconds: number; error?: string } | undefined, total: number, ok: boolean): string {
  const detail = (r: Outcome) =>
    r.status === 'ok'
      ? [r.destination, r.point_in_time ? `as of ${r.point_in_time.at} (${r.point_in_time.slices} oplog slices replayed after it)` : '', r.bytes !== undefined ? `${humanBytes(r.bytes)} read` : '', `in ${r.duration_seconds.toFixed(1)} s`, r.restarted?.length ? `restarted ${r.restarted.join(',')}` : ''].filter(Boolean).join(', ')
      : `${r.error ?? ''}${r.hint ? ` (next: ${r.hint})` : ''}`;
  const rows = [
    ['JOB', 'PLUGIN', 'ID', 'STATUS', 'RTO', 'DETAIL'],
    ...results.map((r) => [r.job, r.plugin, r.id, r.status, `${r.rto_seconds.toFixed(1)} s`, detail(r)]),
    ...skipped.map((k) => [k.job, k.plugin, '-', 'skipped', '-', `no backup at or before --before (oldest: ${k.oldest})`]),
  ];
  if (results.length > 1 || stack) {
    const done = results.filter((r) => r.status === 'ok').length;
    const extra = stack ? (stack.error ? `; the stack did not start: ${stack.error}` : `; stack started in ${stack.seconds.toFixed(1)} s`) : '';
    rows.push(['TOTAL', '', '', ok ? 'ok' : 'failed', `${total.toFixed(1)} s`, `${done} of ${results.length} jobs restored and verified${extra}`]);
  }
  return table(rows);
}

// Lets an operator on a terminal choose jobs (and optionally an older backup of each).
async function askOperator(latest: Listed[], all: Listed[]): Promise<Listed[]> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) throw new UsageError('--pick needs a terminal', 'use --all or --job J [--id ID] in scripts');
  if (latest.length === 0) return [];
  process.stderr.write(
    table([['#', 'JOB', 'LATEST', 'SIZE', 'COUNT'], ...latest.map((l, i) => [String(i + 1), l.manifest.job, l.manifest.id, humanBytes(dataArtifact(l.manifest).size), String(all.filter((b) => b.manifest.job === l.manifest.job).length)])]) + '\n',
  );
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question('Restore which jobs? (numbers separated by commas, Enter for all, q to quit) ')).trim();
    if (answer === 'q') return [];
    const picked = answer === '' ? latest : answer.split(',').map((n) => latest[Number(n.trim()) - 1]).filter((l): l is Listed => Boolean(l));
    const out: Listed[] = [];
    for (const l of picked) {
      const ids = all.filter((b) => b.manifest.job === l.manifest.job).map((b) => b.manifest.id);
      const id = (await rl.question(`${l.manifest.job}: which backup? [${l.manifest.id}] (one of ${ids.slice(-5).join(', ')}) `)).trim();
      out.push(id ? pickOne(all, l.manifest.job, id) : l);
    }
    return out;
  } finally {
    rl.close();
  }
}
