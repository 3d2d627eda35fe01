// cassandra: one node's data as a `nodetool snapshot` (hard links of its immutable
// SSTables, taken after a flush) plus the schema, shipped as a tar stream from inside
// the node's container, then `nodetool clearsnapshot` whatever happened. Only the
// snapshot directories of the backup's tag are read, never live SSTable directories.
// The snapshot tag is the backup id. The manifest records the node (host id, tokens,
// datacenter, rack, version), keyspaces (their CQL), tables (id, files, bytes, rows).
// Restore stages the archive on the target node's data volume, creates missing
// keyspaces/tables from the shipped schema, loads each table with `nodetool import`,
// then counts rows and compares them with the manifest.
import path from 'node:path';
import { BACKUP_ID, backupId, type BackupStream, type ContainerDetails, type DatastorePlugin, type ExecRun, ExitCode, feedDraining, type Job, lastLines, noteLiveChange, noteStage, parseSchema, type PluginContext, type PluginStats, type RawInput, RefusedError, type RestoreOptions, type RestoreReport, runIn, runningContainer, SnapError, UsageError, writePrivateFile } from '../../agent/plugin/index.ts';
import { connectNode, countRows, nodeInfo, readSchema, splitStatements, type Node, type Schema, type TableRef } from './cql.ts';
import { checkTables } from './names.ts';
import { optionsSchema, SYSTEM_KEYSPACES, type CassandraOptions } from './options.ts';
import { CLEAR, DISCARD, EXTRACT, IMPORT, LIST, SCHEMAS, SNAPSHOT, TABLESTATS, TAR } from './scripts.ts';
import { drillServer } from './drill.ts';
import { checkKeyspaceCql, checkNames, checkTableCql, checkTypeCql } from './schema-check.ts';

/** What the manifest records per table. */
interface TableStats {
  id: string;
  files: number;
  bytes: number;
  rows?: number;
}

interface KeyspaceStats {
  cql: string;
  types?: string[];
  tables: Record<string, TableStats>;
}

export const cassandraPlugin: DatastorePlugin<CassandraOptions> = {
  name: 'cassandra',
  recordedOptions: ['keyspaces', 'tables', 'count_rows'],

  parseOptions(raw, where) {
    return parseSchema(optionsSchema, raw, where);
  },

  async check(ctx, job) {
    await runningContainer(ctx, job.container, `job ${job.name}`, 'cassandra');
  },

  async backup(ctx, job) {
    return backupNode(ctx, job);
  },

  restore(ctx, job, src, opts) {
    return restoreNode(ctx, job, src, opts);
  },

  drill(job, port, source) {
    return drillServer(job, port, source);
  },
};

async function sh(ctx: PluginContext, c: string, script: string, args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return runIn(ctx, c, ['sh', '-c', script, 'snapagent', ...args]);
}

const dirOf = (t: TableRef) => `${t.keyspace}/${t.table}-${t.id.replaceAll('-', '')}`;

function chooseTables(schema: Schema, o: CassandraOptions, where: string): TableRef[] {
  if (o.tables) {
    const missing = o.tables.filter((n) => !schema.tables.some((t) => `${t.keyspace}.${t.table}` === n));
    if (missing.length) throw new SnapError(`options.tables: no table ${missing.join(', ')} on ${where}`, { hint: `its tables: ${schema.tables.map((t) => `${t.keyspace}.${t.table}`).join(', ') || 'none'}` });
    return schema.tables.filter((t) => o.tables!.includes(`${t.keyspace}.${t.table}`));
  }
  const keyspaces = o.keyspaces ?? Object.keys(schema.keyspaces).sort();
  const system = keyspaces.filter((k) => SYSTEM_KEYSPACES.includes(k));
  if (system.length) throw new SnapError(`options.keyspaces: ${system.join(', ')} belong to Cassandra itself and are not backed up`);
  const missing = keyspaces.filter((k) => !(k in schema.keyspaces));
  if (missing.length) throw new SnapError(`options.keyspaces: no keyspace ${missing.join(', ')} on ${where}`, { hint: `its keyspaces: ${Object.keys(schema.keyspaces).join(', ') || 'none'}` });
  return schema.tables.filter((t) => keyspaces.includes(t.keyspace));
}

async function backupNode(ctx: PluginContext, job: Job<CassandraOptions>): Promise<BackupStream> {
  const o = job.options;
  const c = await runningContainer(ctx, job.container, `job ${job.name}`, 'cassandra');
  const node = await connectNode(ctx, c, o);
  const tag = ctx.backupId ?? backupId(new Date(), job.tier);
  let snapped = false;
  let cleared: Promise<void> | undefined;
  // Once, whatever happened: success, a failed stream, an abort, or a failure before.
  const clear = () =>
    (cleared ??= (async () => {
      const res = await sh(ctx, c.name, CLEAR, [tag]).catch((err: unknown) => ({ exitCode: -1, stdout: '', stderr: String(err) }));
      if (res.exitCode === 0) ctx.log.info({ container: c.name, snapshot: tag }, 'snapshot cleared');
      else ctx.log.error({ container: c.name, snapshot: tag }, `could not clear snapshot ${tag}: ${lastLines(res.stderr || res.stdout)}; clear it with: docker exec ${c.name} nodetool clearsnapshot -t ${tag}`);
    })());
  let run!: ExecRun;
  let info!: Awaited<ReturnType<typeof nodeInfo>>;
  let stats!: Record<string, KeyspaceStats>;
  let chosen!: TableRef[];
  let snapshotSeconds!: number;
  try {
    info = await nodeInfo(node.client);
    const schema = await readSchema(node.client);
    chosen = chooseTables(schema, o, `container ${c.name}`);
    const keyspaces = o.tables ? [...new Set(chosen.map((t) => t.keyspace))] : (o.keyspaces ?? Object.keys(schema.keyspaces).sort());
    if (keyspaces.length === 0) throw new SnapError(`container ${c.name}: no keyspace to back up (only system keyspaces)`, { hint: 'create one, or list options.keyspaces' });
    // Names from system_schema become nodetool arguments and paths on the node.
    checkTables(chosen, keyspaces, `container ${c.name}`);
    const t0 = performance.now();
    const snap = await sh(ctx, c.name, SNAPSHOT, [tag, ...(o.tables ? ['-kt', o.tables.join(',')] : ['--', ...keyspaces])]);
    if (snap.exitCode !== 0) {
      const text = lastLines(snap.stderr || snap.stdout);
      if (/already exists/i.test(text)) {
        throw new SnapError(`container ${c.name}: a snapshot named ${tag} already exists on the node; nothing was backed up`, { hint: `another backup of this node is running, or one was killed: clear it with docker exec ${c.name} nodetool clearsnapshot -t ${tag}` });
      }
      snapped = true; // a partial snapshot may exist
      throw new SnapError(`nodetool snapshot in ${c.name} failed (exit code ${snap.exitCode}): ${text}`, {
        hint: snap.exitCode === 127 ? 'nodetool must be on the PATH of the container (as in the official cassandra image)' : undefined,
      });
    }
    snapped = true;
    snapshotSeconds = (performance.now() - t0) / 1000;
    ctx.log.info({ container: c.name, snapshot: tag, keyspaces, seconds: snapshotSeconds.toFixed(1) }, 'snapshot taken');
    const listed = await sh(ctx, c.name, LIST, [o.data_dir, tag, ...chosen.map(dirOf)]);
    if (listed.exitCode !== 0) throw new SnapError(`listing the snapshot in ${c.name} failed (exit code ${listed.exitCode}): ${lastLines(listed.stderr)}`, { hint: `is ${o.data_dir} the node's data directory? set options.data_dir` });
    const sections = parseSections(listed.stdout);
    const stale = sections.lines.filter((l) => l.startsWith('snapagent-stale ')).map((l) => l.slice('snapagent-stale '.length)).filter((n) => BACKUP_ID.test(n));
    if (stale.length) ctx.log.warn({ container: c.name, snapshots: stale }, `snapshots left by killed backups take disk space: clear each with docker exec ${c.name} nodetool clearsnapshot -t <name>`);
    // Only the directories asked for, each once: whatever else the listing holds came
    // from the container's filesystem, not from the agent.
    const asked = new Set(chosen.map((t) => `${dirOf(t)}/snapshots/${tag}`));
    const dirs = new Map<string, { files: number; bytes: number }>();
    for (const l of sections.lines) {
      const m = /^snapagent-dir (\S+) (\d+) (\d+)$/.exec(l);
      if (m && asked.has(m[1]!) && !dirs.has(m[1]!)) dirs.set(m[1]!, { files: Number(m[2]), bytes: Number(m[3]) });
    }
    const missing = chosen.filter((t) => !dirs.has(`${dirOf(t)}/snapshots/${tag}`));
    if (missing.length) {
      throw new SnapError(`container ${c.name}: no snapshot directory for ${missing.map((t) => `${t.keyspace}.${t.table}`).join(', ')} under ${o.data_dir}`, {
        hint: 'set options.data_dir to the node\'s data_file_directories entry (default /var/lib/cassandra/data)',
      });
    }
    stats = {};
    let cql = `-- snapagent: schema of the keyspaces in this backup (node ${info.host_id}, Cassandra ${info.version}, snapshot ${tag})\n`;
    for (const ks of keyspaces) {
      const types = schema.types[ks] ?? [];
      stats[ks] = { cql: schema.keyspaces[ks]!, ...(types.length ? { types } : {}), tables: {} };
      cql += `\n${[schema.keyspaces[ks], ...types].join('\n')}\n`;
    }
    for (const t of chosen) {
      const d = dirs.get(`${dirOf(t)}/snapshots/${tag}`)!;
      stats[t.keyspace]!.tables[t.table] = { id: t.id, files: d.files, bytes: d.bytes };
      cql += `\n${(sections.schemas.get(`${dirOf(t)}/snapshots/${tag}`) ?? '').trim()}\n`;
    }
    const file = await writePrivateFile(ctx, c.name, cql, '.cql');
    run = await ctx.docker.exec(c.name, { cmd: ['sh', '-c', TAR, 'snapagent', o.data_dir, file, ...chosen.map((t) => `${dirOf(t)}/snapshots/${tag}`)], bulk: 'stdout' });
  } catch (err) {
    if (snapped) await clear();
    await node.close();
    throw err;
  }
  // Rows are counted while the snapshot streams (live tables, right after the snapshot).
  const counting = o.count_rows ? countAll(node, chosen, stats) : Promise.resolve();
  counting.catch(() => undefined);
  const done = (async (): Promise<PluginStats> => {
    try {
      // the snapshot is cleared as soon as tar has read it, while the upload finishes
      const [res] = await Promise.all([run.done.finally(clear), counting]);
      if (res.exitCode !== 0) throw new SnapError(`tar of the snapshot in ${c.name} failed (exit code ${res.exitCode}): ${lastLines(res.stderr.split('\n').filter((l) => !l.startsWith('Total bytes')).join('\n'))}`);
      const totals = /^Total bytes written: (\d+)/m.exec(res.stderr);
      const tables = Object.values(stats).flatMap((k) => Object.values(k.tables));
      return {
        cassandra_version: info.version,
        cluster: info.cluster,
        partitioner: info.partitioner,
        node: { host_id: info.host_id, datacenter: info.datacenter, rack: info.rack, address: info.address, tokens: info.tokens },
        ring_nodes: info.ring_nodes,
        snapshot: tag,
        snapshot_seconds: Number(snapshotSeconds.toFixed(3)),
        data_dir: o.data_dir,
        keyspaces: stats,
        tables: tables.length,
        files: tables.reduce((n, t) => n + t.files, 0),
        bytes: tables.reduce((n, t) => n + t.bytes, 0),
        ...(o.count_rows ? { rows: tables.reduce((n, t) => n + (t.rows ?? 0), 0) } : {}),
        ...(totals ? { stream_bytes: Number(totals[1]) } : {}),
      };
    } finally {
      await clear();
      await node.close();
    }
  })();
  done.catch(() => undefined);
  return {
    get stream() {
      return run.stdout;
    },
    openRaw: run.openPipe,
    artifact: { name: 'snapshot', format: 'tar' },
    done,
    source: { container: c.name, image: c.image, cassandra_version: info.version, cluster: info.cluster, host_id: info.host_id, datacenter: info.datacenter, rack: info.rack, keyspaces: Object.keys(stats) },
    abort: async () => {
      run.kill();
      await done.catch(() => undefined);
      await clear();
    },
  };
}

async function countAll(node: Node, tables: TableRef[], stats: Record<string, KeyspaceStats>): Promise<void> {
  for (const t of tables) stats[t.keyspace]!.tables[t.table]!.rows = await countRows(node.client, t);
}

/** The "snapagent-dir"/"snapagent-stale" lines of a LIST output, and each schema.cql by
 * its dir (LIST and SCHEMAS print it base64-encoded on one line). */
function parseSections(out: string): { lines: string[]; schemas: Map<string, string> } {
  const lines: string[] = [];
  const schemas = new Map<string, string>();
  for (const l of out.split('\n')) {
    const m = /^snapagent-schema (.+) ([A-Za-z0-9+/=]*)$/.exec(l);
    if (m) {
      if (!schemas.has(m[1]!)) schemas.set(m[1]!, Buffer.from(m[2]!, 'base64').toString('utf8'));
    } else if (/^snapagent-(dir|stale) /.test(l)) lines.push(l);
  }
  return { lines, schemas };
}

interface Wanted {
  keyspace: string;
  table: string;
  expected: TableStats;
}

async function restoreNode(ctx: PluginContext, job: Job<CassandraOptions>, src: RawInput, opts: RestoreOptions): Promise<RestoreReport> {
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
      await extract(ctx, c, src, opts, stage, o.data_dir, wanted);
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

// Extracts the selected tables (and schema.cql) into the staging dir, on the node's data
// volume, owned like the data dir; waits until every stored byte passed the sha256 check.
async function extract(ctx: PluginContext, c: ContainerDetails, src: RawInput, opts: RestoreOptions, stage: string, dataDir: string, wanted: Wanted[]): Promise<void> {
  const members = ['schema.cql', ...wanted.map((w) => `tables/${w.keyspace}/${w.table}`)];
  const run = await ctx.docker.exec(c.name, { cmd: ['sh', '-c', EXTRACT, 'snapagent', stage, dataDir, ...members], stdin: true, bulk: 'stdin' });
  const input = src.stream();
  input.on('error', () => run.kill());
  feedDraining(input, run.stdin!);
  let stdout = '';
  run.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  let res;
  try {
    [res] = await Promise.all([run.done, opts.integrity]);
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

