// Backup of a volume: a helper container mounts it read-only and streams it as a tar,
// optionally with the containers using it stopped meanwhile (job `stop`).
import { SnapError, stopInOrder, toolMessages, volumeUsers, parseStats, type BackupStream, type HelperRun, type Job, type PluginContext, type Quiesced, type VolumeInfo } from '../../agent/plugin/index.ts';
import { recordedDriverOptions } from './driver-options.ts';
import type { VolumeOptions } from './options.ts';
import { BACKUP, MOUNT } from './scripts.ts';

export async function backupVolume(ctx: PluginContext, job: Job<VolumeOptions>): Promise<BackupStream> {
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
}

// What the manifest says of the volume: credentials in its driver options redacted.
function sourceRecord(volume: string, info: VolumeInfo): Record<string, unknown> {
  const { options, redacted } = recordedDriverOptions(info.options);
  return { volume, driver: info.driver, labels: info.labels, driver_options: options, ...(redacted.length ? { redacted_driver_options: redacted } : {}) };
}
