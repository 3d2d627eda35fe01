// volume: a named Docker volume as a tar stream (pax format: types, modes, owners,
// symlinks, hardlinks, empty dirs, mtimes, xattrs, ACLs, sparse and large files).
// Backup mounts the volume read-only in a helper container, optionally with its
// containers stopped (job `stop`, ordered by their `snapagent.order` label). Restore
// extracts into a staging dir inside the target volume, and replaces the live content
// only after the archive's sha256 and the entry counts matched the manifest.
import { z } from 'zod';
import { type BackupStream, type DatastorePlugin, feedHelper, type HelperRun, IntegrityError, type Job, noteLiveChange, noteStage, parseSchema, parseStats, type PluginContext, type Quiesced, type RawInput, RefusedError, type RestoreOptions, type RestoreReport, seconds, SnapError, stopInOrder, toolMessages, type VolumeInfo, volumeUsers } from '../../agent/plugin/index.ts';
import { recordedDriverOptions } from './driver-options.ts';
import { BACKUP, DISCARD, EXTRACT, rootMtimeFrom, STAGE_PREFIX, SWAP } from './scripts.ts';

const optionsSchema = z.strictObject({
  /** tar --exclude patterns, relative to the volume root (e.g. "./cache"). */
  exclude: z.array(z.string()).default([]),
  /** Seconds Docker waits for a container to stop before killing it. */
  stop_timeout: seconds().default(30),
});
export type VolumeOptions = z.output<typeof optionsSchema>;

const MOUNT = '/snapagent/volume';
const COUNTED = ['files', 'dirs', 'symlinks', 'other', 'bytes'] as const;

export const volumePlugin: DatastorePlugin<VolumeOptions> = {
  name: 'volume',
  recordedOptions: [],

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

  async backup(ctx, job): Promise<BackupStream> {
    const volume = job.volume!;
    const info = await ctx.docker.inspectVolume(volume);
    if (!info) throw new SnapError(`volume "${volume}" does not exist`);
    let quiesced: Quiesced | undefined;
    if (job.stop) quiesced = await stopInOrder(ctx.docker, await volumeUsers(ctx.docker, volume), ctx.log, job.options.stop_timeout);
    let helper: HelperRun;
    try {
      helper = await ctx.docker.runHelper({
        image: ctx.helperImage,
        purpose: 'volume-backup',
        cmd: ['sh', '-c', BACKUP, 'snapagent', MOUNT, ...job.options.exclude.map((p) => `--exclude=${p}`)],
        mounts: [{ volume, target: MOUNT, readOnly: true }],
        data: 'out',
      });
    } catch (err) {
      await quiesced?.restart();
      throw err;
    }
    const done = (async () => {
      let res;
      try {
        res = await helper.done;
      } finally {
        await quiesced?.restart();
      }
      if (res.exitCode !== 0) {
        const why = res.exitCode === 1 ? 'some files changed while they were read' : `exit code ${res.exitCode}`;
        throw new SnapError(`tar of volume ${volume} failed (${why}): ${toolMessages(res.stderr)}`, {
          hint: res.exitCode === 1 ? 'set stop: true (label snapagent.stop=true) so the containers writing to it are stopped during the backup' : undefined,
        });
      }
      const stats = parseStats(res.stderr);
      if (!stats) throw new SnapError(`tar of volume ${volume}: the helper reported no entry counts`);
      return stats;
    })();
    return {
      get stream() {
        return helper.stdout;
      },
      openRaw: helper.openPipe,
      artifact: { name: 'volume', format: 'tar' },
      done,
      source: sourceRecord(volume, info),
      abort: async () => {
        await helper.kill();
        await quiesced?.restart();
      },
    };
  },

  async restore(ctx, job, src, opts) {
    return restoreVolume(ctx, job, src, opts);
  },

  // A drill restores into a fresh volume: the restore compares the entries with the manifest.
  async drill() {
    return { kind: 'volume' };
  },
};

async function restoreVolume(ctx: PluginContext, job: Job<VolumeOptions>, src: RawInput, opts: RestoreOptions): Promise<RestoreReport> {
  const volume = opts.toVolume ?? job.volume!;
  const users = (await ctx.docker.inspectVolume(volume)) ? await volumeUsers(ctx.docker, volume) : [];
  if (users.length > 0 && !opts.stop && !opts.force) {
    throw new RefusedError(
      `volume ${volume} is in use by running container(s) ${users.map((c) => c.name).join(', ')}; nothing was changed`,
      'add --stop to stop them during the restore (they are restarted afterwards), --force to restore under them, or --to-volume NEW to restore elsewhere',
    );
  }
  let created = false;
  if (!(await ctx.docker.inspectVolume(volume))) {
    const spec = opts.volumeSpec(volume);
    await ctx.docker.createVolume({ name: volume, ...spec });
    created = true;
    ctx.log.info({ volume }, 'created volume');
  }
  // A volume this restore created holds no live data: extract straight into it.
  const stage = created ? '' : `${STAGE_PREFIX}${opts.id}`;
  const mounts = [{ volume, target: MOUNT, readOnly: false }];
  const quiesced = opts.stop ? await stopInOrder(ctx.docker, users, ctx.log, job.options.stop_timeout) : undefined;
  let rootMtime = '';
  const discard = async () => {
    if (created) await ctx.docker.removeVolume(volume).catch(() => undefined);
    else await runScript(ctx, 'volume-discard', DISCARD, [MOUNT, stage, rootMtime], mounts).catch(() => undefined);
  };
  try {
    let stats: Record<string, number>;
    try {
      if (stage) await noteStage(job.name, { kind: 'volume', volume, dir: stage });
      stats = await extract(ctx, src, opts, mounts, stage, (m) => (rootMtime = m));
      const diff = COUNTED.filter((k) => opts.expected[k] !== undefined && stats[k] !== opts.expected[k]);
      if (diff.length) {
        throw new IntegrityError(
          `restored entries differ from the manifest: ${diff.map((k) => `${k} ${stats[k]} != ${String(opts.expected[k])}`).join(', ')}; the live volume was not changed`,
        );
      }
    } catch (err) {
      await discard();
      throw err;
    }
    if (stage) {
      await noteLiveChange(job.name);
      await runScript(ctx, 'volume-swap', SWAP, [MOUNT, stage], mounts);
    }
    return { destination: `volume ${volume}`, stats, restarted: quiesced?.stopped ?? [] };
  } finally {
    await quiesced?.restart();
  }
}

// What the manifest says of the volume: credentials in its driver options redacted.
function sourceRecord(volume: string, info: VolumeInfo): Record<string, unknown> {
  const { options, redacted } = recordedDriverOptions(info.options);
  return { volume, driver: info.driver, labels: info.labels, driver_options: options, ...(redacted.length ? { redacted_driver_options: redacted } : {}) };
}

async function extract(
  ctx: PluginContext,
  src: RawInput,
  opts: RestoreOptions,
  mounts: { volume: string; target: string; readOnly: boolean }[],
  stage: string,
  onRootMtime: (mtime: string) => void,
): Promise<Record<string, number>> {
  const helper = await ctx.docker.runHelper({
    image: ctx.helperImage,
    purpose: 'volume-restore',
    cmd: ['sh', '-c', EXTRACT, 'snapagent', MOUNT, stage],
    mounts,
    data: 'in',
  });
  let res;
  try {
    res = await feedHelper(helper, src, opts.integrity);
  } finally {
    onRootMtime(rootMtimeFrom((await helper.done.catch(() => undefined))?.stderr ?? ''));
  }
  if (res.exitCode !== 0) throw new SnapError(`extracting into volume failed (exit code ${res.exitCode}): ${toolMessages(res.stderr)}; the live volume was not changed`);
  const stats = parseStats(res.stderr);
  if (!stats) throw new SnapError(`the restore helper reported no entry counts (${toolMessages(res.stderr) || 'no output'}); the live volume was not changed`);
  return stats;
}

async function runScript(ctx: PluginContext, purpose: string, script: string, args: string[], mounts: { volume: string; target: string; readOnly: boolean }[]): Promise<void> {
  const helper = await ctx.docker.runHelper({ image: ctx.helperImage, purpose, cmd: ['sh', '-c', script, 'snapagent', ...args], mounts });
  helper.stdout.resume();
  const res = await helper.done;
  if (res.exitCode !== 0) throw new SnapError(`${purpose} failed (exit code ${res.exitCode}): ${toolMessages(res.stderr)}`);
}
