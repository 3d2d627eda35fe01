// Restore of an Elasticsearch snapshot, in named steps: check the manifest's names,
// choose the indices (and their target names), stage the stored repository in a fresh
// directory of the target's path.repo volume (never over the live one; a backup with a
// file list is assembled from the pieces of its chain, exactly the listed files, each
// checked against its sha256, files.ts), register it
// read-only under another name, make room for the indices (refuse, delete or close the
// existing ones), restore them, wait for yellow, and compare document counts and
// mappings with the manifest. The staged repository is unregistered and removed after,
// unless options.restore.keep_repository. Both are recorded before they are made, so
// that the next start undoes them after a kill -9 before the indices began to change
// (repair.ts).
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ExitCode, feedHelper, feedPiece, IntegrityError, noteLiveChange, noteRepair, parseStats, RefusedError, runningContainer, SnapError, toolMessages, UsageError, type ContainerDetails, type HelperResult, type Job, type PluginContext, type RawInput, type RestoreOptions, type RestoreReport } from '../../agent/plugin/index.ts';
import { connect, esError, type Es } from './connect.ts';
import { assemble, parseList, type FileList } from './files.ts';
import { checkIndexNames } from './names.ts';
import type { EsOptions } from './options.ts';
import { stagedRecord } from './repair.ts';
import { pathRepo, place, register, registered, removeStaged, unregister, type RepoPlace } from './repository.ts';
import { CHECK, EXTRACT, MOUNT, PIECE, STAGE } from './scripts.ts';
import { getSnapshot, indexFigures, type IndexFigures, type IndexStats } from './snapshot.ts';

/** A snapshot, index or data stream name as Elasticsearch allows it (no wildcard, comma,
 * path or URL characters). */
const ES_NAME = /^[a-z0-9.][^\\/*?"<>|,#:\sA-Z]{0,254}$/;

/** What the manifest says the snapshot holds. */
interface Recorded {
  snapshot: string;
  indices: Record<string, IndexStats>;
  streams: string[];
}

/** The indices and data streams to restore, and the name each one gets. */
interface Selection {
  names: string[];
  rename?: { pattern: string; replacement: string };
  target(name: string): string;
}

type Mode = EsOptions['restore']['existing'];

export async function restoreSnapshot(ctx: PluginContext, job: Job<EsOptions>, src: RawInput, opts: RestoreOptions): Promise<RestoreReport> {
  const o = job.options;
  const rec = recorded(opts);
  const sel = selectIndices(o, opts, rec);
  const list = opts.index ? parseList(opts.index, `the file list of backup ${opts.id}`) : undefined;
  if (!list && opts.chain.length) throw new IntegrityError(`backup ${opts.id} depends on ${opts.chain.map((p) => p.id).join(', ')} but has no file list to assemble its repository from; the cluster was not changed`);
  const own = !opts.toContainer || opts.toContainer === job.container;
  const c = await runningContainer(ctx, opts.toContainer ?? job.container, 'restore', 'elasticsearch');
  const es = await connect(ctx, c, o, own);
  const mode: Mode = opts.force ? 'delete' : o.restore.existing;
  const restoreRepo = `${o.repository}-restore-${opts.id.toLowerCase()}`;
  let stage: RepoPlace | undefined;
  let registeredRepo = false;
  try {
    const repos = await pathRepo(es, c.name);
    const live = place(c, repos, own ? o.location ?? (await registered(es, o.repository, c.name))?.location : undefined, o.repository);
    stage = place(c, repos, `${live.location}-restore-${opts.id.toLowerCase()}`, o.repository);
    const existing = await existingIndices(es, sel.names.map(sel.target), c.name);
    if (existing.length && mode === 'fail') {
      throw new RefusedError(`index(es) ${existing.join(', ')} exist in the cluster of ${c.name}; nothing was changed`,
        'add --force to delete them first, set options.restore.existing: close (restored over, in place) or delete, or restore under other names (--rename-to, options.restore.rename_pattern)');
    }
    // Stage the repository: a fresh directory next to the live one, never over it.
    await noteRepair('restore', job.name, stagedRecord(c.name, stage));
    const files = list ? await assembleStage(ctx, src, opts, stage, list) : await extract(ctx, src, opts, stage);
    ctx.log.info({ location: stage.location, volume: stage.volume, files: files.files, bytes: files.bytes }, 'repository staged and verified');
    await noteRepair('restore', job.name, stagedRecord(c.name, stage, restoreRepo));
    await register(ctx, es, c, restoreRepo, stage, true);
    registeredRepo = true;
    await checkStaged(es, c, restoreRepo, rec.snapshot);
    await noteLiveChange(job.name);
    await makeRoom(ctx, es, c, sel, mode);
    const t0 = performance.now();
    const { targets, status } = await restoreIndices(ctx, es, c, o, restoreRepo, rec, sel);
    const stats = compareIndices(rec, sel, await indexFigures(es, targets.join(',')));
    ctx.log.info({ indices: targets.length, seconds: Number(((performance.now() - t0) / 1000).toFixed(3)), status }, 'restored document counts and mappings match the backup');
    return { destination: `container ${c.name} (${targets.join(', ')})`, stats: { snapshot: rec.snapshot, indices: stats }, restarted: [] };
  } finally {
    await cleanUp(ctx, es, o, restoreRepo, registeredRepo, stage);
  }
}

/** The manifest's snapshot and indices; its names go into API paths and index lists:
 * plain names only. */
function recorded(opts: RestoreOptions): Recorded {
  const exp = opts.expected as { snapshot?: string; indices?: Record<string, IndexStats>; data_streams?: string[] };
  if (!exp.snapshot || !exp.indices) throw new SnapError(`backup ${opts.id} records no snapshot: it was not made by this plugin`, { exitCode: ExitCode.integrity });
  const all = Object.keys(exp.indices);
  const badName = [exp.snapshot, ...all, ...(exp.data_streams ?? [])].find((n) => typeof n !== 'string' || !ES_NAME.test(n) || n === '.' || n === '..');
  if (badName !== undefined) {
    throw new RefusedError(`backup ${opts.id}: its manifest names snapshot or index "${String(badName).slice(0, 80)}", not a plain Elasticsearch name; the cluster was not changed`, 'the manifest was altered, or not written by snapagent');
  }
  checkIndexNames([...all, ...(exp.data_streams ?? [])], "the backup's manifest", true);
  return { snapshot: exp.snapshot, indices: exp.indices, streams: exp.data_streams ?? [] };
}

function wildcard(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

// What to restore: --database (comma-separated names or wildcards) or options.restore.indices,
// else every index and data stream of the snapshot except dot-indices; and under which
// names (--rename-to, or options.restore.rename_pattern/rename_replacement).
function selectIndices(o: EsOptions, opts: RestoreOptions, rec: Recorded): Selection {
  const all = Object.keys(rec.indices);
  const streams = rec.streams;
  const asked = opts.database ? opts.database.split(',').map((s) => s.trim()).filter(Boolean) : o.restore.indices;
  let names: string[];
  if (asked) {
    names = [...new Set(asked.flatMap((p) => [...all, ...streams].filter((n) => wildcard(p).test(n))))];
    const none = asked.filter((p) => ![...all, ...streams].some((n) => wildcard(p).test(n)));
    if (none.length) throw new UsageError(`the backup has no index matching ${none.join(', ')}`, `it has: ${all.filter((n) => !n.startsWith('.')).join(', ')}`);
  } else {
    names = [...all.filter((n) => !n.startsWith('.')), ...streams];
  }
  if (names.length === 0) throw new UsageError(`backup ${opts.id} holds no index to restore`);
  let rename: Selection['rename'];
  if (opts.renameTo) {
    if (names.length !== 1) throw new UsageError('--rename-to needs --database naming exactly one index', 'or set options.restore.rename_pattern / rename_replacement');
    rename = { pattern: `^${names[0]!.replace(/[.+?^${}()|[\]\\*]/g, '\\$&')}$`, replacement: opts.renameTo };
  } else if (o.restore.rename_pattern) {
    rename = { pattern: o.restore.rename_pattern, replacement: o.restore.rename_replacement ?? '' };
  }
  // Java's replaceAll and JavaScript's replace agree on $1-style references.
  const target = (n: string) => (rename ? n.replace(new RegExp(rename.pattern, 'g'), rename.replacement) : n);
  return { names, rename, target };
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

/** The directory whose owner the extracted files get, relative to the volume's root:
 * the path.repo directory, which the image gave to Elasticsearch's user. */
function ownerRef(stage: RepoPlace): string {
  return stage.pathRepo.startsWith(stage.mountpoint) ? stage.pathRepo.slice(stage.mountpoint.length).replace(/^\/+/, '') || '.' : '.';
}

/** A backup without a file list: its tar is the whole repository. */
async function extract(ctx: PluginContext, src: RawInput, opts: RestoreOptions, stage: RepoPlace): Promise<Record<string, number>> {
  const helper = await ctx.docker.runHelper({
    image: ctx.helperImage,
    purpose: 'es-restore',
    cmd: ['sh', '-c', EXTRACT, 'snapagent', MOUNT, stage.subpath, ownerRef(stage)],
    mounts: [{ volume: stage.volume, target: MOUNT, readOnly: false }],
    data: 'in',
  });
  const res = await feedHelper(helper, src, opts.integrity);
  if (res.exitCode !== 0) throw new SnapError(`extracting the repository into volume ${stage.volume} failed (exit code ${res.exitCode}): ${toolMessages(res.stderr)}; the cluster was not changed`);
  return checkCounts(res, opts);
}

/** A backup with a file list: the staged repository is assembled from the listed files
 * of each piece of its chain (oldest first, a piece holding none of them is not read),
 * then of its own data, and must hold exactly those files with their sha256. */
async function assembleStage(ctx: PluginContext, src: RawInput, opts: RestoreOptions, stage: RepoPlace, list: FileList): Promise<Record<string, number>> {
  const plan = assemble(list, opts.id, opts.chain.map((p) => p.id));
  if (plan.pieces.at(-1)!.paths.length === 0) throw new IntegrityError(`the file list of backup ${opts.id} names none of its own files (a snapshot always writes some); the cluster was not changed`);
  const volume = [{ volume: stage.volume, target: MOUNT, readOnly: false }];
  const run = async (purpose: string, script: string, args: string[], input: RawInput | undefined, integrity?: Promise<void>): Promise<HelperResult> => {
    const helper = await ctx.docker.runHelper({ image: ctx.helperImage, purpose, cmd: ['sh', '-c', script, 'snapagent', MOUNT, stage.subpath, ...args], mounts: volume, ...(input ? { data: 'in' as const } : {}) });
    if (input) return integrity ? feedHelper(helper, input, integrity) : feedPiece(helper, input);
    helper.stdout.resume();
    return helper.done;
  };
  const failed = (what: string, res: HelperResult) => new SnapError(`${what} in volume ${stage.volume} failed (exit code ${res.exitCode}): ${toolMessages(res.stderr)}; the cluster was not changed`, { exitCode: res.exitCode === 66 || res.exitCode === 67 || res.exitCode === 65 ? ExitCode.integrity : ExitCode.failed });
  let res = await run('es-restore-stage', STAGE, [], bufferInput(plan.plan), Promise.resolve());
  if (res.exitCode !== 0) throw failed('making the staged repository', res);
  for (const [n, piece] of plan.pieces.entries()) {
    if (piece.paths.length === 0) continue;
    const own = n === plan.pieces.length - 1;
    // the backup's own data comes last: `integrity` then covers it and every piece read
    res = await run('es-restore', PIECE, [String(n)], own ? src : opts.chain[n]!.input, own ? opts.integrity : undefined);
    if (res.exitCode !== 0) throw failed(`extracting ${piece.paths.length} files of backup ${piece.id}`, res);
    ctx.log.info({ backup: piece.id, files: piece.paths.length }, own ? 'extracted the backup\'s own files' : 'extracted the files the backup takes from an earlier one');
  }
  res = await run('es-restore-check', CHECK, [ownerRef(stage)], undefined);
  if (res.exitCode !== 0) throw failed('checking the assembled repository against its file list', res);
  return checkCounts(res, opts);
}

/** The stats line of the restore helper, compared with the manifest's whole-repository
 * counts. */
function checkCounts(res: HelperResult, opts: RestoreOptions): Record<string, number> {
  const stats = parseStats(res.stderr);
  if (!stats) throw new SnapError('the restore helper reported no counts; the cluster was not changed');
  const want = opts.expected as { files?: number; bytes?: number };
  if ((want.files !== undefined && stats.files !== want.files) || (want.bytes !== undefined && stats.bytes !== want.bytes)) {
    throw new SnapError(`the extracted repository has ${stats.files} files / ${stats.bytes} bytes, the backup ${want.files} / ${want.bytes}; the cluster was not changed`, { exitCode: ExitCode.integrity });
  }
  return stats;
}

/** Bytes of our own (the assembly plan) as the input of a helper. */
function bufferInput(bytes: Buffer): RawInput {
  return {
    verify: async () => undefined,
    stream: () => Readable.from([bytes]),
    toHandle: async (fh: FileHandle) => {
      try {
        await fh.writeFile(bytes);
      } finally {
        await fh.close();
      }
    },
  };
}

/** The staged repository holds the snapshot, complete. */
async function checkStaged(es: Es, c: ContainerDetails, repository: string, snapshot: string): Promise<void> {
  const info = await getSnapshot(es, repository, snapshot).catch((err: unknown) => { throw esError(err, `reading the staged repository in ${c.name}`); });
  if (!info || info.state !== 'SUCCESS') {
    throw new SnapError(`the stored repository has no complete snapshot ${snapshot} (${info?.state ?? 'missing'}); the cluster was not changed`, { exitCode: ExitCode.integrity });
  }
}

/** Indices that exist under the target names now: refused, deleted or closed (mode). */
async function makeRoom(ctx: PluginContext, es: Es, c: ContainerDetails, sel: Selection, mode: Mode): Promise<void> {
  const existingNow = await existingIndices(es, sel.names.map(sel.target), c.name);
  if (existingNow.length && mode === 'fail') throw new RefusedError(`index(es) ${existingNow.join(', ')} appeared in the cluster of ${c.name} during the restore; nothing was changed`, 'add --force to delete them first');
  if (existingNow.length) {
    if (mode === 'delete') await es.client.indices.delete({ index: existingNow.join(',') });
    else await es.client.indices.close({ index: existingNow.join(',') });
    ctx.log.info({ indices: existingNow, mode }, mode === 'delete' ? 'deleted existing indices' : 'closed existing indices to restore over them');
  }
}

/** Restores the selection from the staged repository and waits until its indices are
 * yellow; returns their target names. */
async function restoreIndices(ctx: PluginContext, es: Es, c: ContainerDetails, o: EsOptions, repository: string, rec: Recorded, sel: Selection): Promise<{ targets: string[]; status: string }> {
  const res = await es.client.snapshot.restore({
    repository,
    snapshot: rec.snapshot,
    wait_for_completion: true,
    indices: sel.names.join(','),
    include_global_state: false,
    include_aliases: true,
    ...(sel.rename ? { rename_pattern: sel.rename.pattern, rename_replacement: sel.rename.replacement } : {}),
  }, { requestTimeout: o.timeout_seconds * 1000, signal: ctx.signal }).catch((err: unknown) => { throw esError(err, `restoring snapshot ${rec.snapshot} in ${c.name}`); });
  const shards = (res as { snapshot?: { shards?: { failed?: number; total?: number } } }).snapshot?.shards;
  if (shards?.failed) throw new SnapError(`restore of snapshot ${rec.snapshot}: ${shards.failed} of ${shards.total} shards failed`);
  const targets = sel.names.filter((n) => rec.indices[n]).map(sel.target);
  const health = await es.client.cluster.health({ index: targets.join(','), wait_for_status: 'yellow', timeout: `${o.timeout_seconds}s` });
  if (health.timed_out) throw new SnapError(`restored indices did not reach yellow within ${o.timeout_seconds} s (${health.status})`, { hint: 'check GET _cluster/allocation/explain' });
  return { targets, status: health.status };
}

/** Compares the restored indices' counts and mappings with the manifest; returns what
 * was counted, by target name. */
function compareIndices(rec: Recorded, sel: Selection, actual: Map<string, IndexFigures>): Record<string, IndexStats> {
  const diffs: string[] = [];
  const stats: Record<string, IndexStats> = {};
  for (const n of sel.names.filter((x) => rec.indices[x])) {
    const e = rec.indices[n]!;
    const t = sel.target(n);
    const got = actual.get(t);
    stats[t] = got ? { docs: got.docs, mapping_sha256: got.mapping_sha256 } : {};
    if (e.docs === undefined) continue;
    if (!got) {
      diffs.push(`${t} missing`);
    } else if (!e.changed) {
      if (got.docs !== e.docs) diffs.push(`${t}: ${got.docs} documents, the backup has ${e.docs}`);
      if (e.mapping_sha256 && got.mapping_sha256 !== e.mapping_sha256) diffs.push(`${t}: its mapping differs from the backup's`);
    } else if (got.docs < Math.min(e.docs, e.docs_before ?? e.docs) || got.docs > Math.max(e.docs, e.docs_before ?? e.docs)) {
      diffs.push(`${t}: ${got.docs} documents, outside ${e.docs_before}..${e.docs} counted around the snapshot`);
    }
  }
  if (diffs.length) throw new SnapError(`restored indices differ from the backup: ${diffs.slice(0, 10).join('; ')}`, { exitCode: ExitCode.integrity });
  return stats;
}

/** Unregisters and removes the staged repository (unless it is to be kept), and closes
 * the client. */
async function cleanUp(ctx: PluginContext, es: Es, o: EsOptions, restoreRepo: string, registeredRepo: boolean, stage: RepoPlace | undefined): Promise<void> {
  if (!o.restore.keep_repository || !registeredRepo) {
    if (registeredRepo) await unregister(es, restoreRepo).catch((err: unknown) => ctx.log.warn({ repository: restoreRepo }, `could not unregister: ${String(err)}`));
    if (stage) await removeStaged(ctx, stage.volume, stage.subpath).catch((err: unknown) => ctx.log.warn({ location: stage.location }, `could not remove the staged repository: ${String(err)}`));
  } else {
    ctx.log.info({ repository: restoreRepo, location: stage?.location }, 'the staged repository stays registered (options.restore.keep_repository)');
  }
  await es.close();
}
