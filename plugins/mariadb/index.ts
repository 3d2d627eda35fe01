// mariadb: a hot, consistent logical dump (mariadb-dump, or mysqldump on MySQL images)
// run inside the datastore's container with --single-transaction --routines --events
// --triggers. The manifest records per database and table the row count and a checksum
// counted from the dump stream itself (dump-stats.ts); a restore feeds the dump to the
// container's client, then dumps the restored databases again and compares.
import { parseSchema, runningContainer, type DatastorePlugin } from '../../agent/plugin/index.ts';
import { backupDump } from './backup.ts';
import { drillServer } from './drill.ts';
import { optionsSchema, type MariadbOptions } from './options.ts';
import { restoreDump } from './restore.ts';

export const mariadbPlugin: DatastorePlugin<MariadbOptions> = {
  name: 'mariadb',
  recordedOptions: ['databases'],

  parseOptions(raw, where) {
    return parseSchema(optionsSchema, raw, where);
  },

  async check(ctx, job) {
    await runningContainer(ctx, job.container, `job ${job.name}`, 'mariadb');
  },

  backup(ctx, job) {
    return backupDump(ctx, job);
  },

  restore(ctx, job, src, opts) {
    return restoreDump(ctx, job, src, opts);
  },

  drill(job, port) {
    return drillServer(job, port);
  },
};
