// elasticsearch: a snapshot (snapshot API) into an fs repository on a Docker volume of
// the container, then the whole repository directory shipped as one tar stream by a
// helper container (read-only mount). Each archive is a self-contained repository:
// restorable alone, onto any cluster whose path.repo is on a volume. After a committed
// backup the live repository keeps only the newest `keep_snapshots` snapshots of the
// job. Restore puts the repository back into the target's path.repo volume (a fresh
// directory), registers it read-only under another name, restores the snapshot's
// indices, waits for yellow, and compares document counts and mappings with the manifest.
import { type BackupStream, type ContainerDetails, type DatastorePlugin, ExitCode, feedHelper, type HelperRun, type Job, parseSchema, parseStats, type PluginContext, type RawInput, RefusedError, type RestoreOptions, type RestoreReport, runningContainer, SnapError, toolMessages, UsageError } from '../../agent/plugin/index.ts';
import { connect, esError, type Es } from './connect.ts';
import { optionsSchema, type EsOptions } from './options.ts';
import { pathRepo, place, register, registered, unregister, type RepoPlace } from './repository.ts';
import { EXTRACT, REMOVE, SHIP } from './scripts.ts';
import { allSnapshots, getSnapshot, indexFigures, jobSnapshots, takeSnapshot, type IndexFigures } from './snapshot.ts';
import { drillServer } from './drill.ts';
import { checkIndexNames } from './names.ts';

const MOUNT = '/snapagent/repo-volume';

/** What the manifest records per index. `docs`/`mapping_sha256` are exact for the
 * snapshot when the index did not change while it was taken; otherwise `changed` is set
 * and both counts are kept. */
interface IndexStats {
  docs?: number;
  mapping_sha256?: string;
  changed?: boolean;
  docs_before?: number;
}

export const elasticsearchPlugin: DatastorePlugin<EsOptions> = {
  name: 'elasticsearch',
  recordedOptions: ['indices', 'include_global_state'],

  parseOptions(raw, where) {
    return parseSchema(optionsSchema, raw, where);
  },

  async check(ctx, job) {
    await runningContainer(ctx, job.container, `job ${job.name}`, 'elasticsearch');
    if (!(await ctx.docker.imageExists(ctx.helperImage))) {
      throw new SnapError(`helper image ${ctx.helperImage} is missing`, { hint: 'run `make images` (or set docker.helper_image to an image with GNU tar)' });
    }
  },

  async backup(ctx, job): Promise<BackupStream> {
    const o = job.options;
    const c = await runningContainer(ctx, job.container, `job ${job.name}`, 'elasticsearch');
    const es = await connect(ctx, c, o, true);
    let helper: HelperRun | undefined;
    try {
      const repo = await liveRepository(ctx, es, c, o);
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
      const shipStart = performance.now();
      helper = await ctx.docker.runHelper({
        image: ctx.helperImage,
        purpose: 'es-ship',
        cmd: ['sh', '-c', SHIP, 'snapagent', `${MOUNT}/${repo.subpath}`],
        mounts: [{ volume: repo.volume, target: MOUNT, readOnly: true }],
        data: 'out',
      });
      const run = helper;
      const done = (async () => {
        const res = await run.done;
        if (res.exitCode !== 0) {
          const why = res.exitCode === 1 ? 'files changed while they were read (another snapshot or a delete in the same repository?)' : `exit code ${res.exitCode}`;
          throw new SnapError(`tar of repository ${repo.location} (volume ${repo.volume}) failed (${why}): ${toolMessages(res.stderr)}`);
        }
        const files = parseStats(res.stderr);
        if (!files) throw new SnapError(`tar of repository ${repo.location}: the helper reported no counts`);
        return {
          es_version: es.version,
          cluster_name: es.clusterName,
          cluster_uuid: es.clusterUuid,
          repository: o.repository,
          location: repo.location,
          snapshot,
          snapshot_uuid: taken.info.uuid,
          taken_by_other_agent: !taken.created,
          include_global_state: o.include_global_state,
          shards: taken.info.shards.total,
          indices,
          data_streams: taken.info.data_streams ?? [],
          repository_snapshots: inRepo,
          snapshot_seconds: Number(snapshotSeconds.toFixed(3)),
          ship_seconds: Number(((performance.now() - shipStart) / 1000).toFixed(3)),
          ...files,
        };
      })();
      done.catch(() => undefined);
      done.finally(() => es.close()).catch(() => undefined);
      return {
        get stream() {
          return run.stdout;
        },
        openRaw: run.openPipe,
        artifact: { name: 'repository', format: 'tar' },
        done,
        source: { container: c.name, image: c.image, es_version: es.version, cluster_name: es.clusterName, repository: o.repository, location: repo.location, volume: repo.volume },
        abort: async () => {
          await run.kill();
        },
        committed: () => prune(ctx, job, c, snapshot),
      };
    } catch (err) {
      await helper?.kill();
      await es.close();
      throw err;
    }
  },

  restore(ctx, job, src, opts) {
    return restoreSnapshot(ctx, job, src, opts);
  },

  drill(job, port) {
    return drillServer(job, port);
  },
};

/** Snapshot names must be lowercase: `<job>-<backup id>`. */
/** A snapshot, index or data stream name as Elasticsearch allows it (no wildcard, comma,
 * path or URL characters). */
const ES_NAME = /^[a-z0-9.][^\\/*?"<>|,#:\sA-Z]{0,254}$/;

function snapshotName(job: string, id: string): string {
  return `${job}-${id}`.toLowerCase();
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

function wildcard(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

async function restoreSnapshot(ctx: PluginContext, job: Job<EsOptions>, src: RawInput, opts: RestoreOptions): Promise<RestoreReport> {
  const o = job.options;
  const exp = opts.expected as { snapshot?: string; indices?: Record<string, IndexStats>; data_streams?: string[] };
  if (!exp.snapshot || !exp.indices) throw new SnapError(`backup ${opts.id} records no snapshot: it was not made by this plugin`, { exitCode: ExitCode.integrity });
  const snapshot = exp.snapshot;
  const all = Object.keys(exp.indices);
  // names from the manifest go into API paths and index lists: plain names only
  const badName = [snapshot, ...all, ...(exp.data_streams ?? [])].find((n) => typeof n !== 'string' || !ES_NAME.test(n) || n === '.' || n === '..');
  if (badName !== undefined) {
    throw new RefusedError(`backup ${opts.id}: its manifest names snapshot or index "${String(badName).slice(0, 80)}", not a plain Elasticsearch name; the cluster was not changed`, 'the manifest was altered, or not written by snapagent');
  }
  checkIndexNames([...all, ...(exp.data_streams ?? [])], "the backup's manifest", true);
  // What to restore: --database (comma-separated names or wildcards) or options.restore.indices,
  // else every index and data stream of the snapshot except dot-indices.
  const asked = opts.database ? opts.database.split(',').map((s) => s.trim()).filter(Boolean) : o.restore.indices;
  const streams = exp.data_streams ?? [];
  let selection: string[];
  if (asked) {
    selection = [...new Set(asked.flatMap((p) => [...all, ...streams].filter((n) => wildcard(p).test(n))))];
    const none = asked.filter((p) => ![...all, ...streams].some((n) => wildcard(p).test(n)));
    if (none.length) throw new UsageError(`the backup has no index matching ${none.join(', ')}`, `it has: ${all.filter((n) => !n.startsWith('.')).join(', ')}`);
  } else {
    selection = [...all.filter((n) => !n.startsWith('.')), ...streams];
  }
  if (selection.length === 0) throw new UsageError(`backup ${opts.id} holds no index to restore`);
  let rename: { pattern: string; replacement: string } | undefined;
  if (opts.renameTo) {
    if (selection.length !== 1) throw new UsageError('--rename-to needs --database naming exactly one index', 'or set options.restore.rename_pattern / rename_replacement');
    rename = { pattern: `^${selection[0]!.replace(/[.+?^${}()|[\]\\*]/g, '\\$&')}$`, replacement: opts.renameTo };
  } else if (o.restore.rename_pattern) {
    rename = { pattern: o.restore.rename_pattern, replacement: o.restore.rename_replacement ?? '' };
  }
  // Java's replaceAll and JavaScript's replace agree on $1-style references.
  const target = (n: string) => (rename ? n.replace(new RegExp(rename.pattern, 'g'), rename.replacement) : n);
  const own = !opts.toContainer || opts.toContainer === job.container;
  const c = await runningContainer(ctx, opts.toContainer ?? job.container, 'restore', 'elasticsearch');
  const es = await connect(ctx, c, o, own);
  const mode = opts.force ? 'delete' : o.restore.existing;
  const restoreRepo = `${o.repository}-restore-${opts.id.toLowerCase()}`;
  let stage: RepoPlace | undefined;
  let registeredRepo = false;
  try {
    const repos = await pathRepo(es, c.name);
    const live = place(c, repos, own ? o.location ?? (await registered(es, o.repository, c.name))?.location : undefined, o.repository);
    stage = place(c, repos, `${live.location}-restore-${opts.id.toLowerCase()}`, o.repository);
    const existing = await existingIndices(es, selection.map(target), c.name);
    if (existing.length && mode === 'fail') {
      throw new RefusedError(`index(es) ${existing.join(', ')} exist in the cluster of ${c.name}; nothing was changed`,
        'add --force to delete them first, set options.restore.existing: close (restored over, in place) or delete, or restore under other names (--rename-to, options.restore.rename_pattern)');
    }
    // Stage the repository: a fresh directory next to the live one, never over it.
    const files = await extract(ctx, src, opts, stage);
    ctx.log.info({ location: stage.location, volume: stage.volume, files: files.files, bytes: files.bytes }, 'repository staged and verified');
    await register(ctx, es, c, restoreRepo, stage, true);
    registeredRepo = true;
    const info = await getSnapshot(es, restoreRepo, snapshot).catch((err: unknown) => { throw esError(err, `reading the staged repository in ${c.name}`); });
    if (!info || info.state !== 'SUCCESS') {
      throw new SnapError(`the stored repository has no complete snapshot ${snapshot} (${info?.state ?? 'missing'}); the cluster was not changed`, { exitCode: ExitCode.integrity });
    }
    const existingNow = await existingIndices(es, selection.map(target), c.name);
    if (existingNow.length && mode === 'fail') throw new RefusedError(`index(es) ${existingNow.join(', ')} appeared in the cluster of ${c.name} during the restore; nothing was changed`, 'add --force to delete them first');
    if (existingNow.length) {
      if (mode === 'delete') await es.client.indices.delete({ index: existingNow.join(',') });
      else await es.client.indices.close({ index: existingNow.join(',') });
      ctx.log.info({ indices: existingNow, mode }, mode === 'delete' ? 'deleted existing indices' : 'closed existing indices to restore over them');
    }
    const t0 = performance.now();
    const res = await es.client.snapshot.restore({
      repository: restoreRepo,
      snapshot,
      wait_for_completion: true,
      indices: selection.join(','),
      include_global_state: false,
      include_aliases: true,
      ...(rename ? { rename_pattern: rename.pattern, rename_replacement: rename.replacement } : {}),
    }, { requestTimeout: o.timeout_seconds * 1000, signal: ctx.signal }).catch((err: unknown) => { throw esError(err, `restoring snapshot ${snapshot} in ${c.name}`); });
    const shards = (res as { snapshot?: { shards?: { failed?: number; total?: number } } }).snapshot?.shards;
    if (shards?.failed) throw new SnapError(`restore of snapshot ${snapshot}: ${shards.failed} of ${shards.total} shards failed`);
    const targets = selection.filter((n) => exp.indices![n]).map(target);
    const health = await es.client.cluster.health({ index: targets.join(','), wait_for_status: 'yellow', timeout: `${o.timeout_seconds}s` });
    if (health.timed_out) throw new SnapError(`restored indices did not reach yellow within ${o.timeout_seconds} s (${health.status})`, { hint: 'check GET _cluster/allocation/explain' });
    const actual = await indexFigures(es, targets.join(','));
    const diffs: string[] = [];
    const stats: Record<string, IndexStats> = {};
    for (const n of selection.filter((x) => exp.indices![x])) {
      const e = exp.indices[n]!;
      const got = actual.get(target(n));
      stats[target(n)] = got ? { docs: got.docs, mapping_sha256: got.mapping_sha256 } : {};
      if (e.docs === undefined) continue;
      if (!got) {
        diffs.push(`${target(n)} missing`);
      } else if (!e.changed) {
        if (got.docs !== e.docs) diffs.push(`${target(n)}: ${got.docs} documents, the backup has ${e.docs}`);
        if (e.mapping_sha256 && got.mapping_sha256 !== e.mapping_sha256) diffs.push(`${target(n)}: its mapping differs from the backup's`);
      } else if (got.docs < Math.min(e.docs, e.docs_before ?? e.docs) || got.docs > Math.max(e.docs, e.docs_before ?? e.docs)) {
        diffs.push(`${target(n)}: ${got.docs} documents, outside ${e.docs_before}..${e.docs} counted around the snapshot`);
      }
    }
    if (diffs.length) throw new SnapError(`restored indices differ from the backup: ${diffs.slice(0, 10).join('; ')}`, { exitCode: ExitCode.integrity });
    ctx.log.info({ indices: targets.length, seconds: Number(((performance.now() - t0) / 1000).toFixed(3)), status: health.status }, 'restored document counts and mappings match the backup');
    return { destination: `container ${c.name} (${targets.join(', ')})`, stats: { snapshot, indices: stats }, restarted: [] };
  } finally {
    if (!o.restore.keep_repository || !registeredRepo) {
      if (registeredRepo) await unregister(es, restoreRepo).catch((err: unknown) => ctx.log.warn({ repository: restoreRepo }, `could not unregister: ${String(err)}`));
      if (stage) await removeStage(ctx, stage).catch((err: unknown) => ctx.log.warn({ location: stage?.location }, `could not remove the staged repository: ${String(err)}`));
    } else {
      ctx.log.info({ repository: restoreRepo, location: stage?.location }, 'the staged repository stays registered (options.restore.keep_repository)');
    }
    await es.close();
  }
}

async function existingIndices(es: Es, names: string[], container: string): Promise<string[]> {
  if (names.length === 0) return [];
  try {
    const res = await es.client.indices.get({ index: names.join(','), ignore_unavailable: true, allow_no_indices: true, expand_wildcards: 'all', features: ['settings'] });
    return Object.keys(res).sort();
  } catch (err) {
    throw esError(err, `Elasticsearch in ${container}`);
  }
}

async function extract(ctx: PluginContext, src: RawInput, opts: RestoreOptions, stage: RepoPlace): Promise<Record<string, number>> {
  const ref = stage.pathRepo.startsWith(stage.mountpoint) ? stage.pathRepo.slice(stage.mountpoint.length).replace(/^\/+/, '') || '.' : '.';
  const helper = await ctx.docker.runHelper({
    image: ctx.helperImage,
    purpose: 'es-restore',
    cmd: ['sh', '-c', EXTRACT, 'snapagent', MOUNT, stage.subpath, ref],
    mounts: [{ volume: stage.volume, target: MOUNT, readOnly: false }],
    data: 'in',
  });
  const res = await feedHelper(helper, src, opts.integrity);
  if (res.exitCode !== 0) throw new SnapError(`extracting the repository into volume ${stage.volume} failed (exit code ${res.exitCode}): ${toolMessages(res.stderr)}; the cluster was not changed`);
  const stats = parseStats(res.stderr);
  if (!stats) throw new SnapError('the restore helper reported no counts; the cluster was not changed');
  const want = opts.expected as { files?: number; bytes?: number };
  if ((want.files !== undefined && stats.files !== want.files) || (want.bytes !== undefined && stats.bytes !== want.bytes)) {
    throw new SnapError(`the extracted repository has ${stats.files} files / ${stats.bytes} bytes, the backup ${want.files} / ${want.bytes}; the cluster was not changed`, { exitCode: ExitCode.integrity });
  }
  return stats;
}

async function removeStage(ctx: PluginContext, stage: RepoPlace): Promise<void> {
  const helper = await ctx.docker.runHelper({ image: ctx.helperImage, purpose: 'es-restore-cleanup', cmd: ['sh', '-c', REMOVE, 'snapagent', MOUNT, stage.subpath], mounts: [{ volume: stage.volume, target: MOUNT, readOnly: false }] });
  helper.stdout.resume();
  const res = await helper.done;
  if (res.exitCode !== 0) throw new SnapError(`removing ${stage.location} failed: ${toolMessages(res.stderr)}`);
}
