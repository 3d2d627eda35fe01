// mariadb: a hot, consistent logical dump (mariadb-dump, or mysqldump on MySQL images)
// run inside the datastore's container with --single-transaction --routines --events
// --triggers. The manifest records per database and table the row count and a checksum
// counted from the dump stream itself (dump-stats.ts); a restore feeds the dump to the
// container's client, then dumps the restored databases again and compares.
import { parseSchema, runningContainer, type DatastorePlugin } from '../../agent/plugin/index.ts';
import { optionsSchema, type MariadbOptions } from './options.ts';

// The work itself (and the drivers it uses) loads when a job of this plugin runs: a
// command that only plans or lists loads none of it.
export const mariadbPlugin: DatastorePlugin<MariadbOptions> = {
  name: 'mariadb',
  recordedOptions: ['databases'],

  parseOptions(raw, where) {
    return parseSchema(optionsSchema, raw, where);
  },

  async check(ctx, job) {
    await runningContainer(ctx, job.container, `job ${job.name}`, 'mariadb');
  },

  async backup(ctx, job) {
    return (await import('./backup.ts')).backupDump(ctx, job);
  },

  async restore(ctx, job, src, opts) {
    return (await import('./restore.ts')).restoreDump(ctx, job, src, opts);
  },

  async drill(job, port) {
    return (await import('./drill.ts')).drillServer(job, port);
  },
};
