// Backup of a volume: a helper container mounts it read-only and streams it as a tar,
// optionally with the containers using it stopped meanwhile (job `stop`). With incremental
// backups on (the job's fullEvery), the tar is a GNU tar incremental dump: a level-0 full
// without a base, else only what changed since the base's snapshot file (its index), which
// goes into the helper's own filesystem; the new snapshot file comes back as this
// backup's index.
import { SnapError, stopInOrder, toolMessages, volumeUsers, parseStats, type BackupStream, type HelperRun, type IncrementalBase, type Job, type PluginContext, type PluginIndex, type PluginStats, type Quiesced, type VolumeInfo } from '../../agent/plugin/index.ts';
import { recordedDriverOptions } from './driver-options.ts';
import type { VolumeOptions } from './options.ts';
import { BACKUP, MOUNT, SNAR } from './scripts.ts';
import { checkSnar, SNAR_MAX_BYTES, SnarError } from './snar.ts';

export async function backupVolume(ctx: PluginContext, job: Job<VolumeOptions>): Promise<BackupStream> {
  const volume = job.volume!;
  const info = await ctx.docker.inspectVolume(volume);
  if (!info) throw new SnapError(`volume "${volume}" does not exist`);
  const incremental = job.fullEvery !== undefined || ctx.base !== undefined;
  const base = incremental ? usableBase(ctx) : undefined;
  let quiesced: Quiesced | undefined;
  if (job.stop) quiesced = await stopInOrder(ctx.docker, await volumeUsers(ctx.docker, volume), ctx.log, job.options.stop_timeout);
  let helper: HelperRun;
  try {
    helper = await ctx.docker.runHelper({
      image: ctx.helperImage,
      purpose: 'volume-backup',
      cmd: ['sh', '-c', BACKUP, 'snapagent', MOUNT, incremental ? SNAR : '', ...job.options.exclude.map((p) => `--exclude=${p}`)],
      mounts: [{ volume, target: MOUNT, readOnly: true }],
      data: 'out',
      ...(base ? { files: [{ path: SNAR, content: base.index }] } : {}),
      ...(incremental ? { collect: { path: SNAR, maxBytes: SNAR_MAX_BYTES } } : {}),
    });
  } catch (err) {
    await quiesced?.restart();
    throw err;
  }
  let snar: Buffer | undefined;
  const done = (async (): Promise<PluginStats> => {
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
    const stats: PluginStats | undefined = parseStats(res.stderr);
    if (!stats) throw new SnapError(`tar of volume ${volume}: the helper reported no entry counts`);
    if (incremental) {
      if (!res.collected) throw new SnapError(`tar of volume ${volume}: the helper left no snapshot file (${SNAR})`);
      try {
        const s = checkSnar(res.collected);
        // what this dump stored against what it found unchanged since the base
        Object.assign(stats, { files_shipped: s.shipped, files_reused: s.reused });
      } catch (err) {
        throw new SnapError(`tar of volume ${volume}: its snapshot file is unusable: ${(err as Error).message}`);
      }
      snar = res.collected;
    }
    return stats;
  })();
  const index = incremental
    ? done.then(
        (stats): PluginIndex => ({
          format: 'snar',
          bytes: snar!,
          // a tar level needs every level below it
          dependsOn: base ? [...base.dependsOn, base.id] : [],
          representedBytes: typeof stats.bytes === 'number' ? stats.bytes : undefined,
        }),
      )
    : undefined;
  index?.catch(() => undefined); // a failed backup: `done` tells
  return {
    get stream() {
      return helper.stdout;
    },
    openRaw: helper.openPipe,
    artifact: { name: 'volume', format: 'tar' },
    done,
    ...(index ? { index } : {}),
    source: sourceRecord(volume, info),
    abort: async () => {
      await helper.kill();
      await quiesced?.restart();
    },
  };
}

// The base's snapshot file comes from a target (its sha256 matched the signed manifest):
// it is parsed and checked before tar reads it; one that does not pass means a full.
function usableBase(ctx: PluginContext): IncrementalBase | undefined {
  const base = ctx.base;
  if (!base) return undefined;
  try {
    checkSnar(base.index);
    return base;
  } catch (err) {
    if (!(err instanceof SnarError)) throw err;
    ctx.log.warn({ base: base.id }, `the index of ${base.id} is not a usable GNU tar snapshot file (${err.message}); taking a full backup`);
    return undefined;
  }
}

// What the manifest says of the volume: credentials in its driver options redacted.
function sourceRecord(volume: string, info: VolumeInfo): Record<string, unknown> {
  const { options, redacted } = recordedDriverOptions(info.options);
  return { volume, driver: info.driver, labels: info.labels, driver_options: options, ...(redacted.length ? { redacted_driver_options: redacted } : {}) };
}
