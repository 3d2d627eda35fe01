// mongo: `mongodump --archive` run inside the datastore's container (the official
// image carries the tools), streamed out through the agent's pipeline; --oplog when
// the server is a replica-set member and everything is dumped. The manifest records per
// database the collections with their document counts and index definitions, counted
// from the archive stream itself (archive.ts). A restore feeds the archive to
// mongorestore in the target container (--oplogReplay when the dump has an oplog), then
// compares counts and indexes with the driver. Through a mongos, the balancer is stopped
// for the dump; the next start restarts one a kill -9 left stopped (repair.ts).
import { parseSchema, runningContainer, UsageError, type DatastorePlugin } from '../../agent/plugin/index.ts';
import { optionsSchema, type MongoOptions } from './options.ts';

// The work itself (and the drivers it uses) loads when a job of this plugin runs: a
// command that only plans or lists loads none of it.
export const mongoPlugin: DatastorePlugin<MongoOptions> = {
  name: 'mongo',
  recordedOptions: ['database', 'exclude_collections'],

  parseOptions(raw, where) {
    const o = parseSchema(optionsSchema, raw, where);
    if (o.exclude_collections && !o.database) throw new UsageError(`${where}: exclude_collections needs database (mongodump excludes collections of one database)`);
    return o;
  },

  async check(ctx, job) {
    await runningContainer(ctx, job.container, `job ${job.name}`, 'mongo');
  },

  async backup(ctx, job) {
    return (await import('./backup.ts')).backupArchive(ctx, job);
  },

  async restore(ctx, job, src, opts) {
    return (await import('./restore.ts')).restoreArchive(ctx, job, src, opts);
  },

  async repairKilled(ctx, killed) {
    return (await import('./repair.ts')).restartKilledBalancer(ctx, killed);
  },

  // Point-in-time recovery (a replica-set member's oplog, shipped by the daemon): a dump
  // taken with --oplog is as of its window's last entry.
  pitr: {
    format: 'bson',
    positionOf(stats) {
      const last = (stats.oplog_window as { last?: { t?: unknown; i?: unknown } } | undefined)?.last;
      return stats.oplog === true && Number.isInteger(last?.t) && Number.isInteger(last?.i) ? { t: last!.t as number, i: last!.i as number } : undefined;
    },
    async openLog(ctx, job) {
      return (await import('./oplog.ts')).openOplog(ctx, job);
    },
  },

  async drill(job, port) {
    return (await import('./drill.ts')).drillServer(job, port);
  },
};
