// Backup of a mongo server: `mongodump --archive` in its container (--oplog for a whole
// replica-set member, detected from `hello`), counted from the archive stream itself,
// which also gives the oplog window the dump covers. Through a mongos (`hello` says
// "isdbgrid") the cluster's balancer is stopped for the dump and restarted after it,
// also when it fails or is aborted (balancer.ts).
import { finished } from 'node:stream/promises';
import { type BackupStream, type Job, lastLines, noteRepair, type PluginContext, type PluginStats, runningContainer, SnapError } from '../../agent/plugin/index.ts';
import { restartAfterFailure, stopBalancer, type StoppedBalancer } from './balancer.ts';
import { agentEndpoint, connect, credentials, startTool, withClient } from './connection.ts';
import { checkArchiveNames, checkDatabase } from './names.ts';
import { balancerRecord } from './repair.ts';
import type { MongoOptions } from './options.ts';

export async function backupArchive(ctx: PluginContext, job: Job<MongoOptions>): Promise<BackupStream> {
  const o = job.options;
  const c = await runningContainer(ctx, job.container, `job ${job.name}`, 'mongo');
  const cred = await credentials(ctx, c, o);
  const ep = agentEndpoint(c, o);
  const server = await withClient(ep, cred, async (client) => {
    const admin = client.db('admin');
    const hello = await admin.command({ hello: 1 });
    const info = await admin.command({ buildInfo: 1 });
    const { databases } = (await admin.command({ listDatabases: 1, nameOnly: true })) as { databases: { name: string }[] };
    return { version: String(info.version), replicaSet: (hello.setName as string | undefined) ?? null, mongos: hello.msg === 'isdbgrid', databases: databases.map((d) => d.name) };
  });
  if (o.database && !server.databases.includes(o.database)) {
    throw new SnapError(`container ${c.name}: there is no database "${o.database}"`, { hint: `it has: ${server.databases.join(', ') || 'none'}` });
  }
  for (const d of o.database ? [o.database] : server.databases) checkDatabase(d, `container ${c.name}`);
  // The oplog makes the dump a point in time; mongodump allows it for full dumps only, and
  // not through a mongos (each shard has its own oplog).
  const oplog = o.oplog === 'auto' && server.replicaSet !== null && !server.mongos && !o.database;
  if (server.mongos) ctx.log.info({ mongos: `${ep.host}:${ep.port}` }, 'a mongos: no --oplog (mongodump refuses it there); the dump is consistent per collection, not one point in time across shards (see the README\'s "Sharded clusters")');
  else if (server.replicaSet === null) ctx.log.debug('standalone server: no --oplog; the dump is consistent per collection, not across collections');
  else if (!oplog) ctx.log.info({ replica_set: server.replicaSet }, o.database ? 'one database: no --oplog (mongodump takes the oplog for a whole dump only); the dump is consistent per collection' : 'oplog: never: the dump is consistent per collection');
  const args = ['--archive', ...(oplog ? ['--oplog'] : []), ...(o.database ? [`--db=${o.database}`] : []), ...(o.exclude_collections ?? []).map((x) => `--excludeCollection=${x}`)];
  const mongos = `${ep.host}:${ep.port}`;
  const note = (stopped: boolean) => noteRepair('backup', job.name, stopped ? balancerRecord(c.name, mongos) : undefined);
  const balancer = server.mongos ? await stopBalancer(() => connect(ep, cred), `mongos ${mongos} (container ${c.name})`, ctx.log, note) : undefined;
  const run = await startTool(ctx, c, cred, 'mongodump', args).catch(async (err: unknown) => {
    throw balancer ? await restartAfterFailure(balancer, err) : err;
  });
  // archive.ts reads BSON with the driver's parser: loaded with the first mongo job
  const { ArchiveCounter } = await import('./archive.ts');
  const counter = new ArchiveCounter();
  run.stdout.pipe(counter);
  const dumped = (async () => {
    const res = await run.done;
    if (res.exitCode !== 0) throw new SnapError(`mongodump in ${c.name} failed (exit code ${res.exitCode}): ${lastLines(res.stderr)}`);
    await finished(counter);
    const s = counter.stats();
    checkArchiveNames(s.databases, `container ${c.name}`);
    // mongodump --oplog copies the oplog from its newest entry before the dump to the end
    // of the dump, so the archive always holds at least one entry.
    if (oplog && !s.oplog_window) throw new SnapError(`mongodump --oplog in ${c.name} wrote no oplog entry`, { hint: 'the archive cannot be restored to a point in time' });
    if (s.oplog_window) ctx.log.info({ oplog_entries: s.oplog_entries, first: s.oplog_window.first.time, last: s.oplog_window.last.time }, 'oplog taken: a restore replays it to the last entry');
    return {
      server_version: server.version,
      tool_version: s.tool_version,
      replica_set: server.replicaSet,
      oplog,
      oplog_entries: s.oplog_entries,
      ...(s.oplog_window ? { oplog_window: s.oplog_window } : {}),
      databases: s.databases,
    };
  })();
  const done = balancer ? withRestart(balancer, dumped) : dumped;
  done.catch(() => undefined);
  return {
    stream: counter,
    artifact: { name: 'dump', format: 'mongodump-archive' },
    done,
    source: { container: c.name, image: c.image, server_version: server.version, replica_set: server.replicaSet, database: o.database ?? null },
    // A cancelled backup (SIGTERM) restarts the balancer before the run ends.
    abort: async () => {
      await run.kill();
      await balancer?.restart();
    },
    degraded: () => balancer?.failure,
  };
}

// The dump's outcome once the balancer was restarted; its stats say so.
async function withRestart(balancer: StoppedBalancer, dumped: Promise<PluginStats>): Promise<PluginStats> {
  let stats: PluginStats;
  try {
    stats = await dumped;
  } catch (err) {
    throw await restartAfterFailure(balancer, err);
  }
  return { ...stats, sharded: true, balancer: await balancer.restart() };
}
