// Restore of a mongodump archive: the selection as mongorestore arguments, every stored
// byte checked first, then mongorestore in the target container and a comparison of
// counts and indexes with the manifest. A whole restore of a dump taken with --oplog
// replays its oplog (--oplogReplay): the data is then as of the oplog's last entry.
import { pipeline } from 'node:stream/promises';
import type { MongoClient } from 'mongodb';
import { ExitCode, feedDraining, IntegrityError, type Job, lastLines, type PluginContext, type RawInput, RefusedError, type RestoreOptions, type RestoreReport, runningContainer, SnapError, UsageError } from '../../agent/plugin/index.ts';
import type { ArchiveStats, ArchiveSummary } from './archive.ts';
import { agentEndpoint, credentials, startTool, withClient } from './connection.ts';
import type { MongoOptions } from './options.ts';

/** Namespaces a restore leaves alone unless asked: accounts, and the cluster's own. */
const SYSTEM_NS = ['admin.system.*', 'config.*', 'local.*'];
const isSystem = (db: string, coll: string) => db === 'local' || db === 'config' || (db === 'admin' && coll.startsWith('system.'));

interface Selection {
  /** mongorestore arguments choosing and renaming namespaces, each one "--opt=value"
   * argument: a name never stands alone where the tool could read it as an option. */
  args: string[];
  /** The manifest's collections that this restore brings back, under their new names. */
  expected: ArchiveStats;
}

// What --database/--collection/--rename-to select, as mongorestore arguments and as the
// expected figures under the target names.
function select(all: ArchiveStats, opts: RestoreOptions, restoreUsers: boolean): Selection {
  const system = isSystem;
  const exclude = SYSTEM_NS.filter((ns) => !(restoreUsers && ns === 'admin.system.*')).map((ns) => `--nsExclude=${ns}`);
  const expected: ArchiveStats = {};
  const keep = (db: string, coll: string, toDb: string, toColl: string) => ((expected[toDb] ??= {})[toColl] = all[db]![coll]!);
  if (!opts.database) {
    for (const [db, colls] of Object.entries(all)) for (const coll of Object.keys(colls)) if (!system(db, coll) || (restoreUsers && db === 'admin')) keep(db, coll, db, coll);
    return { args: exclude, expected };
  }
  const db = opts.database;
  if (!all[db]) throw new UsageError(`the backup has no database "${db}"`, `it has: ${Object.keys(all).join(', ')}`);
  if (opts.collection) {
    const coll = opts.collection;
    if (!all[db][coll]) throw new UsageError(`the backup has no collection "${db}.${coll}"`, `${db} has: ${Object.keys(all[db]).join(', ')}`);
    const to = opts.renameTo ? (opts.renameTo.includes('.') ? opts.renameTo : `${db}.${opts.renameTo}`) : `${db}.${coll}`;
    const dot = to.indexOf('.');
    keep(db, coll, to.slice(0, dot), to.slice(dot + 1));
    return { args: [`--nsInclude=${db}.${coll}`, ...(opts.renameTo ? [`--nsFrom=${db}.${coll}`, `--nsTo=${to}`] : [])], expected };
  }
  if (opts.renameTo?.includes('.')) throw new UsageError(`--rename-to ${opts.renameTo}: a database name has no "."`, 'to rename one collection, add --collection');
  const to = opts.renameTo ?? db;
  for (const coll of Object.keys(all[db])) if (!system(db, coll) || restoreUsers) keep(db, coll, to, coll);
  return { args: [`--nsInclude=${db}.*`, ...exclude, ...(opts.renameTo ? [`--nsFrom=${db}.*`, `--nsTo=${to}.*`] : [])], expected };
}

export async function restoreArchive(ctx: PluginContext, job: Job<MongoOptions>, src: RawInput, opts: RestoreOptions): Promise<RestoreReport> {
  const manifest = opts.expected as unknown as ArchiveSummary & { oplog?: boolean };
  const restoreUsers = job.options.restore_users || opts.restoreUsers;
  const sel = select(manifest.databases ?? {}, opts, restoreUsers);
  const c = await runningContainer(ctx, opts.toContainer ?? job.container, 'restore', 'mongo');
  const cred = await credentials(ctx, c, job.options);
  const ep = agentEndpoint(c, job.options);
  // Collections that exist with documents are replaced only when asked (--force: --drop).
  const occupied = await withClient(ep, cred, (client) => occupiedCollections(client, sel.expected));
  if (occupied.length && !opts.force) {
    throw new RefusedError(`restore would overwrite ${occupied.length} collection(s) holding documents: ${occupied.slice(0, 5).join(', ')}${occupied.length > 5 ? ', ...' : ''}`,
      'add --force to replace them (mongorestore --drop), or restore beside them with --rename-to or --to-container');
  }
  // --oplogReplay only for a whole restore: the oplog spans every namespace, and
  // mongorestore refuses it with any namespace selection or rename.
  const replay = manifest.oplog === true && !opts.database;
  const window = manifest.oplog_window;
  if (opts.log && !replay) {
    throw new UsageError(
      opts.database ? `a restore to a point in time (--at) restores the whole dump: it takes no --database/--collection/--rename-to` : `backup ${opts.id} was dumped without --oplog: no oplog to replay after it`,
      opts.database ? 'restore everything to the point in time, into a throwaway container (--to-container) if only part of it is wanted' : undefined,
    );
  }
  if (manifest.oplog === true && opts.database) {
    ctx.log.warn({ oplog_window: window }, `restoring a selection (${opts.collection ? `${opts.database}.${opts.collection}` : opts.database}): the dump's oplog is not replayed, so each collection is as mongodump read it during the dump, not as of one point in time; restore the whole dump for that`);
  }
  // mongorestore changes live data as it reads: check every stored byte first (the oplog
  // slices' too).
  await src.verify();
  for (const piece of opts.log?.pieces ?? []) await piece.input.verify();
  // With --oplogReplay mongorestore takes no --nsExclude: the system namespaces (and
  // their oplog entries) are left out of the archive on its way in instead.
  // (archive.ts and filter.ts read BSON with the driver's parser: loaded with the first mongo job)
  const keep = (db: string, coll: string) => !isSystem(db, coll) || (restoreUsers && db === 'admin' && coll.startsWith('system.'));
  const logDropped = { dropped: 0 };
  const extra = opts.log ? (await import('./oplog.ts')).replayEntries(opts.log, keep, logDropped) : undefined;
  const filter = replay ? new (await import('./filter.ts')).ArchiveFilter(keep, extra) : undefined;
  const args = ['--archive', '--stopOnError', ...(opts.force ? ['--drop'] : []), ...(replay ? ['--oplogReplay'] : sel.args)];
  const run = await startTool(ctx, c, cred, 'mongorestore', args);
  run.stdout.resume();
  let filterError: Error | undefined;
  if (filter) {
    pipeline(src.stream(), filter).catch((err: Error) => {
      filterError = err;
      void run.kill();
    });
    feedDraining(filter, run.stdin!);
  } else if (run.openPipe) {
    // zstd writes the archive into mongorestore's named pipe itself: no byte through
    // the agent (a worker thread hashes the stored bytes on their way to zstd)
    run.openPipe().then((fh) => src.toHandle(fh)).catch(() => run.kill());
  } else {
    feedDraining(src.stream(), run.stdin!);
  }
  // Both settle: a mongorestore that failed on its own stopped reading, so zstd (writing
  // into its pipe) fails too; that is said by mongorestore's message. Stored bytes that do
  // not match the manifest are said first, whatever mongorestore made of them.
  const [res, fed] = await Promise.all([run.done, opts.integrity.then(() => undefined, (err: unknown) => err)]);
  if (filterError) throw new SnapError(`cannot read the stored mongodump archive: ${filterError.message}`, { exitCode: ExitCode.integrity });
  if (fed instanceof IntegrityError) throw fed;
  if (res.exitCode !== 0) throw new SnapError(`mongorestore in ${c.name} failed (exit code ${res.exitCode}): ${lastLines(res.stderr)}`);
  if (fed) throw fed;
  if (filter && (filter.dropped.namespaces.size || filter.dropped.oplogEntries)) {
    ctx.log.debug({ namespaces: [...filter.dropped.namespaces], oplog_entries: filter.dropped.oplogEntries }, 'left out of the oplog replay: system namespaces');
  }

  const actual = await withClient(ep, cred, (client) => describe(client, sel.expected));
  // With an oplog replayed, counts move by the writes made during the dump.
  const exact = !replay || (manifest.oplog_entries ?? 0) === 0;
  const { compareCollections } = await import('./archive.ts');
  const { diffs, warnings } = compareCollections(sel.expected, actual, exact);
  for (const w of warnings) ctx.log.warn(`${w} (the oplog replayed writes made during the dump)`);
  if (diffs.length) throw new SnapError(`restored data differs from the backup: ${diffs.slice(0, 10).join('; ')}`, { exitCode: ExitCode.integrity });
  const collections = Object.values(actual).reduce((n, d) => n + Object.keys(d).length, 0);
  const appended = filter?.appendedOplogEntries ?? 0;
  const oplog = opts.log
    ? { replayed: true, entries: filter!.keptOplogEntries + appended, dump_entries: filter!.keptOplogEntries, slice_entries: appended, slices: opts.log.pieces.length, at: opts.log.at }
    : replay ? { replayed: true, entries: filter!.keptOplogEntries, as_of: window?.last ?? null } : { replayed: false, ...(manifest.oplog === true ? { skipped: 'a selective restore (--database/--collection) does not replay the oplog' } : {}) };
  ctx.log.info({ databases: Object.keys(actual), collections, oplog_replayed: replay, ...(opts.log ? { at: opts.log.at, slice_entries: appended } : replay && window ? { as_of: window.last.time } : {}) }, 'restored document counts and indexes match the backup');
  return { destination: `container ${c.name}`, stats: { databases: actual, oplog }, restarted: [] };
}

async function occupiedCollections(client: MongoClient, expected: ArchiveStats): Promise<string[]> {
  const out: string[] = [];
  for (const [db, colls] of Object.entries(expected)) {
    const existing = new Set((await client.db(db).listCollections({}, { nameOnly: true }).toArray()).map((x) => x.name));
    for (const coll of Object.keys(colls)) {
      // One document is enough to know (a count can scan the whole collection).
      if (existing.has(coll) && (await client.db(db).collection(coll).findOne({}, { projection: { _id: 1 } }))) out.push(`${db}.${coll}`);
    }
  }
  return out;
}

// The server's own count of a collection (its metadata, as `$collStats` gives it): what
// mongorestore just loaded, without reading every document again (countDocuments
// scans the collection: as long as the load itself on FerretDB). A server without
// $collStats is asked with countDocuments.
async function documentCount(col: ReturnType<ReturnType<MongoClient['db']>['collection']>): Promise<number> {
  try {
    const [stats] = await col.aggregate<{ count?: unknown }>([{ $collStats: { count: {} } }]).toArray();
    if (typeof stats?.count === 'number' && Number.isInteger(stats.count)) return stats.count;
  } catch {
    // fall through
  }
  return col.countDocuments({});
}

// Counts and index definitions, as the server has them now, for the given collections.
async function describe(client: MongoClient, expected: ArchiveStats): Promise<ArchiveStats> {
  const { indexSpec } = await import('./archive.ts');
  const out: ArchiveStats = {};
  for (const [db, colls] of Object.entries(expected)) {
    const existing = new Map((await client.db(db).listCollections().toArray()).map((x) => [x.name, x.type ?? 'collection']));
    for (const [coll, e] of Object.entries(colls)) {
      const type = existing.get(coll);
      if (!type) continue;
      const col = client.db(db).collection(coll);
      const documents = e.type === 'collection' ? await documentCount(col) : 0;
      const indexes = e.type === 'collection' ? (await col.listIndexes().toArray()).map((ix) => indexSpec(ix)).sort((a, b) => a.name.localeCompare(b.name)) : [];
      (out[db] ??= {})[coll] = { type, documents, indexes };
    }
  }
  return out;
}
