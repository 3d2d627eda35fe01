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
import { backupNode } from './backup.ts';
import { drillServer } from './drill.ts';
import { optionsSchema, type CassandraOptions } from './options.ts';
import { clearKilledSnapshot } from './repair.ts';
import { restoreNode } from './restore.ts';

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

  backup(ctx, job) {
    return backupNode(ctx, job);
  },

  restore(ctx, job, src, opts) {
    return restoreNode(ctx, job, src, opts);
  },

  drill(job, port, source) {
    return drillServer(job, port, source);
  },

  repairKilled(ctx, killed) {
    return clearKilledSnapshot(ctx, killed);
  },
};
