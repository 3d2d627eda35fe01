// Backup of an Elasticsearch cluster's indices, in named steps: find (or register) the
// job's live fs repository, take the snapshot with the indices' figures counted around
// it, list the repository's files with their sha256 (a helper container, read-only
// mount), then ship as one tar the files the base backup does not already hold
// (files.ts; every file without a base) and give the file list as the backup's index.
// After the backup was committed, the live repository is pruned to the newest
// `keep_snapshots` snapshots of the job.
import { parseStats, runningContainer, SnapError, toolMessages, type BackupStream, type ContainerDetails, type HelperRun, type Job, type PluginContext, type PluginIndex, type PluginStats } from '../../agent/plugin/index.ts';
import { connect, esError, type Es } from './connect.ts';
import { checkIndexNames } from './names.ts';
import { asFull, baseList, diff, encodeList, INDEX_FORMAT, parseListing, totalBytes, type Base, type Diff, type Listed } from './files.ts';
import type { EsOptions } from './options.ts';
import { pathRepo, place, register, registered, type RepoPlace } from './repository.ts';
import { LIST, MOUNT, SHIP } from './scripts.ts';
import { allSnapshots, indexFigures, jobSnapshots, snapshotName, takeSnapshot, type IndexFigures, type IndexStats, type Taken } from './snapshot.ts';

/** What the snapshot step found: the snapshot, its indices' figures for the manifest,
 * what else the repository holds. */
interface Snapped {
  snapshot: string;
  taken: Taken;
  indices: Record<string, IndexStats>;
  inRepo: string[];
  snapshotSeconds: number;
}

export async function backupCluster(ctx: PluginContext, job: Job<EsOptions>): Promise<BackupStream> {
  const o = job.options;
  const c = await runningContainer(ctx, job.container, `job ${job.name}`, 'elasticsearch');
  const es = await connect(ctx, c, o, true);
  let helper: HelperRun | undefined;
  try {
    const repo = await liveRepository(ctx, es, c, o);
    const snapped = await snapshotIndices(ctx, es, c, job, repo);
    const plan = await planShipping(ctx, repo);
    const shipStart = performance.now();
    helper = await shipRepository(ctx, repo, plan);
    return shippedStream(ctx, job, c, es, repo, snapped, plan, helper, shipStart);
  } catch (err) {
    await helper?.kill();
    await es.close();
    throw err;
  }
}

/** The job's live repository: where it is (path.repo, volume), registered when missing. */
async function liveRepository(ctx: PluginContext, es: Es, c: ContainerDetails, o: EsOptions): Promise<RepoPlace> {
  const repos = await pathRepo(es, c.name);
  const reg = await registered(es, o.repository, c.name);
  if (reg && reg.type !== 'fs') {
    throw new SnapError(`container ${c.name}: repository "${o.repository}" is registered with type ${reg.type}, not fs`, { hint: 'set options.repository to another name: the agent registers its own fs repository' });
  }
  const p = place(c, repos, o.location ?? reg?.location, o.repository);
  if (reg) {
    const at = place(c, repos, reg.location, o.repository).location;
    if (at !== p.location) {
      throw new SnapError(`container ${c.name}: repository "${o.repository}" is registered at ${at}, not at options.location ${p.location}`, { hint: 'remove options.location (the registered location is used) or set options.repository to another name' });
    }
    if (reg.readonly) throw new SnapError(`container ${c.name}: repository "${o.repository}" is registered read-only`, { hint: 'register it writable, or set options.repository to another name' });
  } else {
    await register(ctx, es, c, o.repository, p, false);
  }
  return p;
}

/** Takes the job's snapshot, counting the indices before and after it. */
async function snapshotIndices(ctx: PluginContext, es: Es, c: ContainerDetails, job: Job<EsOptions>, repo: RepoPlace): Promise<Snapped> {
  const o = job.options;
  const snapshot = snapshotName(job.name, ctx.backupId ?? new Date().toISOString().replace(/[-:]|\.\d+/g, ''));
  const before = await indexFigures(es).catch((err: unknown) => { throw esError(err, `counting documents in ${c.name}`); });
  const t0 = performance.now();
  ctx.log.info({ repository: o.repository, snapshot, location: repo.location, volume: repo.volume }, 'taking the snapshot');
  const taken = await takeSnapshot(ctx, es, o.repository, snapshot, {
    indices: o.indices,
    include_global_state: o.include_global_state,
    metadata: { taken_by: 'snapagent', job: job.name, host: ctx.host, backup_id: ctx.backupId },
  }, o.timeout_seconds);
  const snapshotSeconds = (performance.now() - t0) / 1000;
  const after = await indexFigures(es).catch((err: unknown) => { throw esError(err, `counting documents in ${c.name}`); });
  // The names go into multi-target expressions when this backup is restored.
  checkIndexNames([...taken.info.indices, ...(taken.info.data_streams ?? [])], `container ${c.name}`);
  const indices = describeIndices(taken.info.indices, before, after);
  const changed = Object.entries(indices).filter(([, s]) => s.changed).map(([n]) => n);
  if (changed.length) ctx.log.warn({ indices: changed.slice(0, 20) }, 'indices changed while the snapshot was taken: their counts are recorded as a range, not compared exactly on restore');
  const inRepo = await allSnapshots(es, o.repository).catch(() => [snapshot]);
  ctx.log.info({ snapshot, seconds: Number(snapshotSeconds.toFixed(3)), indices: taken.info.indices.length, shards: taken.info.shards.total }, 'snapshot complete: shipping the repository');
  return { snapshot, taken, indices, inRepo, snapshotSeconds };
}

function describeIndices(names: string[], before: Map<string, IndexFigures>, after: Map<string, IndexFigures>): Record<string, IndexStats> {
  const out: Record<string, IndexStats> = {};
  for (const name of [...names].sort()) {
    const b = before.get(name);
    const a = after.get(name);
    if (!a || !b) {
      out[name] = {}; // closed, hidden or system: not counted
    } else if (a.docs === b.docs && a.mapping_sha256 === b.mapping_sha256) {
      out[name] = { docs: a.docs, mapping_sha256: a.mapping_sha256 };
    } else {
      out[name] = { docs: a.docs, docs_before: b.docs, mapping_sha256: a.mapping_sha256, changed: true };
    }
  }
  return out;
}

/** What this backup ships: the repository's files, which of them its data artifact
 * holds, and the state of the repository they were listed in. */
interface Plan {
  self: string;
  d: Diff;
  /** Every file (a full) or only d.ship, named on the helper's command line. */
  mode: 'all' | 'list';
  state: string;
  listSeconds: number;
}

// The names of the files to ship go on the helper's command line; beyond this many bytes
// (the kernel allows about 2 MiB of arguments and environment) the backup ships every
// file and becomes a full instead.
const SHIP_ARGS_MAX = 1 << 20;

/** Lists the repository's files with their sha256 (a helper, read-only mount) and
 * decides which ones this backup ships. */
async function planShipping(ctx: PluginContext, repo: RepoPlace): Promise<Plan> {
  const t0 = performance.now();
  const where = `repository ${repo.location} (volume ${repo.volume})`;
  const listing = await listRepository(ctx, repo, where);
  const listSeconds = (performance.now() - t0) / 1000;
  const self = ctx.backupId;
  if (!self) throw new SnapError('the backup has no id: cannot name the files it holds');
  let base: Base | undefined;
  if (ctx.base) {
    const b = baseList(ctx.base);
    if (typeof b === 'string') ctx.log.warn({ base: ctx.base.id }, `${b}: this backup ships every file (a full)`);
    else base = b;
  }
  let d = diff(listing.files, self, base);
  let mode: Plan['mode'] = d.dependsOn.length === 0 ? 'all' : 'list';
  if (mode === 'list' && d.ship.reduce((n, f) => n + Buffer.byteLength(f.path) + 1, 0) > SHIP_ARGS_MAX) {
    ctx.log.warn({ files: d.ship.length }, 'too many new files to name on a command line: this backup ships every file (a full)');
    d = asFull(d, self);
    mode = 'all';
  }
  ctx.log.info({ files: d.files.length, ship: d.ship.length, reused: d.files.length - d.ship.length, depends_on: d.dependsOn, seconds: Number(listSeconds.toFixed(3)) }, d.dependsOn.length ? 'repository listed: shipping its new files' : 'repository listed: shipping every file');
  return { self, d, mode, state: listing.state, listSeconds };
}

/** The repository's files, sizes and sha256, read by a helper container that mounts its
 * volume read-only (never opened from the host). */
async function listRepository(ctx: PluginContext, repo: RepoPlace, where: string): Promise<{ files: Listed[]; state: string }> {
  const helper = await ctx.docker.runHelper({
    image: ctx.helperImage,
    purpose: 'es-list',
    cmd: ['sh', '-c', LIST, 'snapagent', `${MOUNT}/${repo.subpath}`],
    mounts: [{ volume: repo.volume, target: MOUNT, readOnly: true }],
  });
  const chunks: Buffer[] = [];
  helper.stdout.on('data', (b: Buffer) => chunks.push(b));
  const ended = new Promise<void>((resolve) => helper.stdout.once('end', resolve).once('close', resolve));
  const onAbort = () => void helper.kill();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await helper.done;
    await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    if (res.exitCode !== 0) throw new SnapError(`listing the files of ${where} failed (exit code ${res.exitCode}): ${toolMessages(res.stderr)}`);
    return parseListing(Buffer.concat(chunks).toString('utf8'), where);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

/** Starts the helper that tars the files to ship (read-only mount). */
function shipRepository(ctx: PluginContext, repo: RepoPlace, plan: Plan): Promise<HelperRun> {
  return ctx.docker.runHelper({
    image: ctx.helperImage,
    purpose: 'es-ship',
    cmd: ['sh', '-c', SHIP, 'snapagent', `${MOUNT}/${repo.subpath}`, plan.mode, ...(plan.mode === 'list' ? plan.d.ship.map((f) => f.path) : [])],
    mounts: [{ volume: repo.volume, target: MOUNT, readOnly: true }],
    data: 'out',
  });
}

/** The backup stream of the shipping helper; its stats once tar finished. */
function shippedStream(ctx: PluginContext, job: Job<EsOptions>, c: ContainerDetails, es: Es, repo: RepoPlace, s: Snapped, plan: Plan, run: HelperRun, shipStart: number): BackupStream {
  const o = job.options;
  const done = (async (): Promise<PluginStats> => {
    const res = await run.done;
    if (res.exitCode !== 0) {
      const why = res.exitCode === 1 ? 'files changed while they were read (another snapshot or a delete in the same repository?)' : `exit code ${res.exitCode}`;
      throw new SnapError(`tar of repository ${repo.location} (volume ${repo.volume}) failed (${why}): ${toolMessages(res.stderr)}`);
    }
    const shipped = parseStats(res.stderr);
    if (!shipped) throw new SnapError(`tar of repository ${repo.location}: the helper reported no counts`);
    const state = /^snapagent-state ([0-9a-f]{64})$/m.exec(res.stderr)?.[1];
    if (state !== plan.state) throw new SnapError(`tar of repository ${repo.location} (volume ${repo.volume}) failed (files changed between their listing and the tar: another snapshot or a delete in the same repository?)`);
    const { d } = plan;
    return {
      es_version: es.version,
      cluster_name: es.clusterName,
      cluster_uuid: es.clusterUuid,
      repository: o.repository,
      location: repo.location,
      snapshot: s.snapshot,
      snapshot_uuid: s.taken.info.uuid,
      taken_by_other_agent: !s.taken.created,
      include_global_state: o.include_global_state,
      shards: s.taken.info.shards.total,
      indices: s.indices,
      data_streams: s.taken.info.data_streams ?? [],
      repository_snapshots: s.inRepo,
      snapshot_seconds: Number(s.snapshotSeconds.toFixed(3)),
      list_seconds: Number(plan.listSeconds.toFixed(3)),
      ship_seconds: Number(((performance.now() - shipStart) / 1000).toFixed(3)),
      // the whole repository a restore puts back, and what this backup's artifact holds
      files: d.files.length,
      bytes: totalBytes(d.files),
      files_shipped: d.ship.length,
      bytes_shipped: totalBytes(d.ship),
      files_reused: d.files.length - d.ship.length,
      ...(shipped.stream_bytes !== undefined ? { stream_bytes: shipped.stream_bytes } : {}),
    };
  })();
  const index = done.then((): PluginIndex => ({
    format: INDEX_FORMAT,
    bytes: encodeList({ id: plan.self, snapshot: s.snapshot, files: plan.d.files }),
    dependsOn: plan.d.dependsOn,
    representedBytes: totalBytes(plan.d.files),
  }));
  index.catch(() => undefined);
  done.catch(() => undefined);
  done.finally(() => es.close()).catch(() => undefined);
  return {
    get stream() {
      return run.stdout;
    },
    openRaw: run.openPipe,
    artifact: { name: 'repository', format: 'tar' },
    done,
    index,
    source: { container: c.name, image: c.image, es_version: es.version, cluster_name: es.clusterName, repository: o.repository, location: repo.location, volume: repo.volume },
    abort: async () => {
      await run.kill();
    },
    committed: () => prune(ctx, job, c, s.snapshot),
  };
}

// After a committed backup: the live repository keeps the snapshot just committed and
// the newest keep_snapshots - 1 other snapshots of this job (each shipped archive is a
// whole repository, so restores never need the older ones; the newest one keeps the
// next snapshot incremental). Other snapshots in the repository are left alone.
async function prune(ctx: PluginContext, job: Job<EsOptions>, c: ContainerDetails, committed: string): Promise<void> {
  const o = job.options;
  const es = await connect(ctx, c, o, true);
  try {
    const others = (await jobSnapshots(es, o.repository, snapshotName(job.name, ''))).filter((n) => n !== committed);
    const drop = others.slice(0, Math.max(0, others.length - (o.keep_snapshots - 1)));
    if (drop.length === 0) return;
    await es.client.snapshot.delete({ repository: o.repository, snapshot: drop.join(',') }, { requestTimeout: o.timeout_seconds * 1000 });
    ctx.log.info({ repository: o.repository, deleted: drop, kept: [...others.slice(drop.length), committed] }, 'pruned the live repository');
  } catch (err) {
    throw esError(err, `pruning repository ${o.repository} in ${c.name}`);
  } finally {
    await es.close();
  }
}
