// Backup of one Cassandra node, in named steps: choose the tables, take a `nodetool
// snapshot` tagged with the backup id, list what it holds (every file with its size and
// sha256, hashed inside the container), describe it for the manifest (with the schema to
// recreate it), choose the files to ship (all of them, or with a base only those its
// index does not hold: file-index.ts), then stream them as a tar from inside the
// container; the index of every file follows the stream. The snapshot is cleared once,
// whatever happened: as soon as tar has read it, or on any failure or abort after it was
// (or may have been) taken; it is recorded before it is taken, so that the next start
// clears it after a kill -9 (repair.ts).
import { BACKUP_ID, backupId, type BackupStream, type ContainerDetails, type ExecRun, type Job, lastLines, noteRepair, RefusedError, type PluginContext, type PluginStats, runningContainer, SnapError, writePrivateFile } from '../../agent/plugin/index.ts';
import { connectNode, countRows, type Node, nodeInfo, type NodeInfo, readSchema, type Schema, type TableRef } from './cql.ts';
import { type BackupPlan, encodeIndex, INDEX_FORMAT, planBackup, representedBytes, type SnapshotFile, usableBase } from './file-index.ts';
import type { KeyspaceStats } from './manifest.ts';
import { checkFile, checkTables } from './names.ts';
import { type CassandraOptions, SYSTEM_KEYSPACES } from './options.ts';
import { snapshotRecord } from './repair.ts';
import { CLEAR, dirOf, LIST, parseFiles, parseSections, sh, SNAPSHOT, TAR } from './scripts.ts';

/** The node's snapshot of this backup: whether it (or part of it) may exist, and how to
 * record it for the repair of a killed run (before taking it) and clear it (once). */
interface Snapshot {
  readonly tag: string;
  taken: boolean;
  record(): Promise<void>;
  clear(): Promise<void>;
}

/** What the steps before streaming found and started. */
interface Prepared {
  info: NodeInfo;
  chosen: TableRef[];
  stats: Record<string, KeyspaceStats>;
  snapshotSeconds: number;
  /** Seconds spent listing and hashing the snapshot's files. */
  listSeconds: number;
  plan: BackupPlan;
  run: ExecRun;
}

export async function backupNode(ctx: PluginContext, job: Job<CassandraOptions>): Promise<BackupStream> {
  const c = await runningContainer(ctx, job.container, `job ${job.name}`, 'cassandra');
  const node = await connectNode(ctx, c, job.options);
  const snap = nodeSnapshot(ctx, c, ctx.backupId ?? backupId(new Date(), job.tier), job.name);
  let prepared: Prepared;
  try {
    prepared = await prepare(ctx, node, c, job.options, snap);
  } catch (err) {
    if (snap.taken) await snap.clear();
    await node.close();
    throw err;
  }
  return streamSnapshot(node, c, job.options, snap, prepared);
}

function nodeSnapshot(ctx: PluginContext, c: ContainerDetails, tag: string, job: string): Snapshot {
  let cleared: Promise<void> | undefined;
  return {
    tag,
    taken: false,
    record: () => noteRepair('backup', job, snapshotRecord(c.name, tag)),
    clear: () =>
      (cleared ??= (async () => {
        const res = await sh(ctx, c.name, CLEAR, [tag]).catch((err: unknown) => ({ exitCode: -1, stdout: '', stderr: String(err) }));
        if (res.exitCode === 0) {
          ctx.log.info({ container: c.name, snapshot: tag }, 'snapshot cleared');
          await noteRepair('backup', job, undefined);
        } else ctx.log.error({ container: c.name, snapshot: tag }, `could not clear snapshot ${tag}: ${lastLines(res.stderr || res.stdout)}; clear it with: docker exec ${c.name} nodetool clearsnapshot -t ${tag}`);
      })()),
  };
}

async function prepare(ctx: PluginContext, node: Node, c: ContainerDetails, o: CassandraOptions, snap: Snapshot): Promise<Prepared> {
  const info = await nodeInfo(node.client);
  const schema = await readSchema(node.client);
  const { chosen, keyspaces } = selectTables(schema, o, c.name);
  const snapshotSeconds = await takeSnapshot(ctx, c, o, snap, chosen, keyspaces);
  const t0 = performance.now();
  const listed = await listSnapshot(ctx, c, o, snap.tag, chosen);
  const listSeconds = (performance.now() - t0) / 1000;
  const { stats, cql } = describe(info, schema, keyspaces, chosen, listed, snap.tag);
  const base = usableBase(ctx.base, ctx.log);
  const plan = planBackup(snap.tag, listed.files, base);
  ctx.log.info({ container: c.name, files: plan.index.files.length, shipped: plan.shipped, reused: plan.reused, base: base?.id, seconds: listSeconds.toFixed(1) }, 'snapshot listed');
  const dirs = new Map(chosen.map((t) => [`${t.keyspace}.${t.table}`, `${dirOf(t)}/snapshots/${snap.tag}`]));
  const list = plan.ship.map((f) => `${dirs.get(`${f.keyspace}.${f.table}`)}/${f.name}\n`).join('');
  const file = await writePrivateFile(ctx, c.name, cql, '.cql');
  const files = await writePrivateFile(ctx, c.name, list, '.list');
  const run = await ctx.docker.exec(c.name, { cmd: ['sh', '-c', TAR, 'snapagent', o.data_dir, file, files], bulk: 'stdout' });
  return { info, chosen, stats, snapshotSeconds, listSeconds, plan, run };
}

/** The tables to back up and their keyspaces; their names checked for the node's tools. */
function selectTables(schema: Schema, o: CassandraOptions, container: string): { chosen: TableRef[]; keyspaces: string[] } {
  const chosen = chooseTables(schema, o, `container ${container}`);
  const keyspaces = o.tables ? [...new Set(chosen.map((t) => t.keyspace))] : (o.keyspaces ?? Object.keys(schema.keyspaces).sort());
  if (keyspaces.length === 0) throw new SnapError(`container ${container}: no keyspace to back up (only system keyspaces)`, { hint: 'create one, or list options.keyspaces' });
  // Names from system_schema become nodetool arguments and paths on the node.
  checkTables(chosen, keyspaces, `container ${container}`);
  return { chosen, keyspaces };
}

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

/** `nodetool snapshot` of the chosen tables; returns how long it took (seconds). */
async function takeSnapshot(ctx: PluginContext, c: ContainerDetails, o: CassandraOptions, snap: Snapshot, chosen: TableRef[], keyspaces: string[]): Promise<number> {
  const tag = snap.tag;
  await snap.record();
  const t0 = performance.now();
  const res = await sh(ctx, c.name, SNAPSHOT, [tag, ...(o.tables ? ['-kt', o.tables.join(',')] : ['--', ...keyspaces])]);
  if (res.exitCode !== 0) {
    const text = lastLines(res.stderr || res.stdout);
    if (/already exists/i.test(text)) {
      throw new SnapError(`container ${c.name}: a snapshot named ${tag} already exists on the node; nothing was backed up`, { hint: `another backup of this node is running, or one was killed: clear it with docker exec ${c.name} nodetool clearsnapshot -t ${tag}` });
    }
    snap.taken = true; // a partial snapshot may exist
    throw new SnapError(`nodetool snapshot in ${c.name} failed (exit code ${res.exitCode}): ${text}`, {
      hint: res.exitCode === 127 ? 'nodetool must be on the PATH of the container (as in the official cassandra image)' : undefined,
    });
  }
  snap.taken = true;
  const seconds = (performance.now() - t0) / 1000;
  ctx.log.info({ container: c.name, snapshot: tag, keyspaces, seconds: seconds.toFixed(1) }, 'snapshot taken');
  return seconds;
}

/** The snapshot directory of each chosen table (files, bytes), its schema.cql and its
 * files (name, size, sha256). */
async function listSnapshot(ctx: PluginContext, c: ContainerDetails, o: CassandraOptions, tag: string, chosen: TableRef[]): Promise<{ dirs: Map<string, { files: number; bytes: number }>; schemas: Map<string, string>; files: SnapshotFile[] }> {
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
  return { dirs, schemas: sections.schemas, files: snapshotFiles(c, chosen, tag, dirs, parseFiles(listed.stdout)) };
}

/** Every file of the chosen tables' snapshot dirs, each listed with its size and sha256;
 * a file named unlike Cassandra's files fails the backup (the index could not hold it). */
function snapshotFiles(c: ContainerDetails, chosen: TableRef[], tag: string, dirs: Map<string, { files: number; bytes: number }>, listed: ReturnType<typeof parseFiles>): SnapshotFile[] {
  const out: SnapshotFile[] = [];
  chosen.forEach((t, i) => {
    const where = `the snapshot of table ${t.keyspace}.${t.table} in container ${c.name}`;
    const l = listed.get(i + 1) ?? { sizes: new Map(), sums: new Map(), odd: 0 };
    if (l.odd > 0) throw new RefusedError(`${where} holds ${l.odd} file(s) named unlike Cassandra's files (letters, digits, "_", ".", "+", "-", in a ".<index>/" dir at most); nothing was backed up`, 'remove them from the node, or leave the table out with options.keyspaces or options.tables');
    const d = dirs.get(`${dirOf(t)}/snapshots/${tag}`)!;
    if (l.sizes.size !== d.files || l.sums.size !== d.files) throw new SnapError(`${where}: ${d.files} files, ${l.sizes.size} listed with their size and ${l.sums.size} hashed; nothing was backed up`);
    for (const [name, size] of l.sizes) {
      checkFile(name, where);
      const sha256 = l.sums.get(name);
      if (!sha256) throw new SnapError(`${where}: no sha256 for ${name}; nothing was backed up`);
      out.push({ keyspace: t.keyspace, table: t.table, name, size, sha256 });
    }
  });
  return out;
}

/** The manifest's keyspaces (CQL, types, tables with their files and bytes) and the
 * schema.cql shipped with the backup. */
function describe(info: NodeInfo, schema: Schema, keyspaces: string[], chosen: TableRef[], listed: Awaited<ReturnType<typeof listSnapshot>>, tag: string): { stats: Record<string, KeyspaceStats>; cql: string } {
  const stats: Record<string, KeyspaceStats> = {};
  let cql = `-- snapagent: schema of the keyspaces in this backup (node ${info.host_id}, Cassandra ${info.version}, snapshot ${tag})\n`;
  for (const ks of keyspaces) {
    const types = schema.types[ks] ?? [];
    stats[ks] = { cql: schema.keyspaces[ks]!, ...(types.length ? { types } : {}), tables: {} };
    cql += `\n${[schema.keyspaces[ks], ...types].join('\n')}\n`;
  }
  for (const t of chosen) {
    const d = listed.dirs.get(`${dirOf(t)}/snapshots/${tag}`)!;
    stats[t.keyspace]!.tables[t.table] = { id: t.id, files: d.files, bytes: d.bytes };
    cql += `\n${(listed.schemas.get(`${dirOf(t)}/snapshots/${tag}`) ?? '').trim()}\n`;
  }
  return { stats, cql };
}

/** The backup stream of the running tar; rows are counted meanwhile (live tables, right
 * after the snapshot). */
function streamSnapshot(node: Node, c: ContainerDetails, o: CassandraOptions, snap: Snapshot, p: Prepared): BackupStream {
  const { info, chosen, stats, snapshotSeconds, listSeconds, plan, run } = p;
  const counting = o.count_rows ? countAll(node, chosen, stats) : Promise.resolve();
  counting.catch(() => undefined);
  const done = (async (): Promise<PluginStats> => {
    try {
      // the snapshot is cleared as soon as tar has read it, while the upload finishes
      const [res] = await Promise.all([run.done.finally(snap.clear), counting]);
      if (res.exitCode !== 0) throw new SnapError(`tar of the snapshot in ${c.name} failed (exit code ${res.exitCode}): ${lastLines(res.stderr.split('\n').filter((l) => !l.startsWith('Total bytes')).join('\n'))}`);
      const totals = /^Total bytes written: (\d+)/m.exec(res.stderr);
      const tables = Object.values(stats).flatMap((k) => Object.values(k.tables));
      return {
        cassandra_version: info.version,
        cluster: info.cluster,
        partitioner: info.partitioner,
        node: { host_id: info.host_id, datacenter: info.datacenter, rack: info.rack, address: info.address, tokens: info.tokens },
        ring_nodes: info.ring_nodes,
        snapshot: snap.tag,
        snapshot_seconds: Number(snapshotSeconds.toFixed(3)),
        data_dir: o.data_dir,
        keyspaces: stats,
        tables: tables.length,
        files: tables.reduce((n, t) => n + t.files, 0),
        bytes: tables.reduce((n, t) => n + t.bytes, 0),
        ...(o.count_rows ? { rows: tables.reduce((n, t) => n + (t.rows ?? 0), 0) } : {}),
        // what this backup's own artifact holds; the rest is in the backups it depends on
        files_shipped: plan.shipped.files,
        bytes_shipped: plan.shipped.bytes,
        files_reused: plan.reused.files,
        bytes_reused: plan.reused.bytes,
        list_seconds: Number(listSeconds.toFixed(3)),
        ...(totals ? { stream_bytes: Number(totals[1]) } : {}),
      };
    } finally {
      await snap.clear();
      await node.close();
    }
  })();
  done.catch(() => undefined);
  const index = done.then(() => ({ format: INDEX_FORMAT, bytes: encodeIndex(plan.index), dependsOn: plan.dependsOn, representedBytes: representedBytes(plan.index) }));
  index.catch(() => undefined);
  return {
    get stream() {
      return run.stdout;
    },
    openRaw: run.openPipe,
    artifact: { name: 'snapshot', format: 'tar' },
    done,
    index,
    source: { container: c.name, image: c.image, cassandra_version: info.version, cluster: info.cluster, host_id: info.host_id, datacenter: info.datacenter, rack: info.rack, keyspaces: Object.keys(stats) },
    abort: async () => {
      run.kill();
      await done.catch(() => undefined);
      await snap.clear();
    },
  };
}

async function countAll(node: Node, tables: TableRef[], stats: Record<string, KeyspaceStats>): Promise<void> {
  for (const t of tables) stats[t.keyspace]!.tables[t.table]!.rows = await countRows(node.client, t);
}
