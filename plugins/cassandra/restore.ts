// Restore onto one Cassandra node: the backup's files staged on the node's data volume
// (never over live data) — exactly those its index lists, each taken from the backup
// that holds it (the chosen one, or one it depends on: file-index.ts) and its sha256
// checked there; a backup without an index ships every file itself —, missing keyspaces
// and tables created from the shipped schema (every statement checked first), each table
// loaded with `nodetool import`, then the rows counted again and compared with the
// manifest.
import path from 'node:path';
import { type ContainerDetails, ExitCode, feedDraining, IntegrityError, type Job, lastLines, noteLiveChange, noteStage, type PluginContext, type PluginStats, type RawInput, RefusedError, type RestoreOptions, type RestoreReport, runIn, runningContainer, SnapError, UsageError, writePrivateFile } from '../../agent/plugin/index.ts';
import { connectNode, countRows, type Node, readSchema, type Schema } from './cql.ts';
import { type IndexedFile, memberOf, parseIndex, planRestore } from './file-index.ts';
import type { KeyspaceStats, TableStats } from './manifest.ts';
import { checkTables } from './names.ts';
import type { CassandraOptions } from './options.ts';
import { checkKeyspaceCql, checkNames, checkTableCql, checkTypeCql } from './schema-check.ts';
import { DISCARD, EXTRACT, IMPORT, parseSections, parseSums, SCHEMAS, sh, SUMS, TABLESTATS } from './scripts.ts';

interface Wanted {
  keyspace: string;
  table: string;
  expected: TableStats;
}

export async function restoreNode(ctx: PluginContext, job: Job<CassandraOptions>, src: RawInput, opts: RestoreOptions): Promise<RestoreReport> {
  const o = job.options;
  if (opts.renameTo) throw new UsageError('the cassandra plugin restores keyspaces and tables under their own names', 'drop --rename-to; use --to-container to restore onto another node');
  const backed = opts.expected.keyspaces as Record<string, KeyspaceStats> | undefined;
  if (!backed) throw new SnapError('the manifest records no keyspaces: not a cassandra backup of this snapagent', { exitCode: ExitCode.integrity });
  checkNames(backed);
  // The manifest's names become nodetool arguments and paths on the target node.
  checkTables(Object.entries(backed).flatMap(([keyspace, k]) => Object.entries(k.tables ?? {}).map(([table, t]) => ({ keyspace, table, id: t.id }))), Object.keys(backed), "the backup's manifest", true);
  if (opts.database && !backed[opts.database]) throw new UsageError(`the backup has no keyspace "${opts.database}"`, `it has: ${Object.keys(backed).join(', ')}`);
  if (opts.collection && !backed[opts.database!]!.tables[opts.collection]) {
    throw new UsageError(`the backup has no table "${opts.database}.${opts.collection}"`, `keyspace ${opts.database} has: ${Object.keys(backed[opts.database!]!.tables).join(', ') || 'no tables'}`);
  }
  const keyspaces = opts.database ? [opts.database] : Object.keys(backed);
  const wanted: Wanted[] = keyspaces.flatMap((ks) =>
    Object.entries(backed[ks]!.tables)
      .filter(([t]) => !opts.collection || t === opts.collection)
      .map(([table, expected]) => ({ keyspace: ks, table, expected })),
  );
  // the stored schema runs as superuser: every statement is checked before any runs
  for (const ks of keyspaces) {
    checkKeyspaceCql(ks, backed[ks]!.cql);
    for (const t of backed[ks]!.types ?? []) checkTypeCql(ks, t);
  }
  const c = await runningContainer(ctx, opts.toContainer ?? job.container, 'restore', 'cassandra');
  const node = await connectNode(ctx, c, o);
  try {
    const live = await readSchema(node.client);
    const liveTable = (w: Wanted) => live.tables.find((t) => t.keyspace === w.keyspace && t.table === w.table);
    const merged = await holdingData(ctx, c, wanted.filter((w) => liveTable(w)));
    if (merged.size && !opts.force) {
      throw new RefusedError(
        `table(s) ${[...merged].join(', ')} on ${c.name} hold data; nothing was changed`,
        'drop or truncate them first (imported SSTables merge with live data by write time: rows deleted since the backup would come back), or add --force to merge',
      );
    }
    const stage = `${path.posix.dirname(o.data_dir)}/snapagent-restore-${opts.id}`;
    try {
      await noteStage(job.name, { kind: 'container', container: c.name, path: stage });
      await stageFiles(ctx, c, src, opts, stage, o.data_dir, wanted);
      await noteLiveChange(job.name);
      const created = await createSchema(ctx, node, c, live, backed, keyspaces, wanted, stage);
      await importTables(ctx, c, stage, wanted);
      ctx.log.info({ container: c.name, tables: wanted.length, created }, 'SSTables imported');
    } finally {
      const res = await sh(ctx, c.name, DISCARD, [stage]).catch(() => undefined);
      if (res?.exitCode !== 0) ctx.log.warn({ container: c.name, dir: stage }, 'could not remove the staging directory');
    }
    return { destination: `container ${c.name}`, stats: await verify(ctx, node, opts, wanted, merged), restarted: [] };
  } finally {
    await node.close();
  }
}

// The tables that hold data on this node itself (SSTables or memtable cells): what
// `nodetool import` would merge with. Node-local, so that in a ring the members restored
// after the first are not refused for the rows the first one brought back.
async function holdingData(ctx: PluginContext, c: ContainerDetails, tables: Wanted[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (tables.length === 0) return out;
  const names = tables.map((w) => `${w.keyspace}.${w.table}`);
  const res = await sh(ctx, c.name, TABLESTATS, names);
  let stats: Record<string, { tables?: Record<string, { sstable_count?: number; memtable_cell_count?: number }> }>;
  try {
    if (res.exitCode !== 0) throw new Error(`exit code ${res.exitCode}`);
    stats = JSON.parse(res.stdout.slice(res.stdout.indexOf('{')));
  } catch (err) {
    throw new SnapError(`nodetool tablestats in ${c.name} failed (${(err as Error).message}): ${lastLines(res.stderr || res.stdout)}; nothing was changed`);
  }
  for (const w of tables) {
    const t = stats[w.keyspace]?.tables?.[w.table];
    if (!t || (t.sstable_count ?? 0) > 0 || (t.memtable_cell_count ?? 0) > 0) out.add(`${w.keyspace}.${w.table}`);
  }
  return out;
}

// Stages the selected tables' files (and schema.cql) in the staging dir, on the node's
// data volume, owned like the data dir; resolves once every stored byte read passed the
// sha256 check and, with an index, every staged file matched its sha256 there.
async function stageFiles(ctx: PluginContext, c: ContainerDetails, src: RawInput, opts: RestoreOptions, stage: string, dataDir: string, wanted: Wanted[]): Promise<void> {
  const into = { ctx, c, opts, stage, dataDir };
  if (!opts.index) {
    // a backup made without an index: its own tar holds every file
    await extract(into, src, 'fresh', ['schema.cql', ...wanted.map((w) => `tables/${w.keyspace}/${w.table}`)], true);
    return;
  }
  const index = parseIndex(opts.index, `the index of backup ${opts.id}`);
  const tables = wanted.map((w) => ({ keyspace: w.keyspace, table: w.table, files: w.expected.files, bytes: w.expected.bytes }));
  const { pieces, files } = planRestore(index, opts.id, opts.chain.map((p) => p.id), tables);
  let mode: 'fresh' | 'add' = 'fresh';
  // the backups it depends on first, oldest first, each read once (or not at all)
  for (const piece of opts.chain) {
    const take = pieces.find((p) => p.backup === piece.id)?.files;
    if (!take) continue;
    await extract(into, piece.input, mode, take.map(memberOf), false);
    mode = 'add';
  }
  const own = pieces.find((p) => p.backup === opts.id)?.files ?? [];
  await extract(into, src, mode, ['schema.cql', ...own.map(memberOf)], true);
  await checkStaged(ctx, c, stage, files);
  ctx.log.info({ container: c.name, files: files.length, from: pieces.map((p) => `${p.backup}: ${p.files.length}`) }, 'staged files match the index');
}

interface Into {
  ctx: PluginContext;
  c: ContainerDetails;
  opts: RestoreOptions;
  stage: string;
  dataDir: string;
}

// Extracts `members` of one stored tar into the staging dir. The last one read waits for
// the integrity of everything read; an earlier one stops at its first failure.
async function extract({ ctx, c, opts, stage, dataDir }: Into, input: RawInput, mode: 'fresh' | 'add', members: string[], last: boolean): Promise<void> {
  const list = await writePrivateFile(ctx, c.name, members.map((m) => `${m}\n`).join(''), '.list');
  const run = await ctx.docker.exec(c.name, { cmd: ['sh', '-c', EXTRACT, 'snapagent', stage, dataDir, mode, list], stdin: true, bulk: 'stdin' });
  const stream = input.stream();
  stream.on('error', () => run.kill());
  feedDraining(stream, run.stdin!);
  let stdout = '';
  run.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  let res;
  try {
    res = last ? (await Promise.all([run.done, opts.integrity]))[0] : await Promise.race([run.done, opts.integrity.then(() => new Promise<never>(() => undefined))]);
  } catch (err) {
    run.kill();
    throw err;
  }
  if (res.exitCode !== 0 || !stdout.includes('snapagent-extracted')) {
    throw new SnapError(`extracting the backup into ${stage} in ${c.name} failed (exit code ${res.exitCode}): ${lastLines(res.stderr)}; no table was changed`, {
      hint: `is ${dataDir} the node's data directory (options.data_dir), with space for the backup beside it?`,
    });
  }
}

// Every staged file's sha256, computed where it lies, against the index: exactly the
// indexed files, each with its bytes, before any of them is loaded.
async function checkStaged(ctx: PluginContext, c: ContainerDetails, stage: string, files: IndexedFile[]): Promise<void> {
  const res = await sh(ctx, c.name, SUMS, [stage]);
  const { sums, odd } = parseSums(res.stdout);
  if (res.exitCode !== 0 || odd < 0) throw new SnapError(`hashing the staged files in ${c.name} failed (exit code ${res.exitCode}): ${lastLines(res.stderr)}; no table was changed`);
  const bad = files.filter((f) => sums.get(memberOf(f)) !== f.sha256).map((f) => `${memberOf(f)} (${sums.has(memberOf(f)) ? 'other bytes' : 'missing'}, from backup ${f.backup})`);
  const listed = new Set(files.map(memberOf));
  const extra = [...sums.keys()].filter((m) => !listed.has(m));
  if (bad.length || extra.length || odd > 0) {
    throw new IntegrityError(`the staged files differ from the backup's index: ${[...bad, ...extra.map((m) => `${m} (not in the index)`), ...(odd ? [`${odd} file(s) named otherwise`] : [])].slice(0, 5).join('; ')}; no table was changed`);
  }
}

// Creates the keyspaces and tables the node lacks: the keyspace as the backup recorded
// it, each table from its snapshot's schema.cql (types, the table with its original id,
// dropped columns, indexes), so the SSTables read exactly as they were written.
async function createSchema(ctx: PluginContext, node: Node, c: ContainerDetails, live: Schema, backed: Record<string, KeyspaceStats>, keyspaces: string[], wanted: Wanted[], stage: string): Promise<string[]> {
  const created: string[] = [];
  const missing = wanted.filter((w) => !live.tables.some((t) => t.keyspace === w.keyspace && t.table === w.table));
  // every table's statements are read and checked before the first statement runs
  const tables: [Wanted, string[]][] = [];
  if (missing.length) {
    const res = await runIn(ctx, c.name, ['sh', '-c', SCHEMAS, 'snapagent', ...missing.map((w) => `${stage}/tables/${w.keyspace}/${w.table}`)]);
    if (res.exitCode !== 0) throw new SnapError(`reading the tables' schema in ${c.name} failed: ${lastLines(res.stderr)}`);
    const schemas = parseSections(res.stdout).schemas;
    for (const w of missing) tables.push([w, checkTableCql(w.keyspace, w.table, schemas.get(`${stage}/tables/${w.keyspace}/${w.table}`) ?? '')]);
  }
  for (const ks of keyspaces) {
    if (!(ks in live.keyspaces)) {
      await exec(node, checkKeyspaceCql(ks, backed[ks]!.cql), `creating keyspace ${ks}`);
      created.push(ks);
    }
    // user types first (IF NOT EXISTS): a table's schema.cql may lack those it nests
    if (missing.some((w) => w.keyspace === ks)) {
      for (const t of backed[ks]!.types ?? []) await exec(node, checkTypeCql(ks, t), `creating the types of keyspace ${ks}`);
    }
  }
  for (const [w, statements] of tables) {
    for (const s of statements) await exec(node, s, `creating table ${w.keyspace}.${w.table}`);
    created.push(`${w.keyspace}.${w.table}`);
  }
  return created;
}

async function exec(node: Node, statement: string, what: string): Promise<void> {
  try {
    await node.client.execute(statement);
  } catch (err) {
    throw new SnapError(`${what} failed: ${(err as Error).message}`, { hint: 'create it by hand (see schema.cql in the backup), then restore again', cause: err });
  }
}

async function importTables(ctx: PluginContext, c: ContainerDetails, stage: string, wanted: Wanted[]): Promise<void> {
  if (wanted.length === 0) return;
  const res = await sh(ctx, c.name, IMPORT, [stage, ...wanted.map((w) => `${w.keyspace}.${w.table}`)]);
  const problems: string[] = [];
  for (const l of res.stdout.split('\n')) {
    const left = /^snapagent-left (\S+) (\d+)$/.exec(l);
    if (left && left[2] !== '0') problems.push(`${left[1]}: ${left[2]} SSTable(s) not imported`);
    const failed = /^snapagent-failed (\S+) (\d+)$/.exec(l);
    if (failed) problems.push(`${failed[1]}: nodetool import exit code ${failed[2]}`);
  }
  if (res.exitCode !== 0 || problems.length) {
    throw new SnapError(`nodetool import in ${c.name} failed: ${problems.join('; ') || `exit code ${res.exitCode}`}: ${lastLines(res.stderr)}`, { hint: 'see the node\'s log (docker logs) for why it refused the SSTables' });
  }
}

// Counts every restored table again and compares with the manifest. Skipped for tables
// merged into live data (--force), and when the backup came from a multi-node ring
// (its counts are the cluster's; one node's snapshot holds only its replicas).
async function verify(ctx: PluginContext, node: Node, opts: RestoreOptions, wanted: Wanted[], merged: Set<string>): Promise<PluginStats> {
  const ring = Number(opts.expected.ring_nodes ?? 1);
  const counted = wanted.some((w) => w.expected.rows !== undefined);
  const actual: Record<string, Record<string, { rows: number }>> = {};
  if (!counted) return { tables: wanted.length };
  const live = await readSchema(node.client);
  const diffs: string[] = [];
  let rows = 0;
  for (const w of wanted) {
    const t = live.tables.find((x) => x.keyspace === w.keyspace && x.table === w.table);
    if (!t) {
      diffs.push(`${w.keyspace}.${w.table} is missing`);
      continue;
    }
    const n = await countRows(node.client, t);
    rows += n;
    (actual[w.keyspace] ??= {})[w.table] = { rows: n };
    const name = `${w.keyspace}.${w.table}`;
    if (w.expected.rows !== undefined && n !== w.expected.rows && !merged.has(name) && ring === 1) diffs.push(`${name}: ${n} rows, the backup has ${w.expected.rows}`);
  }
  if (ring > 1) ctx.log.warn({ ring_nodes: ring }, 'the backup came from a multi-node ring: its row counts are the cluster\'s, not comparable with one node\'s data; restore every node, then compare');
  if (diffs.length) throw new SnapError(`restored data differs from the backup: ${diffs.slice(0, 10).join('; ')}`, { exitCode: ExitCode.integrity });
  ctx.log.info({ tables: wanted.length, rows }, 'restored row counts match the backup');
  return { tables: wanted.length, rows, keyspaces: actual };
}

