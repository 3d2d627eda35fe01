// One restore of one backup: the plugin reads the stored artifact (StoredInput: sha256,
// age -d when encrypted, zstd -d) and stages the data; it only replaces live data once `integrity` resolved:
// every stored byte was read, matched the manifest's size and sha256, and zstd verified
// its frame checksums.
import type { Context } from '../context.ts';
import { errorMessage, IntegrityError, SnapError } from '../errors.ts';
import { lockJob } from '../runtime/lock.ts';
import { log } from '../log.ts';
import type { Listed } from '../catalog/manifest.ts';
import type { Job, PluginContext } from '../plugin/contract.ts';
import { volumeSpec } from './restore-trust.ts';
import { checkIdentity, requireIdentity } from '../pipeline/age.ts';
import { StoredInput } from '../pipeline/stored-input.ts';
import { startWork } from '../runtime/inflight.ts';
import { faultPoint } from '../testing.ts';

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
    if (m.artifacts.length !== 1) throw new SnapError(`backup ${m.job}/${m.id} has ${m.artifacts.length} artifacts; this agent restores single-artifact backups`);
    const artifact = m.artifacts[0]!;
    const key = `${listed.dir}/${artifact.name}`;
    const into = req.toVolume ? `volume ${req.toVolume}` : req.toContainer ? `container ${req.toContainer}` : job.volume ? `volume ${job.volume}` : `container ${job.container ?? '?'}`;
    if (!req.drill) underWay = await startWork({ kind: 'restore', job: job.name, plugin: job.plugin, tier: m.tier, id: m.id, destination: into, targets: [listed.target.name] });
    // An encrypted backup needs a key that opens it, checked before anything is touched.
    let identity: string | undefined;
    if (artifact.encryption === 'age') {
      identity = await requireIdentity(config, `backup ${m.job}/${m.id}`);
      await checkIdentity(listed.target, key, identity, abort.signal);
    }
    if (!req.locked) lock = await lockJob(config.stateDir, config.host, job.name, log, { waitSeconds: config.lock_wait_seconds, signal });
    const pctx: PluginContext = { docker, log: log.child({ job: job.name }), signal: abort.signal, helperImage: config.docker.helper_image, host: config.host };
    const input = new StoredInput(listed.target, key, artifact, abort.signal, identity);
    input.hash.on('data', () => (bar.update(input.hash.bytes), faultPoint('restore-stream', input.hash.bytes)));
    const integrity = input.integrity;
    const plugin = ctx.registry[job.plugin]!;
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
        chain: [],
      });
      await integrity;
      Object.assign(result, { status: 'ok', destination: report.destination, restarted: report.restarted, stats: report.stats, bytes: input.hash.bytes });
    } catch (err) {
      // An integrity failure explains a downstream "tar: unexpected EOF" better.
      const why = input.started ? await Promise.race([integrity.then(() => undefined, (e: unknown) => e), new Promise((r) => setTimeout(r, 2000, undefined))]) : undefined;
      throw why instanceof IntegrityError ? why : err;
    } finally {
      abort.abort();
      input.kill();
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
