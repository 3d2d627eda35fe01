// One restore of one backup: the plugin reads the stored artifact (StoredInput: sha256,
// age -d when encrypted, zstd -d) and stages the data; it only replaces live data once `integrity` resolved:
// every stored byte was read, matched the manifest's size and sha256, and zstd verified
// its frame checksums.
import path from 'node:path';
import type { Context } from '../context.ts';
import { errorMessage, IntegrityError, SnapError } from '../errors.ts';
import { lockJob } from '../runtime/lock.ts';
import { log } from '../log.ts';
import { dataArtifact, indexArtifact, type Listed } from '../catalog/manifest.ts';
import { readCatalog } from '../catalog/catalog.ts';
import { chainOf } from '../catalog/chain.ts';
import { catalogTrust } from '../catalog/trust.ts';
import { readIndex } from '../backup/base.ts';
import type { Job, PluginContext } from '../plugin/contract.ts';
import { volumeSpec } from './restore-trust.ts';
import { checkIdentity, requireIdentity } from '../pipeline/age.ts';
import { StoredInput } from '../pipeline/stored-input.ts';
import { startWork } from '../runtime/inflight.ts';
import type { PointInTimePlan } from '../pitr/point.ts';
import { sliceDataKey } from '../pitr/slices.ts';

export interface RestoreRequest {
  toVolume?: string;
  toContainer?: string;
  database?: string;
  collection?: string;
  renameTo?: string;
  stop: boolean;
  force: boolean;
  /** The caller already holds the job's lock (a drill takes it before its restore). */
  locked?: boolean;
  /** A restore drill into a throwaway copy: a kill leaves nothing live half-restored. */
  drill?: boolean;
  /** The operator asked to restore database accounts too (--restore-users). */
  restoreUsers?: boolean;
  /** --insecure-unsigned: unsigned manifests (made before signing) are accepted, for the
   * pieces of an incremental's chain too. */
  insecureUnsigned?: boolean;
  /** A restore to a point in time: the backup (`listed`) and the oplog slices after it
   * (agent/pitr/point.ts planned them). */
  pointInTime?: PointInTimePlan;
}

export interface RestoreResult {
  job: string;
  id: string;
  target: string;
  status: 'ok' | 'failed';
  destination?: string;
  bytes?: number;
  duration_seconds: number;
  restarted?: string[];
  stats?: Record<string, unknown>;
  /** A restore to a point in time: the time, and what was replayed after the backup. */
  point_in_time?: { at: string; base: string; slices: number; covered_until: string };
  error?: string;
  hint?: string;
  exitCode?: number;
}

export async function restoreBackup(ctx: Context, listed: Listed, job: Job, req: RestoreRequest): Promise<RestoreResult> {
  const { config, docker, progress, signal } = ctx;
  const m = listed.manifest;
  const started = Date.now();
  const result: RestoreResult = { job: m.job, id: m.id, target: listed.target.name, status: 'failed', duration_seconds: 0 };
  const abort = new AbortController();
  const onAbort = () => abort.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  let lock;
  let underWay: ((ok: boolean) => Promise<void>) | undefined;
  const bar = progress.start(`restore ${m.job}`);
  try {
    const artifact = dataArtifact(m);
    const key = `${listed.dir}/${artifact.name}`;
    const into = req.toVolume ? `volume ${req.toVolume}` : req.toContainer ? `container ${req.toContainer}` : job.volume ? `volume ${job.volume}` : `container ${job.container ?? '?'}`;
    if (!req.drill) underWay = await startWork({ kind: 'restore', job: job.name, plugin: job.plugin, tier: m.tier, id: m.id, destination: into, targets: [listed.target.name] });
    // An encrypted backup needs a key that opens it, checked before anything is touched.
    const plugin = ctx.registry[job.plugin]!;
    let identity: string | undefined;
    if (artifact.encryption === 'age') {
      identity = await requireIdentity(config, `backup ${m.job}/${m.id}`);
      await checkIdentity(listed.target, key, identity, abort.signal);
    }
    if (!req.locked) lock = await lockJob(config.stateDir, config.host, job.name, log, { waitSeconds: config.lock_wait_seconds, signal });
    // An incremental: every backup it depends on must be on the same target and trusted
    // (else exit 3 here, before anything is touched); each piece is read through its own
    // StoredInput (sha256, age, zstd) and counts toward `integrity`.
    const pipeDir = path.join(config.stateDir, 'pipes');
    const chain = m.depends_on?.length ? chainOf(listed, (await readCatalog(listed.target, `${m.host}/${m.job}`, await catalogTrust(ctx))).backups, req.insecureUnsigned) : [];
    if (chain.length && !plugin.incremental) throw new SnapError(`backup ${m.job}/${m.id} is an incremental, and plugin ${m.plugin} of this agent does not restore incrementals`);
    const pieces = chain.map((c) => {
      const a = dataArtifact(c.manifest);
      if (a.encryption === 'age' && !identity) throw new SnapError(`backup ${m.job}/${m.id} depends on ${c.manifest.id}, which is encrypted, while ${m.id} is not`);
      return { id: c.manifest.id, input: new StoredInput(c.target, `${c.dir}/${a.name}`, a, abort.signal, identity, pipeDir), stats: c.manifest.stats };
    });
    const ix = indexArtifact(m);
    const index = ix ? await readIndex(config, listed, ix, abort.signal) : undefined;
    const pctx: PluginContext = { docker, log: log.child({ job: job.name }), signal: abort.signal, helperImage: config.docker.helper_image, host: config.host };
    const input = new StoredInput(listed.target, key, artifact, abort.signal, identity, pipeDir);
    // the oplog slices of a restore to a point in time: each read through its own checks
    const pit = req.pointInTime;
    if (pit && !plugin.pitr) throw new SnapError(`plugin ${m.plugin} has no point-in-time recovery`);
    const logPieces = (pit?.slices ?? []).map((l) => {
      if (l.slice.artifact.encryption === 'age' && !identity) throw new SnapError(`oplog slice ${l.slice.id} is encrypted, while backup ${m.id} is not: an age identity is needed`, { hint: 'set SNAPAGENT_AGE_IDENTITY_FILE (or encryption.age_identity_file)' });
      return { id: l.slice.id, after: l.slice.after, last: l.slice.last, input: new StoredInput(l.target, sliceDataKey(l), l.slice.artifact, abort.signal, identity) };
    });
    const allPieces = [...pieces, ...logPieces];
    input.watch((n) => bar.update(n), 'restore-stream');
    // src and every piece the plugin started reading (a piece it does not need is never
    // read, so never settles); any piece's failure rejects at once
    const integrity = new Promise<void>((resolve, reject) => {
      for (const p of allPieces) p.input.integrity.catch(reject);
      input.integrity.then(() => Promise.all(allPieces.filter((p) => p.input.started).map((p) => p.input.integrity))).then(() => resolve(), reject);
    });
    integrity.catch(() => undefined);
    try {
      const report = await plugin.restore(pctx, job, input, {
        id: m.id,
        toVolume: req.toVolume,
        toContainer: req.toContainer,
        database: req.database,
        collection: req.collection,
        renameTo: req.renameTo,
        stop: req.stop,
        force: req.force,
        expected: m.stats,
        source: m.source,
        volumeSpec: (volume) => volumeSpec(config, volume, volume === job.volume && !req.drill, m.source, `backup ${m.job}/${m.id}`),
        restoreUsers: Boolean(req.restoreUsers),
        integrity,
        chain: pieces,
        index,
        ...(pit ? { log: { after: pit.after, until: pit.until, at: pit.at.toISOString(), pieces: logPieces } } : {}),
      });
      await integrity;
      Object.assign(result, { status: 'ok', destination: report.destination, restarted: report.restarted, stats: report.stats, bytes: input.bytes + allPieces.reduce((n, p) => n + p.input.bytes, 0) });
      if (pit) result.point_in_time = { at: pit.at.toISOString(), base: m.id, slices: pit.slices.length, covered_until: new Date(pit.coveredUntil).toISOString() };
    } catch (err) {
      // An integrity failure explains a downstream "tar: unexpected EOF" better.
      const why = input.started || allPieces.some((p) => p.input.started) ? await Promise.race([integrity.then(() => undefined, (e: unknown) => e), new Promise((r) => setTimeout(r, 2000, undefined))]) : undefined;
      throw why instanceof IntegrityError ? why : err;
    } finally {
      abort.abort();
      input.kill();
      for (const p of allPieces) p.input.kill();
    }
  } catch (err) {
    result.error = errorMessage(err);
    if (err instanceof SnapError) {
      result.hint = err.hint;
      result.exitCode = err.exitCode;
    }
  } finally {
    bar.stop();
    signal.removeEventListener('abort', onAbort);
    await lock?.release();
    await underWay?.(result.status === 'ok');
    result.duration_seconds = (Date.now() - started) / 1000;
  }
  return result;
}
