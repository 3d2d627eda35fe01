// The repair of a killed restore at the next start of the agent. A restore stages the
// stored repository in a fresh directory of the repository volume
// (<location>-restore-<id>) and registers it under another name
// (<repository>-restore-<id>); killed with kill -9 before the indices began to change, it
// leaves both behind. The restore records them before making each (restore.ts); the next
// start unregisters that repository when the cluster answers and it still points at the
// staged directory, then removes the directory through a helper container, after
// checking every recorded value again: they are read back from a file. A restore killed
// after the indices began to change is left to the re-run its note asks for.
import path from 'node:path/posix';
import { type ContainerDetails, DOCKER_NAME, type KilledWork, type PluginContext, type RepairData } from '../../agent/plugin/index.ts';
import { connect } from './connect.ts';
import { optionsSchema, type EsOptions } from './options.ts';
import { registered, removeStaged, unregister, type RepoPlace } from './repository.ts';

const REPOSITORY = /^[a-z0-9][a-z0-9_.-]*$/;
// What a path segment may hold: no control characters, and never "." or "..".
const SEGMENT = /^[^\u0000-\u001f\u007f/]+$/;

/** What a restore records: the staged directory, then (before registering it) the
 * repository name. */
export function stagedRecord(container: string, stage: RepoPlace, repository?: string): RepairData {
  return { container, volume: stage.volume, subpath: stage.subpath, location: stage.location, ...(repository ? { repository } : {}) };
}

interface Staged {
  container: string;
  volume: string;
  subpath: string;
  location: string;
  repository?: string;
}

/** The staged repository a killed restore recorded, or why it is refused: Docker names,
 * a relative path in the volume and the same absolute path in the container, each named
 * after the restored backup's id (`-restore-<id>`), never anything else of the volume. */
export function recordedStage(killed: Pick<KilledWork, 'kind' | 'id' | 'data'>): Staged | string {
  const { container, volume, subpath, location, repository, ...rest } = killed.data;
  if (killed.kind !== 'restore') return `recorded by a ${killed.kind}, not a restore`;
  if (!killed.id) return 'the restored backup is not known';
  if (Object.keys(rest).length) return `unexpected values (${Object.keys(rest).join(', ')})`;
  const suffix = `-restore-${killed.id.toLowerCase()}`;
  if (!container || !DOCKER_NAME.test(container)) return 'its container is not a Docker container name';
  if (!volume || !DOCKER_NAME.test(volume)) return 'its volume is not a Docker volume name';
  const segments = subpath?.split('/') ?? [];
  if (!subpath || segments.some((s) => !SEGMENT.test(s) || s === '.' || s === '..')) return 'its staged directory is not a plain path in the volume';
  const name = segments.at(-1)!;
  if (!name.endsWith(suffix) || name.length === suffix.length) return `its staged directory is not named <location>${suffix}`;
  if (!location || !location.startsWith('/') || path.normalize(location) !== location || !location.endsWith(`/${subpath}`)) return 'its location is not the staged directory in the container';
  if (repository !== undefined && (!REPOSITORY.test(repository) || !repository.endsWith(suffix) || repository.length === suffix.length)) return `its repository is not named <repository>${suffix}`;
  return { container, volume, subpath, location, ...(repository !== undefined ? { repository } : {}) };
}

/** Unregisters and removes the staged repository a killed restore left: true when done
 * (or the record is refused), false while the container is not running and a repository
 * may be registered in it (the next start tries again). */
export async function removeKilledStage(ctx: PluginContext, killed: KilledWork<EsOptions>): Promise<boolean> {
  const rec = recordedStage(killed);
  if (typeof rec === 'string') {
    ctx.log.warn({ job: killed.job }, `the killed restore of job ${killed.job} recorded a staged repository that is not removed: ${rec}`);
    return true;
  }
  const c = await ctx.docker.inspectContainer(rec.container);
  if (rec.repository && c && !c.running) {
    ctx.log.warn({ container: rec.container, repository: rec.repository }, `container ${rec.container} is not running: the staged repository of the killed restore of job ${killed.job} is removed at the next start once it runs`);
    return false;
  }
  if (rec.repository && c) await unregisterStaged(ctx, killed, c, rec as Staged & { repository: string });
  if (await ctx.docker.inspectVolume(rec.volume)) {
    await removeStaged(ctx, rec.volume, rec.subpath);
    ctx.log.warn({ volume: rec.volume, location: rec.location }, `removed the staged repository ${rec.location} (volume ${rec.volume}) of the killed restore of job ${killed.job}: it was killed before it changed any index`);
  }
  return true;
}

// Unregisters the restore's repository if the cluster answers and it still points at the
// staged directory; else says how to do it by hand.
async function unregisterStaged(ctx: PluginContext, killed: KilledWork<EsOptions>, c: ContainerDetails, rec: Staged & { repository: string }): Promise<void> {
  const own = killed.planned?.container === rec.container;
  const o = killed.planned?.options ?? optionsSchema.parse({});
  try {
    const es = await connect(ctx, c, o, own);
    try {
      const r = await registered(es, rec.repository, c.name);
      if (!r) return;
      if (r.location !== rec.location) {
        ctx.log.warn({ container: c.name, repository: rec.repository }, `repository ${rec.repository} in ${c.name} points at ${r.location ?? 'no location'}, not at the staged ${rec.location}: left registered`);
        return;
      }
      await unregister(es, rec.repository);
      ctx.log.warn({ container: c.name, repository: rec.repository }, `unregistered repository ${rec.repository} in ${c.name}, left by the killed restore of job ${killed.job}`);
    } finally {
      await es.close();
    }
  } catch (err) {
    ctx.log.warn({ container: c.name, repository: rec.repository }, `could not unregister repository ${rec.repository} in ${c.name}, left by the killed restore of job ${killed.job}: ${err instanceof Error ? err.message : String(err)}; unregister it with DELETE _snapshot/${rec.repository}`);
  }
}
