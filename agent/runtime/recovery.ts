// What a killed agent leaves behind, and how the next start repairs it. Every command
// begins with recoverKilledRuns(): for each process record whose process is gone
// (agent/runtime/inflight.ts), it
//   - starts again the containers that run stopped for a consistent copy (warning),
//   - records the backups it was running as failed ("killed") in their run state, and
//     rewrites the metrics and notifies like any failed run; their partial files on the
//     targets were never listed (no manifest) and go with the job's next backup,
//   - removes its helper and drill containers, drill volumes and temporary files (first:
//     a restore's helper may still be writing),
//   - removes the staging directory of each restore killed before it changed live data
//     (through a helper container, or a command in the datastore's container: never a
//     path opened from the host), before the containers stopped for it start again,
//   - hands what a plugin recorded it would have to undo (noteRepair: e.g. a Cassandra
//     snapshot, a staged Elasticsearch repository) back to the plugin's repairKilled, for
//     every backup and each restore killed before it changed live data,
//   - leaves a note for each restore it was running, which `status` reports until the
//     job's next successful restore: that the live data is as it was (staging removed),
//     or that it may be partly restored.
// A record is claimed (renamed) before it is acted on: two agents starting at once never
// repair the same run twice. What cannot be done now (Docker unreachable, a datastore's
// container not running) stays recorded for the next start.
import { readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { openDir, removeFifoDirs } from '../docker/fifo.ts';
import { loadConfig, type Config } from '../config/load.ts';
import { prepareStateDir } from '../config/state-dir.ts';
import { connectDocker, type DockerClient } from '../docker/client.ts';
import { errorMessage } from '../errors.ts';
import { interruptedRestores, openProcessRecord, otherRecords, procSchema, procsDir, processAlive, writeInterrupted, type ProcRecord, type Stage, type Work } from './inflight.ts';
import { writeFileAtomic } from '../atomic-file.ts';
import { BACKUP_ID } from '../catalog/manifest.ts';
import { log, redactedJson, runId } from '../log.ts';
import { reportRun } from '../observe/report.ts';
import { readJobState } from '../observe/run-state.ts';
import { buildPlan, type Plan } from '../plan/plan.ts';
import type { BackupResult } from '../backup/backup-job.ts';
import type { Context } from '../context.ts';
import type { PluginContext, PluginRegistry } from '../plugin/contract.ts';

/**
 * Runs before every command (cli.ts): records this process in the state dir and repairs
 * what killed runs left. A config that does not load, or a state dir that is refused
 * (config/state-dir.ts), is left to the command to report (openSession checks it again);
 * a repair that fails is logged, never fatal.
 */
export async function startProcess(configFile: string | undefined, command: string, registry: PluginRegistry): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(configFile);
    prepareStateDir(config.stateDir, process.getuid!());
  } catch {
    return;
  }
  openProcessRecord(config.stateDir, config.host, command);
  const docker = connectDocker({ socket: config.docker.socket, transfer: 'attach', pipeDir: path.join(config.stateDir, 'pipes') });
  await recoverKilledRuns({ config, docker, registry }).catch((err: unknown) => log.warn(`repairing after killed runs: ${errorMessage(err)}`));
}

export async function recoverKilledRuns(ctx: Pick<Context, 'config' | 'docker' | 'registry'>): Promise<void> {
  const { config } = ctx;
  for (const { file, record } of await otherRecords(config.stateDir)) {
    if (!record) {
      log.warn({ file }, 'removing an unreadable process record');
      await rm(file, { force: true });
      continue;
    }
    if (processAlive(record)) continue;
    const claimed = await claim(config.stateDir, file);
    if (claimed) await repair(ctx, record, claimed);
  }
  for (const r of await interruptedRestores(config.stateDir, config.host)) {
    log.warn({ job: r.job, id: r.id, destination: r.destination, since: r.since }, interruptedMessage(r));
  }
}

export function interruptedMessage(r: { job: string; id?: string; destination?: string; since: string; pid: number; untouched?: boolean }): string {
  const what = r.untouched
    ? 'before it changed the data there (its staging directory was removed): the data is as it was before the restore'
    : 'the data there may be partly restored';
  return `the restore of job ${r.job}${r.id ? ` (backup ${r.id})` : ''} into ${r.destination ?? 'its datastore'}, started ${r.since}, was interrupted (agent pid ${r.pid} killed): ${what}; run \`snapagent restore --job ${r.job}${r.id ? ` --id ${r.id}` : ''}\` again`;
}

// "<run>.json" (or an abandoned "<run>.json.recovering-<other>") becomes
// "<run>.json.recovering-<us>"; undefined when another live agent is on it.
async function claim(stateDir: string, file: string): Promise<string | undefined> {
  const m = /^(.*\.json)(?:\.recovering-([0-9a-f]+))?$/.exec(path.basename(file))!;
  if (m[2]) {
    const claimer = (await otherRecords(stateDir)).find((o) => path.basename(o.file) === `${m[2]}.json`)?.record;
    if (claimer && processAlive(claimer)) return undefined;
  }
  const to = path.join(procsDir(stateDir), `${m[1]}.recovering-${runId}`);
  try {
    await rename(file, to);
    return to;
  } catch {
    return undefined; // claimed by another agent meanwhile
  }
}

async function repair(ctx: Pick<Context, 'config' | 'docker' | 'registry'>, rec: ProcRecord, claimed: string): Promise<void> {
  const { config, docker } = ctx;
  const who = `pid ${rec.pid}, run ${rec.run}`;
  log.warn({ killed_run: rec.run, pid: rec.pid, command: rec.command, since: rec.since }, `an earlier agent run was killed (${who}, \`snapagent ${rec.command}\` started ${rec.since}): repairing what it left`);
  await removeLeftovers(config, docker, rec.run);
  const restores = rec.work.filter((w) => w.kind === 'restore');
  const staged = new Map<Work, boolean>();
  for (const w of restores) if (w.stage && !w.live) staged.set(w, await removeStage(config, docker, w, w.stage));
  const left = await restartStopped(docker, rec, who);
  // After the restarts: what a plugin undoes usually needs its datastore running.
  const repaired = new Map<Work, boolean>();
  const plan = once(() => buildPlan(ctx, docker).catch(() => undefined));
  for (const w of rec.work) if (w.repair && pluginRepairs(w)) repaired.set(w, await repairByPlugin(ctx, rec, w, w.repair, plan));
  const backups = rec.work.filter((w) => w.kind === 'backup');
  const results: BackupResult[] = [];
  for (const w of backups) {
    const prev = await readJobState(config.stateDir, rec.host, w.job);
    if (prev && prev.last_attempt_at >= w.since) continue; // a later run was recorded meanwhile
    const error = `killed: the agent (${who}) was killed during this backup${w.id ? ` (${w.id})` : ''}; what it had not committed is discarded`;
    log.error({ job: w.job, id: w.id }, `backup of ${w.job}: ${error}`);
    results.push({ job: w.job, plugin: w.plugin, tier: w.tier, status: 'failed', started_at: w.since, finished_at: w.since, duration_seconds: 0, id: w.id, targets: [], error, hint: 'its partial files are removed by the next backup of this job: run it again' });
  }
  if (results.length) await reportRun({ config: { ...config, host: rec.host }, registry: ctx.registry }, results, [], rec.run);
  for (const w of restores) {
    const untouched = restoreUndone(w, staged.get(w), repaired.get(w));
    const note = { format: 'snapagent.interrupted-restore/1' as const, host: rec.host, job: w.job, id: w.id, destination: w.destination, since: w.since, run: rec.run, pid: rec.pid, found_at: new Date().toISOString(), ...(untouched ? { untouched } : {}) };
    await writeInterrupted(config.stateDir, note).catch((err: unknown) => log.error({ job: w.job }, `cannot record the interrupted restore: ${errorMessage(err)}`));
  }
  const unfinished = rec.work.flatMap((w) => {
    const stage = staged.get(w) === false ? w.stage : undefined;
    const repair = repaired.get(w) === false ? w.repair : undefined;
    return stage || repair ? [{ ...w, stage, repair }] : [];
  });
  if (left.length || unfinished.length) {
    // Docker or a datastore did not answer: keep what is still to do for the next start
    // (a backup kept here is not reported again: its failure is recorded by now).
    const rest: ProcRecord = procSchema.parse({ ...rec, work: unfinished, stopped: left });
    await writeFileAtomic(path.join(procsDir(config.stateDir), `${rec.run}.json`), redactedJson(rest));
  }
  await rm(claimed, { force: true });
}

/** Whether the plugin's repairKilled gets what `w` recorded: a backup's always; a
 * restore's only before it began to change live data (after, the re-run that the note
 * asks for stages again and cleans up when it ends). */
export function pluginRepairs(w: Pick<Work, 'kind' | 'live'>): boolean {
  return w.kind === 'backup' || !w.live;
}

/** Whether a killed restore left the live data as it was: killed before the change
 * began, with what it staged removed (`staged`) and what its plugin recorded undone
 * (`repaired`); undefined for either means it had none. */
export function restoreUndone(w: Pick<Work, 'live' | 'stage' | 'repair'>, staged: boolean | undefined, repaired: boolean | undefined): boolean {
  return !w.live && Boolean(w.stage || w.repair) && staged !== false && repaired !== false;
}

function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= f());
}

// Hands what the plugin recorded to its repairKilled, with the job as the current plan
// has it. True when done (or the plugin cannot repair: warned), false to try again at the
// next start.
async function repairByPlugin(ctx: Pick<Context, 'config' | 'docker' | 'registry'>, rec: ProcRecord, w: Work, data: NonNullable<Work['repair']>, plan: () => Promise<Plan | undefined>): Promise<boolean> {
  const what = `the killed ${w.kind} of job ${w.job}${w.id ? ` (${w.id})` : ''}`;
  const plugin = ctx.registry[w.plugin];
  if (!plugin?.repairKilled) {
    log.warn({ job: w.job, plugin: w.plugin }, `${what} recorded something to undo, but this agent's ${w.plugin} plugin does not repair killed runs: left as it is`);
    return true;
  }
  const pctx: PluginContext = { docker: ctx.docker, log: log.child({ job: w.job }), signal: new AbortController().signal, helperImage: ctx.config.docker.helper_image, host: rec.host };
  try {
    const planned = (await plan())?.jobs.find((j) => j.name === w.job && j.plugin === w.plugin);
    const id = w.id && BACKUP_ID.test(w.id) ? w.id : undefined;
    return await plugin.repairKilled(pctx, { kind: w.kind, job: w.job, id, data, planned });
  } catch (err) {
    log.error({ job: w.job }, `could not undo now what ${what} left: ${errorMessage(err)} (the next start tries again)`);
    return false;
  }
}

// In reverse stop order, like a normal restart; a container gone or already running is
// left alone. Returns those that could not be checked or started.
async function restartStopped(docker: DockerClient, rec: ProcRecord, who: string): Promise<ProcRecord['stopped']> {
  const left: ProcRecord['stopped'] = [];
  for (const s of [...rec.stopped].reverse()) {
    try {
      const c = await docker.inspectContainer(s.id);
      if (!c) log.warn({ container: s.name }, `container ${s.name}, stopped by the killed run, no longer exists`);
      else if (!c.running) {
        await docker.startContainer(s.id);
        log.warn({ container: s.name, stopped_at: s.at }, `restarted container ${s.name}: the killed run (${who}) had stopped it at ${s.at} for a consistent copy`);
      }
    } catch (err) {
      left.push(s);
      log.error({ container: s.name }, `container ${s.name} was stopped by a killed run and could not be restarted now: ${errorMessage(err)} (the next start tries again; or: docker start ${s.name})`);
    }
  }
  return left.reverse();
}

const STAGE_MOUNT = '/snapagent/volume';

// $1: the mounted volume, $2: the staging directory's name in its root. The root's mtime
// is kept: the restore's extract script set it back after creating the directory.
const REMOVE_STAGE = `set -eu
[ -e "$1/$2" ] || exit 0
mtime=$(stat -c %y -- "$1")
rm -rf -- "$1/$2"
touch -d "$mtime" -- "$1"`;

// Removes the staging directory of a restore killed before it changed live data. True
// when it is gone (or its volume or container is), false when it could not be removed
// now (Docker unreachable, the container stopped): the next start tries again.
async function removeStage(config: Config, docker: DockerClient, w: Work, stage: Stage): Promise<boolean> {
  const where = stage.kind === 'volume' ? `${stage.dir} in volume ${stage.volume}` : `${stage.path} in container ${stage.container}`;
  try {
    let res;
    if (stage.kind === 'volume') {
      if (!(await docker.inspectVolume(stage.volume))) return true;
      const helper = await docker.runHelper({
        image: config.docker.helper_image,
        purpose: 'restore-stage-cleanup',
        cmd: ['sh', '-c', REMOVE_STAGE, 'snapagent', STAGE_MOUNT, stage.dir],
        mounts: [{ volume: stage.volume, target: STAGE_MOUNT, readOnly: false }],
      });
      helper.stdout.resume();
      res = await helper.done;
    } else {
      const c = await docker.inspectContainer(stage.container);
      if (!c) return true;
      if (!c.running) throw new Error(`container ${stage.container} is not running`);
      const run = await docker.exec(stage.container, { cmd: ['rm', '-rf', '--', stage.path] });
      run.stdout.resume();
      res = await run.done;
    }
    if (res.exitCode !== 0) throw new Error(`exit code ${res.exitCode}: ${res.stderr.trim().split('\n').slice(-3).join('; ')}`);
    log.warn({ job: w.job, id: w.id, stage: where }, `removed the staging directory ${where} of the killed restore of job ${w.job}: it was killed before it changed the live data, which is as it was`);
    return true;
  } catch (err) {
    log.error({ job: w.job, stage: where }, `could not remove the staging directory ${where} of the killed restore of job ${w.job} now: ${errorMessage(err)} (the next start tries again)`);
    return false;
  }
}

// Helper and drill containers, drill volumes, named pipes and temporary files of `run`.
async function removeLeftovers(config: Config, docker: DockerClient, run: string): Promise<void> {
  const mine = (n: string) => n.includes(`-${run}-`);
  try {
    const containers = await docker.listContainers();
    for (const c of containers.filter((c) => (c.labels['snapagent.helper'] && c.labels['snapagent.run'] === run) || c.labels['snapagent.drill'] === run)) {
      log.warn({ container: c.name }, `removing container ${c.name} left by the killed run`);
      await docker.removeContainer(c.id);
    }
    for (const v of (await docker.listVolumes()).filter((v) => v.labels['snapagent.drill'] === run || new RegExp(`^snapagent-drill-.+-${run}-\\d+$`).test(v.name))) {
      log.warn({ volume: v.name }, `removing drill volume ${v.name} left by the killed run`);
      await docker.removeVolume(v.name);
    }
    for (const c of containers.filter((c) => c.running)) await docker.removeTempFiles(c.id, `snapagent-${run}-`);
  } catch (err) {
    log.warn(`could not remove the killed run's containers and pipes: ${errorMessage(err)} (they are labelled snapagent.run=${run})`);
  }
  // After the helpers are gone; a pipe directory was bind-mounted into one, so it is
  // emptied name by name through a held fd, never by a recursive remove.
  const pipes = await openDir(path.join(config.stateDir, 'pipes')).catch(() => undefined);
  if (pipes) await removeFifoDirs(pipes, mine).finally(() => pipes.close());
  const tmp = path.join(config.stateDir, 'tmp');
  for (const n of (await readdir(tmp).catch(() => [] as string[])).filter(mine)) await rm(path.join(tmp, n), { recursive: true, force: true });
}
