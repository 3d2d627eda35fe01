// The daemon (`snapagent run`). One process, one node-cron task per tier (noOverlap); each
// firing is one run of the tier's jobs for that schedule slot (backup ids "<slot>-<tier>").
// On start, a tier whose most recent slot was missed (the agent was down) runs that slot
// once (daemon.catch_up). A tier with `drill.schedule` also gets restore drills of its
// latest backups at those times (queued behind its backups; missed drills are not caught
// up: the next one comes soon enough). SIGTERM/SIGINT abort the running jobs through the context's
// signal (partial uploads removed, stopped containers restarted) and exit 0 afterwards.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import { runBackups, type RunReport } from './backup/run.ts';
import { readCatalog } from './catalog/catalog.ts';
import { catalogTrust } from './catalog/trust.ts';
import type { Context } from './context.ts';
import { errorMessage } from './errors.ts';
import { log, redactedJson } from './log.ts';
import { refreshMetrics } from './observe/report.ts';
import { nextRun, slotAt } from './plan/schedule.ts';
import { runDrills } from './restore/drill.ts';
import { captureLog } from './pitr/capture.ts';
import { buildPlan } from './plan/plan.ts';
import type { Job } from './plugin/contract.ts';
import { selectTargets } from './targets/index.ts';

/** The last slot run per tier, kept in <state_dir>/schedule.json. */
interface ScheduleState {
  format: 'snapagent.schedule/1';
  tiers: Record<string, { slot: string; ok: boolean; finished_at: string }>;
}

const STATE_FILE = 'schedule.json';
let writes = 0;

async function readState(stateDir: string): Promise<ScheduleState> {
  try {
    const s = JSON.parse(await readFile(path.join(stateDir, STATE_FILE), 'utf8')) as ScheduleState;
    if (s.format === 'snapagent.schedule/1' && s.tiers) return s;
    log.warn({ file: path.join(stateDir, STATE_FILE) }, 'ignoring an unknown schedule state file');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ file: path.join(stateDir, STATE_FILE) }, `ignoring an unreadable schedule state file: ${errorMessage(err)}`);
  }
  return { format: 'snapagent.schedule/1', tiers: {} };
}

async function writeState(stateDir: string, state: ScheduleState): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, STATE_FILE);
  const tmp = `${file}.${process.pid}.${++writes}.tmp`; // tiers may finish at the same moment
  await writeFile(tmp, redactedJson(state), { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * One scheduled run of a tier for one slot: what the daemon does when a tier fires or
 * catches up. Returns the run's report (undefined when the run could not start, e.g.
 * Docker was unreachable: the error is logged).
 */
export async function runTier(ctx: Context, tier: string, slot: Date, reason: 'schedule' | 'catch-up'): Promise<RunReport | undefined> {
  const t0 = Date.now();
  log.info({ tier, slot: slot.toISOString(), reason }, 'tier run started');
  try {
    const run = await runBackups(ctx, { tier, slot });
    const failed = run.results.filter((r) => r.status !== 'ok').map((r) => r.job);
    const done = { tier, slot: run.slot, ok: run.ok, jobs: run.results.length, failed, problems: run.counted.length, seconds: (Date.now() - t0) / 1000 };
    if (run.ok) log.info(done, 'tier run finished');
    else log.error(done, 'tier run finished with failures');
    return run;
  } catch (err) {
    log.error({ tier, slot: slot.toISOString() }, `tier run could not start: ${errorMessage(err)}`);
    return undefined;
  }
}

// The slot each tier last ran: the state file, else the newest committed backup of that
// tier on the targets (an agent that ran from cron before, or lost its state dir).
async function lastSlots(ctx: Context, state: ScheduleState): Promise<Map<string, number>> {
  const last = new Map<string, number>();
  for (const [tier, st] of Object.entries(state.tiers)) last.set(tier, Date.parse(st.slot));
  const missing = Object.keys(ctx.config.tiers).filter((t) => !last.has(t));
  if (missing.length === 0) return last;
  for (const target of selectTargets(ctx.config)) {
    try {
      const trust = await catalogTrust(ctx);
      for (const b of (await readCatalog(target, ctx.config.host, trust)).backups) {
        if (b.signature.state !== 'signed') continue;
        const tier = ctx.config.tiers[b.manifest.tier];
        if (!tier || !missing.includes(b.manifest.tier)) continue;
        const slot = slotAt(tier.schedule, new Date(b.manifest.started_at)).getTime();
        last.set(b.manifest.tier, Math.max(last.get(b.manifest.tier) ?? 0, slot));
      }
    } catch (err) {
      log.warn({ target: target.name }, `catch-up: cannot read the target: ${errorMessage(err)}`);
    }
  }
  return last;
}

// The planned jobs with pitr (a plan problem is logged by the runs themselves).
async function pitrJobs(ctx: Context): Promise<Job[]> {
  if (!ctx.config.jobs.some((j) => j.pitr?.enabled)) return [];
  try {
    return (await buildPlan(ctx, ctx.docker)).jobs.filter((j) => j.pitr);
  } catch (err) {
    log.error(`oplog capture not started: cannot plan the jobs: ${errorMessage(err)}`);
    return [];
  }
}

/** The daemon: runs until the context's signal aborts, then waits for the running jobs
 * to clean up. */
export async function runDaemon(ctx: Context): Promise<void> {
  const { config } = ctx;
  cron.setLogger({
    info: (m) => log.debug({ scheduler: true }, m),
    warn: (m) => log.warn({ scheduler: true }, m),
    error: (m, err) => log.error({ scheduler: true, err }, String(m)),
    debug: (m) => log.debug({ scheduler: true }, String(m)),
  });
  const state = await readState(config.stateDir);
  const chains = new Map<string, Promise<void>>();
  const last = await lastSlots(ctx, state);

  // Runs of one tier queue behind each other; a slot already run is not run again.
  const enqueue = (tier: string, slot: Date, reason: 'schedule' | 'catch-up'): Promise<void> => {
    const next = (chains.get(tier) ?? Promise.resolve()).then(async () => {
      if (ctx.signal.aborted || (last.get(tier) ?? -Infinity) >= slot.getTime()) return;
      const run = await runTier(ctx, tier, slot, reason);
      if (!run || ctx.signal.aborted) return; // not run or cut short: a restart catches it up
      last.set(tier, slot.getTime());
      state.tiers[tier] = { slot: slot.toISOString(), ok: run.ok, finished_at: new Date().toISOString() };
      await writeState(config.stateDir, state).catch((err: unknown) => log.error({ tier }, `cannot record the schedule state: ${errorMessage(err)}`));
      log.info({ tier, next_run: nextRun(config.tiers[tier]!.schedule, new Date()).toISOString() }, 'next run');
    });
    chains.set(tier, next);
    return next;
  };

  // Restore drills of a tier's latest backups, queued behind its backups (never beside them).
  const drill = (tier: string): Promise<void> => {
    const next = (chains.get(tier) ?? Promise.resolve()).then(async () => {
      if (ctx.signal.aborted) return;
      try {
        const results = await runDrills(ctx, { tier });
        const failed = results.filter((r) => r.status !== 'ok').map((r) => `${r.job}@${r.target}`);
        (failed.length ? log.error : log.info).call(log, { tier, drills: results.length, failed }, 'tier drills finished');
        if (results.some((r) => r.recorded)) await refreshMetrics(ctx);
      } catch (err) {
        log.error({ tier }, `tier drills could not run: ${errorMessage(err)}`);
      }
    });
    chains.set(tier, next);
    return next;
  };

  const tasks: ScheduledTask[] = Object.entries(config.tiers).flatMap(([tier, t]) => {
    const task = cron.schedule(t.schedule, (ctx) => enqueue(tier, slotAt(t.schedule, ctx.date), 'schedule'), { name: `snapagent-${tier}`, noOverlap: true });
    task.on('execution:overlap', () => log.warn({ tier }, 'slot skipped: the previous run of this tier is still going'));
    if (!t.drill) return [task];
    const drills = cron.schedule(t.drill.schedule, () => drill(tier), { name: `snapagent-${tier}-drill`, noOverlap: true });
    drills.on('execution:overlap', () => log.warn({ tier }, 'drill skipped: the previous drills of this tier are still going'));
    return [task, drills];
  });
  const now = new Date();
  log.info(
    {
      config: config.source,
      host: config.host,
      concurrency: config.concurrency,
      tiers: Object.fromEntries(Object.entries(config.tiers).map(([n, t]) => [n, { schedule: t.schedule, next_run: nextRun(t.schedule, now).toISOString(), ...(t.drill ? { drill: t.drill.schedule, next_drill: nextRun(t.drill.schedule, now).toISOString() } : {}) }])),
    },
    'daemon started',
  );
  if (config.daemon.catch_up) {
    for (const [tier, t] of Object.entries(config.tiers)) {
      const slot = slotAt(t.schedule, now);
      if ((last.get(tier) ?? -Infinity) < slot.getTime()) {
        log.info({ tier, slot: slot.toISOString(), last: last.has(tier) ? new Date(last.get(tier)!).toISOString() : null }, 'missed slot: running it now');
        void enqueue(tier, slot, 'catch-up');
      }
    }
  }

  // Oplog capture of the jobs with pitr (config jobs: the plan's); a backup it asks for
  // (none to replay from yet, or a gap) queues behind the job's tier like any run.
  const captures = (await pitrJobs(ctx)).map((job) =>
    captureLog(ctx, job, async (needed) => {
      let ok = false;
      const next = (chains.get(job.tier) ?? Promise.resolve()).then(async () => {
        if (ctx.signal.aborted) return;
        try {
          if (!(await needed())) return void (ok = true);
          const run = await runBackups(ctx, { jobs: [job.name] });
          ok = run.results.some((r) => r.status === 'ok');
          if (!ok) log.error({ job: job.name }, 'the backup the oplog capture needs failed: point-in-time recovery waits for the next one');
        } catch (err) {
          log.error({ job: job.name }, `the backup the oplog capture needs could not run: ${errorMessage(err)}`);
        }
      });
      chains.set(job.tier, next);
      await next;
      return ok;
    }),
  );

  await new Promise<void>((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener('abort', () => resolve(), { once: true })));
  log.info('daemon stopping: waiting for the running jobs to clean up');
  for (const task of tasks) await task.destroy();
  await Promise.allSettled([...chains.values(), ...captures]);
  log.info('daemon stopped');
}
