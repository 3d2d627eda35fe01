// volume: a named Docker volume as a tar stream (pax format: types, modes, owners,
// symlinks, hardlinks, empty dirs, mtimes, xattrs, ACLs, sparse and large files).
// Backup mounts the volume read-only in a helper container, optionally with its
// containers stopped (job `stop`, ordered by their `snapagent.order` label). Restore
// extracts into a staging dir inside the target volume, and replaces the live content
// only after the archive's sha256 and the entry counts matched the manifest. With
// incremental backups on, each backup is a GNU tar level (--listed-incremental) whose
// snapshot file is its index: a full, then only what changed (snar.ts, backup.ts).
import { parseSchema, SnapError, type DatastorePlugin } from '../../agent/plugin/index.ts';
import { optionsSchema, type VolumeOptions } from './options.ts';

export type { VolumeOptions } from './options.ts';

// The work itself (and the drivers it uses) loads when a job of this plugin runs: a
// command that only plans or lists loads none of it.
export const volumePlugin: DatastorePlugin<VolumeOptions> = {
  name: 'volume',
  recordedOptions: [],
  incremental: true,

  parseOptions(raw, where) {
    return parseSchema(optionsSchema, raw, where);
  },

  async check(ctx, job) {
    if (!job.volume) throw new SnapError(`job ${job.name}: the volume plugin needs "volume"`);
    if (!(await ctx.docker.inspectVolume(job.volume))) {
      throw new SnapError(`job ${job.name}: volume "${job.volume}" does not exist`, { hint: 'check `docker volume ls`, or fix the job\'s "volume" key' });
    }
    if (!(await ctx.docker.imageExists(ctx.helperImage))) {
      throw new SnapError(`helper image ${ctx.helperImage} is missing`, { hint: 'run `make images` (or set docker.helper_image to an image with GNU tar)' });
    }
  },

  async backup(ctx, job) {
    return (await import('./backup.ts')).backupVolume(ctx, job);
  },

  async restore(ctx, job, src, opts) {
    return (await import('./restore.ts')).restoreVolume(ctx, job, src, opts);
  },

  // A drill restores into a fresh volume: the restore compares the entries with the manifest.
  async drill() {
    return { kind: 'volume' };
  },
};
