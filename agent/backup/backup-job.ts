// One backup of one job, end to end:
//   plugin stream ─► count raw ─► zstd ─► (age) ─► sha256 + count ─► every target (put .partial)
//   ─► producer exited 0? ─► publish artifact ─► manifest.json LAST (the commit point)
// Anything that fails before the manifest is written leaves no committed backup: the
// partial files are removed now, and a dir left by a killed run is removed by the next.
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config/load.ts';
import type { DockerClient } from '../docker/client.ts';
import { errorMessage, SnapError } from '../errors.ts';
import { lockJob } from '../runtime/lock.ts';
import { log, redactedJson } from '../log.ts';
import { backupDir, backupId, MANIFEST_FILE, MANIFEST_FORMAT, readCatalog, writeSigned, type Manifest } from '../catalog/manifest.ts';
import { hostKey, type HostKey } from '../catalog/signing.ts';
import { catalogTrust } from '../catalog/trust.ts';
import type { BackupStream, Job, PluginContext } from '../plugin/contract.ts';
import type { Target } from '../targets/target.ts';
import { VERSION } from '../version.ts';
import { plugins } from '../../plugins/index.ts';
import type { FileHandle } from 'node:fs/promises';
import { ageEncrypt, recipientsFor, type Recipients } from '../pipeline/age.ts';
import { zstdCompress } from '../pipeline/filter-process.ts';
import { ByteCounter, HashCounter } from '../pipeline/hash.ts';
import type { Bar, Progress } from '../pipeline/progress.ts';
import { startWork, workId } from '../runtime/inflight.ts';
import { faultPoint } from '../testing.ts';

export interface TargetOutcome {
  target: string;
  status: 'ok' | 'failed';
  error?: string;
  /** What to do about the failure (e.g. fix the remote's credentials). */
  hint?: string;
}

export interface BackupResult {
  job: string;
  plugin: string;
  tier: string;
  status: 'ok' | 'failed';
  started_at: string;
  finished_at: string;
  id?: string;
  size?: number;
  raw_size?: number;
  sha256?: string;
  duration_seconds: number;
  timings?: Manifest['timings'];
  targets: TargetOutcome[];
  error?: string;
  hint?: string;
}

export interface BackupJobOptions {
  /** The schedule slot this run is for (scheduled and `--tier` runs): the backup id is
   * then "<slot>-<tier>", the same on every host, unless the job already has it. */
  slot?: Date;
}

export async function backupJob(config: Config, docker: DockerClient, job: Job, targets: Target[], progress: Progress, signal: AbortSignal, o: BackupJobOptions = {}): Promise<BackupResult> {
  let started = new Date();
  const result: BackupResult = { job: job.name, plugin: job.plugin, tier: job.tier, status: 'failed', started_at: started.toISOString(), finished_at: '', duration_seconds: 0, targets: [] };
  const jlog = log.child({ job: job.name });
  let lock;
  let recipients: Recipients | undefined;
  let underWay: ((ok: boolean) => Promise<void>) | undefined;
  try {
    const plugin = plugins[job.plugin];
    if (!plugin) throw new SnapError(`unknown plugin "${job.plugin}"`);
    underWay = await startWork({ kind: 'backup', job: job.name, plugin: job.plugin, tier: job.tier, targets: job.targets }); // a kill -9 is reported by the next start
    const ctx: PluginContext = { docker, log: jlog, signal, helperImage: config.docker.helper_image, host: config.host };
    await plugin.check(ctx, job);
    lock = await lockJob(config.stateDir, config.host, job.name, jlog, { waitSeconds: config.lock_wait_seconds, signal });
    started = new Date(); // the backup starts now, not when the run began waiting for the lock
    signal.throwIfAborted(); // cancelled while it waited: start nothing
    const usable = await prepareTargets(config, job, targets, result);
    if (usable.length === 0) throw new SnapError('no target could be reached; nothing was backed up');
    const slotId = o.slot && backupId(o.slot, job.tier);
    const id = slotId && !usable.existing.has(slotId) ? slotId : await freshId(started, job.tier, usable.existing);
    result.id = id;
    await workId(job.name, id);
    jlog.info({ id, targets: usable.list.map((t) => t.name) }, 'backup started');
    recipients = await recipientsFor(config);
    const signer = await hostKey(config.stateDir); // made on the first backup, before any data moves
    await streamAndCommit(config, ctx, job, id, started, usable.list, result, progress, signal, recipients, signer);
    result.status = result.targets.some((t) => t.status === 'failed') ? 'failed' : 'ok';
    if (result.status === 'failed') {
      result.error = `some targets failed: ${result.targets.filter((t) => t.status === 'failed').map((t) => `${t.target}: ${t.error}`).join('; ')}`;
      result.hint = result.targets.find((t) => t.hint)?.hint;
    }
  } catch (err) {
    result.status = 'failed';
    result.error = errorMessage(err);
    result.hint = err instanceof SnapError ? err.hint : undefined;
  } finally {
    await recipients?.cleanup();
    await lock?.release();
    await underWay?.(result.status === 'ok');
    const finished = new Date();
    result.finished_at = finished.toISOString();
    result.duration_seconds = (finished.getTime() - started.getTime()) / 1000;
  }
  return result;
}

interface Usable {
  list: Target[];
  existing: Set<string>;
  length: number;
}

// Checks each target, removes backups left incomplete by interrupted runs (we hold the
// job's lock, so none of them is in progress) and collects the ids already used. When
// every target failed, the job fails with their reasons and the first one's hint.
async function prepareTargets(config: Config, job: Job, targets: Target[], result: BackupResult): Promise<Usable> {
  const list: Target[] = [];
  const existing = new Set<string>();
  for (const t of targets.filter((t) => job.targets.includes(t.name))) {
    try {
      await t.check();
      const cat = await readCatalog(t, `${config.host}/${job.name}`, await catalogTrust({ config, registry: plugins }));
      for (const dir of cat.incomplete) {
        log.warn({ job: job.name, target: t.name, dir }, 'removing an incomplete backup left by an interrupted run');
        await t.removeDir(dir);
      }
      for (const b of cat.backups) existing.add(b.manifest.id);
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
  return { list, existing, length: list.length };
}

async function freshId(started: Date, tier: string, existing: Set<string>): Promise<string> {
  let at = started;
  while (existing.has(backupId(at, tier))) at = new Date(Math.floor(at.getTime() / 1000) * 1000 + 1000);
  const wait = at.getTime() - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  return backupId(at, tier);
}

async function streamAndCommit(
  config: Config,
  ctx: PluginContext,
  job: Job,
  id: string,
  started: Date,
  targets: Target[],
  result: BackupResult,
  progress: Progress,
  signal: AbortSignal,
  recipients: Recipients | undefined,
  signer: HostKey,
): Promise<void> {
  const plugin = plugins[job.plugin]!;
  const dir = backupDir(config.host, job.name, id);
  const abort = new AbortController();
  const onAbort = () => abort.abort(signal.reason);
  signal.throwIfAborted();
  signal.addEventListener('abort', onAbort, { once: true });
  const t0 = performance.now();
  const bs = await plugin.backup({ ...ctx, signal: abort.signal, backupId: id }, job);
  const t1 = performance.now();
  bs.done.catch(() => undefined); // handled below; must not count as unhandled meanwhile
  const artifactName = `${bs.artifact.name}.${bs.artifact.format}.zst${recipients ? '.age' : ''}`;
  const key = `${dir}/${artifactName}`;
  // Fast path: zstd reads the producer's named pipe itself, so the agent only handles
  // the compressed bytes; else the raw bytes flow through the agent into zstd's stdin.
  const direct = bs.openRaw ? await bs.openRaw().catch(() => undefined) : undefined;
  const bar = progress.start(job.name, direct ? 'stored' : 'read');
  let out: Written;
  try {
    out = await compressAndUpload(direct, targets, key, bs, bar, abort, recipients);
  } catch (err) {
    abort.abort(err);
    await bs.abort().catch((e: unknown) => log.error({ job: job.name }, errorMessage(e)));
    const producerError = await bs.done.then(() => undefined, (e: unknown) => e);
    for (const t of targets) await t.removeDir(dir).catch(() => undefined);
    // The first meaningful error wins: the run's cancellation over what it broke, a full
    // disk over the producer's broken pipe, the producer's own failure over the
    // "premature close" it causes downstream.
    if (signal.aborted) throw signal.reason;
    throw err instanceof SnapError ? err : producerError instanceof SnapError ? producerError : firstReal(err, abort.signal);
  } finally {
    signal.removeEventListener('abort', onAbort);
    bar.stop();
  }
  const { failures } = out;
  const stats = await bs.done;
  // Where the time went: the plugin's preparation (e.g. a snapshot), the data flow until
  // every target held the artifact, and the plugin's finish (e.g. clearing the snapshot).
  const timings = { prepare_seconds: secs(t1 - t0), stream_seconds: secs(out.streamedAt - t1), finish_seconds: secs(performance.now() - out.streamedAt) };
  const rawBytes = out.rawBytes ?? Number(stats.stream_bytes ?? 0);
  const finished = new Date();
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    id,
    host: config.host,
    job: job.name,
    plugin: job.plugin,
    tier: job.tier,
    started_at: started.toISOString(),
    finished_at: finished.toISOString(),
    duration_seconds: (finished.getTime() - started.getTime()) / 1000,
    agent: { name: 'snapagent', version: VERSION },
    source: bs.source,
    options: job.options as Record<string, unknown>,
    artifacts: [
      {
        name: artifactName,
        format: bs.artifact.format,
        compression: 'zstd',
        encryption: recipients ? 'age' : 'none',
        size: out.bytes,
        sha256: out.sha256,
        raw_size: rawBytes,
        ...(recipients ? { recipients: recipients.list } : {}),
      },
    ],
    stats,
    timings,
  };
  Object.assign(result, { size: out.bytes, raw_size: rawBytes, sha256: out.sha256, timings });
  for (const t of targets) {
    if (failures.has(t.name)) {
      result.targets.push({ target: t.name, status: 'failed', ...failures.get(t.name) });
      await t.removeDir(dir).catch(() => undefined);
      continue;
    }
    try {
      await t.publish(key);
      faultPoint('backup-before-manifest');
      await writeSigned(t, `${dir}/${MANIFEST_FILE}`, Buffer.from(redactedJson(manifest)), signer);
      result.targets.push({ target: t.name, status: 'ok' });
      log.info({ job: job.name, target: t.name, id, size: out.bytes, raw: rawBytes }, 'backup committed');
    } catch (err) {
      result.targets.push({ target: t.name, status: 'failed', error: errorMessage(err), hint: err instanceof SnapError ? err.hint : undefined });
      await t.removeDir(dir).catch(() => undefined);
    }
  }
  if (bs.committed && result.targets.some((t) => t.status === 'ok')) {
    await bs.committed().catch((err: unknown) => log.warn({ job: job.name, id }, `after the commit: ${errorMessage(err)}`));
  }
}

interface Written {
  sha256: string;
  bytes: number;
  /** Raw bytes, when the agent counted them (else the plugin's stream_bytes). */
  rawBytes?: number;
  /** Targets whose upload failed, with why; the others hold the artifact. */
  failures: Map<string, { error: string; hint?: string }>;
  /** performance.now() when compression ended and every target's upload settled. */
  streamedAt: number;
}

const secs = (ms: number) => Number((ms / 1000).toFixed(3));

// producer ─► (count) ─► zstd ─► (age) ─► sha256 ─► each target's put(); one failing
// target is dropped, the others go on. zstd writes straight into age's stdin.
async function compressAndUpload(
  direct: FileHandle | undefined,
  targets: Target[],
  key: string,
  bs: BackupStream,
  bar: Bar,
  abort: AbortController,
  recipients: Recipients | undefined,
): Promise<Written> {
  const hash = new HashCounter();
  const raw = direct ? undefined : new ByteCounter((n) => bar.update(n));
  const age = recipients ? ageEncrypt(recipients.files, abort.signal) : undefined;
  const zstd = zstdCompress(abort.signal, direct?.fd, age?.stdin ?? undefined);
  // zstd has its own copies: ours must not keep the pipes open (a writer whose reader
  // died must get EPIPE, not block; age sees EOF only once every writer closed)
  await direct?.close();
  age?.stdin?.destroy();
  const last = age ?? zstd;
  if (direct) hash.on('data', () => bar.update(hash.bytes));
  hash.on('data', () => faultPoint('backup-stream', hash.bytes));
  const failures = new Map<string, { error: string; hint?: string }>();
  const puts = targets.map((t) => {
    const pt = new PassThrough({ highWaterMark: 1 << 20 });
    hash.pipe(pt);
    const put = t.put(key, pt, abort.signal).catch((err: unknown) => {
      failures.set(t.name, { error: errorMessage(err), hint: err instanceof SnapError ? err.hint : undefined });
      hash.unpipe(pt);
      pt.resume();
      // every target failed: that is why the run stops (a full disk, not the producer's broken pipe)
      if (failures.size === targets.length) abort.abort(targets.length === 1 ? err : new SnapError([...failures.values()].map((f) => f.error).join('; '), { hint: [...failures.values()].find((f) => f.hint)?.hint }));
      throw err;
    });
    put.catch(() => undefined);
    return put;
  });
  let streamedAt = 0;
  try {
    await Promise.all([
      raw ? pipeline(bs.stream, raw, zstd.stdin!, { signal: abort.signal }) : undefined,
      Promise.all([pipeline(last.stdout, hash, { signal: abort.signal }), zstd.done, age?.done, Promise.allSettled(puts)]).then(() => (streamedAt = performance.now())),
      bs.done,
    ]);
  } catch (err) {
    const targetsFailed = failures.size === targets.length; // before the cleanup below fails them too
    zstd.kill();
    age?.kill();
    await Promise.allSettled(puts);
    throw targetsFailed ? abort.signal.reason : err;
  }
  return { sha256: hash.sha256(), bytes: hash.bytes, rawBytes: raw?.bytes, failures, streamedAt };
}

// A SnapError that aborted the run explains more than a stream's "premature close".
function firstReal(err: unknown, signal: AbortSignal): unknown {
  return signal.reason instanceof SnapError ? signal.reason : err;
}
