// The repair of a killed backup at the next start of the agent: a backup killed with
// kill -9 leaves its snapshot (tagged with the backup id) on the node, which holds hard
// links to SSTables the node has since compacted away, so it takes disk space until
// cleared. The backup records the node's container and the tag before it takes the
// snapshot (backup.ts); the next start clears that snapshot with `nodetool clearsnapshot`
// inside the container, after checking both values again: they are read back from a file.
import { BACKUP_ID, DOCKER_NAME, type KilledWork, lastLines, type PluginContext, type RepairData } from '../../agent/plugin/index.ts';
import { CLEAR, sh } from './scripts.ts';

/** What a backup records before it takes its snapshot. */
export function snapshotRecord(container: string, tag: string): RepairData {
  return { container, snapshot: tag };
}

/** The snapshot a killed backup recorded, or why it is refused: the container must be a
 * Docker name, the tag a backup id, and the killed backup's own when its id is known. */
export function recordedSnapshot(killed: Pick<KilledWork, 'kind' | 'id' | 'data'>): { container: string; tag: string } | string {
  const { container, snapshot, ...rest } = killed.data;
  if (killed.kind !== 'backup') return `recorded by a ${killed.kind}, not a backup`;
  if (Object.keys(rest).length) return `unexpected values (${Object.keys(rest).join(', ')})`;
  if (!container || !DOCKER_NAME.test(container)) return 'its container is not a Docker container name';
  if (!snapshot || !BACKUP_ID.test(snapshot)) return 'its snapshot tag is not a backup id';
  if (killed.id && snapshot !== killed.id) return `its snapshot tag is not the backup's id ${killed.id}`;
  return { container, tag: snapshot };
}

/** Clears the snapshot a killed backup left: true when it is gone (or its container is, or
 * the record is refused), false while the container is not running (the next start tries
 * again). */
export async function clearKilledSnapshot(ctx: PluginContext, killed: KilledWork): Promise<boolean> {
  const rec = recordedSnapshot(killed);
  if (typeof rec === 'string') {
    ctx.log.warn({ job: killed.job }, `the killed backup of job ${killed.job} recorded a snapshot that is not cleared: ${rec}`);
    return true;
  }
  const { container, tag } = rec;
  const c = await ctx.docker.inspectContainer(container);
  if (!c) {
    ctx.log.warn({ container, snapshot: tag }, `container ${container}, where the killed backup of job ${killed.job} took snapshot ${tag}, no longer exists`);
    return true;
  }
  if (!c.running) {
    ctx.log.warn({ container, snapshot: tag }, `container ${container} is not running: snapshot ${tag} of the killed backup of job ${killed.job} is cleared at the next start once it runs`);
    return false;
  }
  const res = await sh(ctx, container, CLEAR, [tag]);
  if (res.exitCode !== 0) throw new Error(`nodetool clearsnapshot -t ${tag} in ${container} failed (exit code ${res.exitCode}): ${lastLines(res.stderr || res.stdout)}`);
  ctx.log.warn({ container, snapshot: tag }, `cleared snapshot ${tag} in ${container}, left by the killed backup of job ${killed.job}`);
  return true;
}
