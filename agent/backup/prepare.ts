// Step 1 of a backup: before any data moves. The plugin checks its source, the job's
// lock is taken, every target is checked and cleared of backups left incomplete by
// interrupted runs, the id is chosen, the base of an incremental is chosen (base.ts),
// and the encryption recipients and the signing key are ready, so that a run that cannot succeed fails here, having written nothing.
import { backupDir, backupId, untrusted, type Listed } from '../catalog/manifest.ts';
import { readCatalog } from '../catalog/catalog.ts';
import { hostKey } from '../catalog/signing.ts';
import { catalogTrust } from '../catalog/trust.ts';
import { errorMessage, SnapError } from '../errors.ts';
import { log } from '../log.ts';
import { recipientsFor } from '../pipeline/age.ts';
import type { PluginContext } from '../plugin/contract.ts';
import { startWork, workId } from '../runtime/inflight.ts';
import { lockJob } from '../runtime/lock.ts';
import type { Target } from '../targets/target.ts';
import type { BackupRun, PreparedRun } from './backup-run.ts';
import { chooseBase } from './base.ts';

export interface PrepareOptions {
  /** The schedule slot this run is for (scheduled and `--tier` runs): the backup id is
   * then "<slot>-<tier>", the same on every host, unless the job already has it. */
  slot?: Date;
}

export async function prepare(run: BackupRun, targets: Target[], o: PrepareOptions): Promise<PreparedRun> {
  const { config, docker, registry, signal } = run.ctx;
  const { job, result } = run;
  const plugin = registry[job.plugin];
  if (!plugin) throw new SnapError(`unknown plugin "${job.plugin}"`);
  const underWay = await startWork({ kind: 'backup', job: job.name, plugin: job.plugin, tier: job.tier, targets: job.targets }); // a kill -9 is reported by the next start
  run.undo.push(() => underWay(result.status === 'ok'));
  const pluginCtx: PluginContext = { docker, log: run.log, signal, helperImage: config.docker.helper_image, host: config.host };
  await plugin.check(pluginCtx, job);
  const lock = await lockJob(config.stateDir, config.host, job.name, run.log, { waitSeconds: config.lock_wait_seconds, signal });
  run.undo.push(() => lock.release());
  run.started = new Date(); // the backup starts now, not when the run began waiting for the lock
  signal.throwIfAborted(); // cancelled while it waited: start nothing
  const usable = await prepareTargets(run, targets);
  if (usable.list.length === 0) throw new SnapError('no target could be reached; nothing was backed up');
  const slotId = o.slot && backupId(o.slot, job.tier);
  const id = slotId && !usable.existing.has(slotId) ? slotId : await freshId(run.started, job.tier, usable.existing);
  result.id = id;
  await workId(job.name, id);
  run.log.info({ id, targets: usable.list.map((t) => t.name) }, 'backup started');
  const choice = await chooseBase(config, job, plugin.incremental === true, usable.catalogs, signal);
  if (plugin.incremental) run.log.info({ id, base: choice.base?.id }, choice.base ? `incremental on ${choice.base.id}` : `full backup: ${choice.fullBecause}`);
  const recipients = await recipientsFor(config);
  if (recipients) run.undo.push(() => recipients.cleanup());
  const signer = await hostKey(config.stateDir); // made on the first backup, before any data moves
  return Object.assign(run, { plugin, pluginCtx, targets: usable.list, id, dir: backupDir(config.host, job.name, id), recipients, signer, base: choice.base, baseChain: choice.chain });
}

// Checks each target, removes backups left incomplete by interrupted runs (we hold the
// job's lock, so none of them is in progress) and collects the ids already used. When
// every target failed, the job fails with their reasons and the first one's hint.
async function prepareTargets(run: BackupRun, targets: Target[]): Promise<{ list: Target[]; existing: Set<string>; catalogs: Map<Target, Listed[]> }> {
  const { config } = run.ctx;
  const { job, result } = run;
  const list: Target[] = [];
  const existing = new Set<string>();
  const catalogs = new Map<Target, Listed[]>();
  for (const t of targets.filter((t) => job.targets.includes(t.name))) {
    try {
      await t.check();
      const cat = await readCatalog(t, `${config.host}/${job.name}`, await catalogTrust(run.ctx));
      for (const dir of cat.incomplete) {
        log.warn({ job: job.name, target: t.name, dir }, 'removing an incomplete backup left by an interrupted run');
        await t.removeDir(dir);
      }
      for (const b of cat.backups) existing.add(b.manifest.id);
      catalogs.set(t, cat.backups.filter((b) => b.manifest.job === job.name && !untrusted(b)));
      for (const bad of cat.invalid) existing.add(bad.key.split('/')[2]!); // never write into a refused manifest's directory
      list.push(t);
    } catch (err) {
      const hint = err instanceof SnapError ? err.hint : undefined;
      result.targets.push({ target: t.name, status: 'failed', error: errorMessage(err), hint });
      log.error({ job: job.name, target: t.name, hint }, errorMessage(err));
    }
  }
  if (list.length === 0 && result.targets.length) {
    throw new SnapError(`no target could be reached; nothing was backed up: ${result.targets.map((t) => t.error).join('; ')}`, { hint: result.targets.find((t) => t.hint)?.hint });
  }
  return { list, existing, catalogs };
}

// The start time as an id, moved on by whole seconds past the ids already used (and
// waiting until that second, so that the id never lies ahead of the clock).
async function freshId(started: Date, tier: string, existing: Set<string>): Promise<string> {
  let at = started;
  while (existing.has(backupId(at, tier))) at = new Date(Math.floor(at.getTime() / 1000) * 1000 + 1000);
  const wait = at.getTime() - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  return backupId(at, tier);
}
