// elasticsearch: a snapshot (snapshot API) into an fs repository on a Docker volume of
// the container, then the whole repository directory shipped as one tar stream by a
// helper container (read-only mount). Each archive is a self-contained repository:
// restorable alone, onto any cluster whose path.repo is on a volume. After a committed
// backup the live repository keeps only the newest `keep_snapshots` snapshots of the
// job. Restore puts the repository back into the target's path.repo volume (a fresh
// directory), registers it read-only under another name, restores the snapshot's
// indices, waits for yellow, and compares document counts and mappings with the manifest.
// The next start of the agent removes what a restore killed with kill -9 staged
// (repair.ts).
import { parseSchema, runningContainer, SnapError, type DatastorePlugin } from '../../agent/plugin/index.ts';
import { backupCluster } from './backup.ts';
import { drillServer } from './drill.ts';
import { optionsSchema, type EsOptions } from './options.ts';
import { removeKilledStage } from './repair.ts';
import { restoreSnapshot } from './restore.ts';

export const elasticsearchPlugin: DatastorePlugin<EsOptions> = {
  name: 'elasticsearch',
  recordedOptions: ['indices', 'include_global_state'],

  parseOptions(raw, where) {
    return parseSchema(optionsSchema, raw, where);
  },

  async check(ctx, job) {
    await runningContainer(ctx, job.container, `job ${job.name}`, 'elasticsearch');
    if (!(await ctx.docker.imageExists(ctx.helperImage))) {
      throw new SnapError(`helper image ${ctx.helperImage} is missing`, { hint: 'run `make images` (or set docker.helper_image to an image with GNU tar)' });
    }
  },

  backup(ctx, job) {
    return backupCluster(ctx, job);
  },

  restore(ctx, job, src, opts) {
    return restoreSnapshot(ctx, job, src, opts);
  },

  drill(job, port) {
    return drillServer(job, port);
  },

  repairKilled(ctx, killed) {
    return removeKilledStage(ctx, killed);
  },
};
