// Backup of a mongo server: `mongodump --archive` in its container (--oplog for a whole
// replica-set member, detected from `hello`), counted from the archive stream itself,
// which also gives the oplog window the dump covers.
import { finished } from 'node:stream/promises';
import { type BackupStream, type Job, lastLines, type PluginContext, runningContainer, SnapError } from '../../agent/plugin/index.ts';
import { agentEndpoint, credentials, startTool, withClient } from './connection.ts';
import { checkArchiveNames, checkDatabase } from './names.ts';
import type { MongoOptions } from './options.ts';

export async function backupArchive(ctx: PluginContext, job: Job<MongoOptions>): Promise<BackupStream> {
  const o = job.options;
  const c = await runningContainer(ctx, job.container, `job ${job.name}`, 'mongo');
  const cred = await credentials(ctx, c, o);
  const server = await withClient(agentEndpoint(c, o), cred, async (client) => {
    const admin = client.db('admin');
    const hello = await admin.command({ hello: 1 });
    const info = await admin.command({ buildInfo: 1 });
    const { databases } = (await admin.command({ listDatabases: 1, nameOnly: true })) as { databases: { name: string }[] };
    return { version: String(info.version), replicaSet: (hello.setName as string | undefined) ?? null, databases: databases.map((d) => d.name) };
  });
  if (o.database && !server.databases.includes(o.database)) {
    throw new SnapError(`container ${c.name}: there is no database "${o.database}"`, { hint: `it has: ${server.databases.join(', ') || 'none'}` });
  }
  for (const d of o.database ? [o.database] : server.databases) checkDatabase(d, `container ${c.name}`);
  // The oplog makes the dump a point in time; mongodump allows it for full dumps only.
  const oplog = o.oplog === 'auto' && server.replicaSet !== null && !o.database;
  if (server.replicaSet === null) ctx.log.debug('standalone server: no --oplog; the dump is consistent per collection, not across collections');
  else if (!oplog) ctx.log.info({ replica_set: server.replicaSet }, o.database ? 'one database: no --oplog (mongodump takes the oplog for a whole dump only); the dump is consistent per collection' : 'oplog: never: the dump is consistent per collection');
  const args = ['--archive', ...(oplog ? ['--oplog'] : []), ...(o.database ? [`--db=${o.database}`] : []), ...(o.exclude_collections ?? []).map((x) => `--excludeCollection=${x}`)];
  const run = await startTool(ctx, c, cred, 'mongodump', args);
  // archive.ts reads BSON with the driver's parser: loaded with the first mongo job
  const { ArchiveCounter } = await import('./archive.ts');
  const counter = new ArchiveCounter();
  run.stdout.pipe(counter);
  const done = (async () => {
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
  done.catch(() => undefined);
  return {
    stream: counter,
    artifact: { name: 'dump', format: 'mongodump-archive' },
    done,
    source: { container: c.name, image: c.image, server_version: server.version, replica_set: server.replicaSet, database: o.database ?? null },
    abort: async () => run.kill(),
  };
}
