// snapagent restore: one job (--job, --id or latest), every job (--all), or the ones
// an operator picks on a terminal (--pick), optionally as of a point in time
// (--before). Reads only the target. A whole-host restore brings the volumes back
// first, then starts the compose stack (config `compose`), then restores each
// datastore into its container once that is ready; every job is verified against its
// manifest by its plugin, and the summary gives each job's recovery time.
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline/promises';
import { errorMessage, ExitCode, IntegrityError, SnapError, UsageError } from '../errors.ts';
import { log } from '../log.ts';
import { untrusted, UNTRUSTED_HINT, type Listed } from '../catalog/manifest.ts';
import { humanBytes } from '../pipeline/progress.ts';
import { restoreBackup, type RestoreResult } from '../restore/restore-job.ts';
import { jobFromManifest } from '../restore/restore-trust.ts';
import { buildPlan, type Plan } from '../plan/plan.ts';
import { latestPerJob, parseBefore, pickOne, restoreOrder, type HostChoice } from '../restore/restore-choice.ts';
import { startStack, waitReady } from '../restore/stack.ts';
import { listCatalog, refusedByName } from './list.ts';
import { openSession, output, setExit, table, type GlobalOptions, type Session } from './common.ts';

export interface RestoreOptions extends GlobalOptions {
  job?: string;
  id?: string;
  target?: string;
  host?: string;
  before?: string;
  toVolume?: string;
  toContainer?: string;
  database?: string;
  collection?: string;
  renameTo?: string;
  stop?: boolean;
  force?: boolean;
  all?: boolean;
  pick?: boolean;
  restoreUsers?: boolean;
  /** Accept backups whose manifest has no signature (made before signing), with a warning. */
  insecureUnsigned?: boolean;
}

type Outcome = RestoreResult & { plugin: string; rto_seconds: number };

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
  const s = openSession(opts);
  const cat = await listCatalog(s.config, { target: opts.target, host: opts.host, job: opts.job });
  const backups = cat.backups;
  if (opts.job !== undefined && !backups.some((b) => b.manifest.job === opts.job && b.manifest.id === opts.id)) {
    const refused = refusedByName(cat.invalid, opts.id, opts.job);
    if (refused) throw refused;
  }
  let choice: HostChoice;
  if (opts.job !== undefined) choice = { chosen: [pickOne(backups, opts.job, opts.id, before)], skipped: [] };
  else if (opts.all) choice = latestPerJob(backups, before);
  else choice = { chosen: await askOperator(latestPerJob(backups, before).chosen, backups), skipped: [] };
  for (const k of choice.skipped) log.warn({ job: k.job, oldest: k.oldest }, `job ${k.job} has no backup at or before ${before!.toISOString()}: skipped`);
  if (choice.chosen.length === 0) {
    throw new UsageError(
      `no committed backups of host ${opts.host ?? s.config.host}${before ? ` at or before ${before.toISOString()}` : ''} on ${opts.target ?? 'the configured targets'}`,
      'check `snapagent list` and the config\'s host and targets',
    );
  }
  await s.docker.ping();
  let plan = await buildPlan(s.config, s.docker);
  const results: Outcome[] = [];
  let stack: { seconds: number; error?: string } | undefined;
  let stackError: SnapError | undefined;
  const run = async (list: Listed[]) => {
    for (const l of list) if (!s.signal.aborted) results.push(await restoreOne(s, l, plan, opts, stackError, t0));
  };
  if (opts.job !== undefined) await run(choice.chosen);
  else {
    // the whole host: volumes, then the stack (its apps start on restored data), then
    // the datastores, ordered with the plan that sees the stack's containers
    await run(restoreOrder(choice.chosen.filter((l) => l.manifest.plugin === 'volume'), plan.jobs));
    if (s.config.compose && !s.signal.aborted) ({ stack, plan, stackError } = await bringUpStack(s, plan));
    await run(restoreOrder(choice.chosen.filter((l) => l.manifest.plugin !== 'volume'), plan.jobs));
  }
  const total = (performance.now() - t0) / 1000;
  const ok = results.length === choice.chosen.length && results.every((r) => r.status === 'ok') && !stack?.error;
  output(s.json, { ok, host: opts.host ?? s.config.host, before: before?.toISOString(), results, skipped: choice.skipped, stack, rto_seconds: round(total) }, () =>
    summary(results, choice.skipped, stack, total, ok),
  );
  if (!ok) setExit(Math.max(ExitCode.failed, ...results.map((r) => r.exitCode ?? (r.status === 'ok' ? 0 : ExitCode.failed))));
}

// Starts the compose stack once, then plans again: the datastore jobs' containers exist now.
async function bringUpStack(s: Session, plan: Plan): Promise<{ stack: { seconds: number; error?: string }; plan: Plan; stackError?: SnapError }> {
  const t = performance.now();
  try {
    await startStack(s.config.compose!, s.config.docker.socket, log, s.signal);
    const seconds = round((performance.now() - t) / 1000);
    log.info({ seconds }, 'stack started');
    return { stack: { seconds }, plan: await buildPlan(s.config, s.docker) };
  } catch (err) {
    const e = err instanceof SnapError ? err : new SnapError(errorMessage(err));
    log.error({ hint: e.hint }, e.message);
    return { stack: { seconds: round((performance.now() - t) / 1000), error: e.message }, plan, stackError: e };
  }
}

async function restoreOne(s: Session, l: Listed, plan: Plan, opts: RestoreOptions, stackError: SnapError | undefined, t0: number): Promise<Outcome> {
  const m = l.manifest;
  const finish = (r: RestoreResult): Outcome => ({ ...r, plugin: m.plugin, rto_seconds: round((performance.now() - t0) / 1000) });
  const failed = (err: SnapError): Outcome => {
    log.error({ job: m.job, id: m.id, hint: err.hint }, `restore failed: ${err.message}`);
    return finish({ job: m.job, id: m.id, target: l.target.name, status: 'failed', duration_seconds: 0, error: err.message, hint: err.hint, exitCode: err.exitCode });
  };
  // a manifest anyone with access to the target could have written gives no instructions
  const why = untrusted(l, opts.insecureUnsigned);
  if (why) return failed(new IntegrityError(`not restored: ${why}`, UNTRUSTED_HINT));
  if (l.signature.state === 'unsigned') log.warn({ job: m.job, id: m.id, target: l.target.name }, `--insecure-unsigned: trusting the unsigned manifest of backup ${m.job}/${m.id}`);
  if (stackError) return failed(new SnapError(`not restored: ${stackError.message}`, { hint: stackError.hint }));
  const contested = plan.contested.get(m.job);
  if (contested) return failed(new SnapError(`not restored: ${contested.message}`, { hint: `claimants: ${contested.where}`, exitCode: ExitCode.usage }));
  let job;
  try {
    job = jobFromManifest(s.config, l, plan.jobs.find((j) => j.name === m.job), { toVolume: opts.toVolume, toContainer: opts.toContainer });
  } catch (err) {
    return failed(err instanceof SnapError ? err : new SnapError(errorMessage(err)));
  }
  const container = opts.toContainer ?? job.container;
  if (container && m.plugin !== 'volume') {
    try {
      await waitReady(s.docker, container, s.config.compose?.wait_seconds ?? 600, log.child({ job: job.name }), s.signal);
    } catch (err) {
      return failed(err instanceof SnapError ? err : new SnapError(errorMessage(err)));
    }
  }
  log.info({ job: job.name, id: m.id, target: l.target.name }, 'restore started');
  const r = await restoreBackup(s.config, s.docker, l, job, { toVolume: opts.toVolume, toContainer: opts.toContainer, database: opts.database, collection: opts.collection, renameTo: opts.renameTo, stop: Boolean(opts.stop), force: Boolean(opts.force), restoreUsers: Boolean(opts.restoreUsers) }, s.progress, s.signal);
  if (r.status === 'ok') log.info({ job: r.job, id: r.id, destination: r.destination, seconds: r.duration_seconds }, 'restore ok');
  else log.error({ job: r.job, id: r.id, hint: r.hint }, `restore failed: ${r.error}`);
  return finish(r);
}

const round = (n: number) => Math.round(n * 10) / 10;

// RTO: seconds from the start of the command until this job's data was restored and
// verified; TOTAL: until the last one.
function summary(results: Outcome[], skipped: HostChoice['skipped'], stack: { seconds: number; error?: string } | undefined, total: number, ok: boolean): string {
  const detail = (r: Outcome) =>
    r.status === 'ok'
      ? [r.destination, r.bytes !== undefined ? `${humanBytes(r.bytes)} read` : '', `in ${r.duration_seconds.toFixed(1)} s`, r.restarted?.length ? `restarted ${r.restarted.join(',')}` : ''].filter(Boolean).join(', ')
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
