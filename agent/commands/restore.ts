// snapagent restore: one job (--job, --id or latest), every job (--all), or the ones
// an operator picks on a terminal (--pick). Reads only the target.
import { createInterface } from 'node:readline/promises';
import { ExitCode, UsageError } from '../errors.ts';
import { log } from '../log.ts';
import { newer, type Listed } from '../manifest.ts';
import { humanBytes, humanDuration } from '../pipeline/progress.ts';
import { jobFromManifest, restoreBackup, type RestoreResult } from '../pipeline/restore-job.ts';
import { buildPlan } from '../plan.ts';
import { latestPer } from '../verify.ts';
import { listBackups } from './list.ts';
import { openSession, output, setExit, table, type GlobalOptions } from './common.ts';

export interface RestoreOptions extends GlobalOptions {
  job?: string;
  id?: string;
  target?: string;
  host?: string;
  toVolume?: string;
  toContainer?: string;
  database?: string;
  collection?: string;
  renameTo?: string;
  stop?: boolean;
  force?: boolean;
  all?: boolean;
  pick?: boolean;
}

export async function restoreCommand(opts: RestoreOptions): Promise<void> {
  const modes = [opts.job !== undefined, Boolean(opts.all), Boolean(opts.pick)].filter(Boolean).length;
  if (modes !== 1) throw new UsageError('say what to restore: --job J [--id ID], --all, or --pick', 'see `snapagent list` for the jobs and ids');
  if ((opts.all || opts.pick) && (opts.toVolume || opts.toContainer || opts.database || opts.collection || opts.renameTo || opts.id)) {
    throw new UsageError('--to-volume, --to-container, --database, --collection, --rename-to and --id need a single --job');
  }
  if (opts.collection && !opts.database) throw new UsageError('--collection needs --database (the collection\'s database)');
  if (opts.renameTo && !opts.database) {
    throw new UsageError('--rename-to needs --database (and --collection to rename one collection)');
  }
  const s = openSession(opts);
  const backups = await listBackups(s.config, { target: opts.target, host: opts.host, job: opts.job });
  let chosen: Listed[];
  if (opts.job !== undefined) chosen = [pickOne(backups, opts.job, opts.id)];
  else if (opts.all) chosen = latestPerJob(backups);
  else chosen = await askOperator(latestPerJob(backups), backups);
  if (chosen.length === 0) throw new UsageError(`no committed backups of host ${opts.host ?? s.config.host} on ${opts.target ?? 'the configured targets'}`, 'check `snapagent list` and the config\'s host and targets');
  await s.docker.ping();
  const plan = await buildPlan(s.config, s.docker);
  const results: RestoreResult[] = [];
  for (const l of chosen) {
    if (s.signal.aborted) break;
    const job = jobFromManifest(l, plan.jobs.find((j) => j.name === l.manifest.job));
    log.info({ job: job.name, id: l.manifest.id, target: l.target.name }, 'restore started');
    const r = await restoreBackup(s.config, s.docker, l, job, { toVolume: opts.toVolume, toContainer: opts.toContainer, database: opts.database, collection: opts.collection, renameTo: opts.renameTo, stop: Boolean(opts.stop), force: Boolean(opts.force) }, s.progress, s.signal);
    if (r.status === 'ok') log.info({ job: r.job, id: r.id, destination: r.destination, seconds: r.duration_seconds }, 'restore ok');
    else log.error({ job: r.job, id: r.id, hint: r.hint }, `restore failed: ${r.error}`);
    results.push(r);
  }
  const ok = results.length === chosen.length && results.every((r) => r.status === 'ok');
  output(s.json, { ok, results }, () =>
    table([
      ['JOB', 'ID', 'STATUS', 'INTO', 'READ', 'TIME', 'DETAIL'],
      ...results.map((r) => [r.job, r.id, r.status, r.destination ?? '-', r.bytes !== undefined ? humanBytes(r.bytes) : '-', humanDuration(r.duration_seconds), r.status === 'ok' ? (r.restarted?.length ? `restarted ${r.restarted.join(',')}` : '') : `${r.error ?? ''}${r.hint ? ` (${r.hint})` : ''}`]),
    ]),
  );
  if (!ok) setExit(Math.max(ExitCode.failed, ...results.map((r) => r.exitCode ?? (r.status === 'ok' ? 0 : ExitCode.failed))));
}

function pickOne(backups: Listed[], job: string, id = 'latest'): Listed {
  const mine = backups.filter((b) => b.manifest.job === job);
  if (mine.length === 0) throw new UsageError(`no committed backup of job "${job}"`, 'see `snapagent list` for what the targets hold');
  if (id === 'latest') return mine.reduce(newer);
  const hit = mine.find((b) => b.manifest.id === id);
  if (!hit) throw new UsageError(`job "${job}" has no committed backup "${id}"`, `latest is ${mine.reduce(newer).manifest.id}; see \`snapagent list --job ${job}\``);
  return hit;
}

function latestPerJob(backups: Listed[]): Listed[] {
  return latestPer(backups, (b) => b.manifest.job);
}

// Lets an operator on a terminal choose jobs (and optionally an older backup of each).
async function askOperator(latest: Listed[], all: Listed[]): Promise<Listed[]> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) throw new UsageError('--pick needs a terminal', 'use --all or --job J [--id ID] in scripts');
  if (latest.length === 0) return [];
  process.stderr.write(
    table([['#', 'JOB', 'LATEST', 'SIZE', 'COUNT'], ...latest.map((l, i) => [String(i + 1), l.manifest.job, l.manifest.id, humanBytes(l.manifest.artifacts[0]!.size), String(all.filter((b) => b.manifest.job === l.manifest.job).length)])]) + '\n',
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
