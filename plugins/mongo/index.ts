// mongo: `mongodump --archive` run inside the datastore's container (the official
// image carries the tools), streamed out through the agent's pipeline; --oplog when
// the server is a replica-set member and everything is dumped. The manifest records per
// database the collections with their document counts and index definitions, counted
// from the archive stream itself (archive.ts). A restore feeds the archive to
// mongorestore in the target container (--oplogReplay when the dump has an oplog), then
// compares counts and indexes with the driver.
import { parseSchema, runningContainer, UsageError, type DatastorePlugin } from '../../agent/plugin/index.ts';
import { backupArchive } from './backup.ts';
import { drillServer } from './drill.ts';
import { optionsSchema, type MongoOptions } from './options.ts';
import { restoreArchive } from './restore.ts';

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

  backup(ctx, job) {
    return backupArchive(ctx, job);
  },

  restore(ctx, job, src, opts) {
    return restoreArchive(ctx, job, src, opts);
  },

  drill(job, port) {
    return drillServer(job, port);
  },
};
