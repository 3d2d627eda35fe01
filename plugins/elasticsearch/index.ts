// elasticsearch: a snapshot (snapshot API) into an fs repository on a Docker volume of
// the container, then the repository's files shipped as one tar stream by a helper
// container (read-only mount). Incremental: the repository stays in place between
// backups (Elasticsearch's snapshots share its blobs, which are never rewritten), each
// backup lists every file of it with its sha256 (its index) and ships only the files the
// base backup's list does not already hold; without a base, every file (a full). After a
// committed backup the live repository keeps only the newest `keep_snapshots` snapshots
// of the job. Restore assembles the repository as the backup's list has it, from the
// pieces of its chain, in a fresh directory of the target's path.repo volume, checks
// every file's sha256, registers it read-only under another name, restores the
// snapshot's indices, waits for yellow, and compares document counts and mappings with
// the manifest.
// The next start of the agent removes what a restore killed with kill -9 staged
// (repair.ts).
import { parseSchema, runningContainer, SnapError, type DatastorePlugin } from '../../agent/plugin/index.ts';
import { optionsSchema, type EsOptions } from './options.ts';

// The work itself (and the drivers it uses) loads when a job of this plugin runs: a
// command that only plans or lists loads none of it.
export const elasticsearchPlugin: DatastorePlugin<EsOptions> = {
  name: 'elasticsearch',
  recordedOptions: ['indices', 'include_global_state'],
  incremental: true,

  parseOptions(raw, where) {
    return parseSchema(optionsSchema, raw, where);
  },

  async check(ctx, job) {
    await runningContainer(ctx, job.container, `job ${job.name}`, 'elasticsearch');
    if (!(await ctx.docker.imageExists(ctx.helperImage))) {
      throw new SnapError(`helper image ${ctx.helperImage} is missing`, { hint: 'run `make images` (or set docker.helper_image to an image with GNU tar)' });
    }
  },

  async backup(ctx, job) {
    return (await import('./backup.ts')).backupCluster(ctx, job);
  },

  async restore(ctx, job, src, opts) {
    return (await import('./restore.ts')).restoreSnapshot(ctx, job, src, opts);
  },

  async drill(job, port) {
    return (await import('./drill.ts')).drillServer(job, port);
  },

  async repairKilled(ctx, killed) {
    return (await import('./repair.ts')).removeKilledStage(ctx, killed);
  },
};
