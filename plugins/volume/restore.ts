// Restore of a volume: extracts into a staging dir inside the target volume (or straight
// into a volume the restore created), compares the entry counts with the manifest, and
// only then swaps the staging dir's content in place of the live content. An incremental
// extracts its chain first (the full, then each increment, oldest first, one helper each),
// every one with GNU tar's --listed-incremental=/dev/null so that each level's directory
// listings replay the deletions and renames since the level below.
import { feedHelper, feedPiece, IntegrityError, noteLiveChange, noteStage, parseStats, RefusedError, SnapError, stopInOrder, toolMessages, volumeUsers, type HelperResult, type Job, type PluginContext, type RawInput, type RestoreOptions, type RestoreReport } from '../../agent/plugin/index.ts';
import type { VolumeOptions } from './options.ts';
import { DISCARD, EXTRACT, MOUNT, rootMtimeFrom, STAGE_PREFIX, SWAP } from './scripts.ts';

const COUNTED = ['files', 'dirs', 'symlinks', 'other', 'bytes'] as const;

export async function restoreVolume(ctx: PluginContext, job: Job<VolumeOptions>, src: RawInput, opts: RestoreOptions): Promise<RestoreReport> {
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

type Mounts = { volume: string; target: string; readOnly: boolean }[];

async function extract(ctx: PluginContext, src: RawInput, opts: RestoreOptions, mounts: Mounts, stage: string, onRootMtime: (mtime: string) => void): Promise<Record<string, number>> {
  // a backup with an index is a GNU tar level (a full of a chain too); one without (taken
  // before incremental backups, or with them off) is a plain tar
  const mode = opts.index !== undefined || opts.chain.length > 0 ? 'incremental' : 'plain';
  const run = (step: 'begin' | 'more', last: boolean) =>
    ctx.docker.runHelper({
      image: ctx.helperImage,
      purpose: 'volume-restore',
      cmd: ['sh', '-c', EXTRACT, 'snapagent', MOUNT, stage, step, last ? 'stats' : '-', mode],
      mounts,
      data: 'in',
    });
  const steps = [...opts.chain.map((p) => ({ what: `backup ${p.id} (a piece of the chain)`, input: p.input })), { what: `backup ${opts.id}`, input: src }];
  let res: HelperResult | undefined;
  for (const [i, step] of steps.entries()) {
    const first = i === 0;
    const last = i === steps.length - 1;
    const helper = await run(first ? 'begin' : 'more', last);
    const failed = (r: HelperResult) => new SnapError(`extracting ${step.what} into the volume failed (exit code ${r.exitCode}): ${toolMessages(r.stderr)}; the live volume was not changed`);
    try {
      // the chosen backup's own bytes: feedHelper also waits for every piece's sha256
      res = last ? await feedHelper(helper, step.input, opts.integrity) : await feedPiece(helper, step.input);
    } catch (err) {
      // a helper that gave up by itself (not killed: 137) broke zstd's pipe: its own
      // message says why
      const exited = await helper.done.catch(() => undefined);
      throw !(err instanceof IntegrityError) && exited && exited.exitCode !== 0 && exited.exitCode !== 137 ? failed(exited) : err;
    } finally {
      if (first) onRootMtime(rootMtimeFrom((await helper.done.catch(() => undefined))?.stderr ?? ''));
    }
    if (res.exitCode !== 0) throw failed(res);
  }
  const stats = parseStats(res!.stderr);
  if (!stats) throw new SnapError(`the restore helper reported no entry counts (${toolMessages(res!.stderr) || 'no output'}); the live volume was not changed`);
  return stats;
}

async function runScript(ctx: PluginContext, purpose: string, script: string, args: string[], mounts: { volume: string; target: string; readOnly: boolean }[]): Promise<void> {
  const helper = await ctx.docker.runHelper({ image: ctx.helperImage, purpose, cmd: ['sh', '-c', script, 'snapagent', ...args], mounts });
  helper.stdout.resume();
  const res = await helper.done;
  if (res.exitCode !== 0) throw new SnapError(`${purpose} failed (exit code ${res.exitCode}): ${toolMessages(res.stderr)}`);
}
