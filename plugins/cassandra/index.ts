// cassandra: one node's data as a `nodetool snapshot` (hard links of its immutable
// SSTables, taken after a flush) plus the schema, shipped as a tar stream from inside
// the node's container, then `nodetool clearsnapshot` whatever happened. Only the
// snapshot directories of the backup's tag are read, never live SSTable directories.
// Incremental: every backup stores an index of its snapshot's files (name, size, sha256,
// the backup holding each); with a base, the SSTables its index already holds are not
// shipped again (file-index.ts).
// The snapshot tag is the backup id. The manifest records the node (host id, tokens,
// datacenter, rack, version), keyspaces (their CQL), tables (id, files, bytes, rows).
// Restore stages the files on the target node's data volume (an incremental's each from
// the backup that holds it, checked against its sha256), creates missing keyspaces/tables
// from the shipped schema, loads each table with `nodetool import`, then counts rows and
// compares them with the manifest. The next start of the agent
// clears the snapshot of a backup killed with kill -9 (repair.ts).
import { parseSchema, runningContainer, type DatastorePlugin } from '../../agent/plugin/index.ts';
import { optionsSchema, type CassandraOptions } from './options.ts';

// The work itself (and the drivers it uses) loads when a job of this plugin runs: a
// command that only plans or lists loads none of it.
export const cassandraPlugin: DatastorePlugin<CassandraOptions> = {
  name: 'cassandra',
  recordedOptions: ['keyspaces', 'tables', 'count_rows'],
  incremental: true,

  parseOptions(raw, where) {
    return parseSchema(optionsSchema, raw, where);
  },

  async check(ctx, job) {
    await runningContainer(ctx, job.container, `job ${job.name}`, 'cassandra');
  },

  async backup(ctx, job) {
    return (await import('./backup.ts')).backupNode(ctx, job);
  },

  async restore(ctx, job, src, opts) {
    return (await import('./restore.ts')).restoreNode(ctx, job, src, opts);
  },

  async drill(job, port, source) {
    return (await import('./drill.ts')).drillServer(job, port, source);
  },

  async repairKilled(ctx, killed) {
    return (await import('./repair.ts')).clearKilledSnapshot(ctx, killed);
  },
};
