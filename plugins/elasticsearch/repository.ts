// The fs snapshot repository: it must lie under one of the node's path.repo entries
// and on a Docker volume of the container (so a helper container can ship it, and a
// restore can put one back), and is registered by the agent when missing. A restore's
// staged copy is removed through a helper container that mounts the volume.
import path from 'node:path/posix';
import { type ContainerDetails, type PluginContext, SnapError, toolMessages } from '../../agent/plugin/index.ts';
import { esError, esErrorType, type Es } from './connect.ts';
import { MOUNT, REMOVE } from './scripts.ts';

export interface RepoPlace {
  /** Absolute location inside the container. */
  location: string;
  /** The Docker volume holding it, and the location relative to the volume's root. */
  volume: string;
  subpath: string;
  /** Where that volume is mounted in the container. */
  mountpoint: string;
  /** The path.repo entry covering it. */
  pathRepo: string;
}

/** The node's path.repo entries, as Elasticsearch itself resolved its settings. */
export async function pathRepo(es: Es, container: string): Promise<string[]> {
  const res = (await es.client.nodes.info({ node_id: '_local', metric: 'settings', filter_path: 'nodes.*.settings.path.repo' }).catch((err: unknown) => {
    throw esError(err, `Elasticsearch in ${container}`);
  })) as { nodes?: Record<string, { settings?: { path?: { repo?: string | string[] } } }> };
  const node = Object.values(res.nodes ?? {})[0];
  const repo = node?.settings?.path?.repo;
  return (Array.isArray(repo) ? repo : repo ? repo.split(',') : []).map((p) => p.trim()).filter(Boolean);
}

function within(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Where a repository location lies: the path.repo entry and the Docker volume; a clear
 * error naming the setting to add when either is missing. */
export function place(c: ContainerDetails, repos: string[], location: string | undefined, repoName: string): RepoPlace {
  if (repos.length === 0) {
    throw new SnapError(`container ${c.name}: Elasticsearch has no path.repo setting, so it cannot write snapshots to a file system repository`, {
      hint: `mount a Docker volume in the container (e.g. -v es-snapshots:/usr/share/elasticsearch/snapshots), set path.repo to that path (env path.repo=/usr/share/elasticsearch/snapshots, or path.repo in elasticsearch.yml) and restart it`,
    });
  }
  const home = '/usr/share/elasticsearch';
  const abs = location ? path.resolve(repos.map((r) => path.resolve(home, r))[0]!, location) : path.join(path.resolve(home, repos[0]!), repoName);
  const covering = repos.map((r) => path.resolve(home, r)).find((r) => within(abs, r));
  if (!covering) {
    throw new SnapError(`container ${c.name}: the repository location ${abs} is not under path.repo (${repos.join(', ')})`, {
      hint: `add it to path.repo (e.g. path.repo=${[...repos, abs].join(',')}) and restart Elasticsearch, or set options.location under ${repos[0]}`,
    });
  }
  const mount = c.mounts
    .filter((m) => within(abs, m.destination))
    .sort((a, b) => b.destination.length - a.destination.length)[0];
  if (!mount || mount.type !== 'volume' || !mount.name) {
    const what = mount ? `a ${mount.type} mount (${mount.source})` : "the container's own file system";
    throw new SnapError(`container ${c.name}: the repository location ${abs} is on ${what}, not on a Docker volume`, {
      hint: `mount a named volume at ${covering} (e.g. -v es-snapshots:${covering}); the agent ships and restores repositories through Docker volumes`,
    });
  }
  return { location: abs, volume: mount.name, subpath: path.relative(mount.destination, abs), mountpoint: mount.destination, pathRepo: covering };
}

/** The location of an already registered repository, or undefined when there is none. */
export async function registered(es: Es, name: string, container: string): Promise<{ type: string; location?: string; readonly: boolean } | undefined> {
  try {
    const res = (await es.client.snapshot.getRepository({ name })) as Record<string, { type: string; settings?: { location?: string; readonly?: string | boolean } }>;
    const r = res[name];
    if (!r) return undefined;
    return { type: r.type, location: r.settings?.location, readonly: String(r.settings?.readonly) === 'true' };
  } catch (err) {
    if (esErrorType(err)?.type === 'repository_missing_exception') return undefined;
    throw esError(err, `Elasticsearch in ${container}`);
  }
}

/** Registers an fs repository (verified by every node: they all must be able to write it). */
export async function register(ctx: PluginContext, es: Es, c: ContainerDetails, name: string, p: RepoPlace, readonly: boolean): Promise<void> {
  try {
    await es.client.snapshot.createRepository({ name, verify: !readonly, repository: { type: 'fs', settings: { location: p.location, readonly } } });
    ctx.log.info({ repository: name, location: p.location, volume: p.volume, readonly }, 'registered the snapshot repository');
  } catch (err) {
    const e = esErrorType(err);
    const text = `${e?.type ?? ''} ${e?.reason ?? ''} ${(err as Error).message}`;
    if (/access_denied|AccessDenied|permission denied|not writable|cannot create/i.test(text)) {
      throw new SnapError(`container ${c.name}: Elasticsearch cannot write the repository location ${p.location} (volume ${p.volume}): ${e?.reason ?? e?.type ?? 'access denied'}`, {
        hint: `the volume is not writable by Elasticsearch's user (uid 1000): start the container as root (--user 0; the image's entrypoint then gives path.repo to uid 1000 and drops to it), or chown -R 1000:0 the volume's contents`,
      });
    }
    throw esError(err, `registering repository ${name} in ${c.name}`);
  }
}

export async function unregister(es: Es, name: string): Promise<void> {
  await es.client.snapshot.deleteRepository({ name }).catch((err: unknown) => {
    if (esErrorType(err)?.type !== 'repository_missing_exception') throw err;
  });
}

/** Removes a staged repository: `subpath` of `volume`, through a helper container. */
export async function removeStaged(ctx: PluginContext, volume: string, subpath: string): Promise<void> {
  const helper = await ctx.docker.runHelper({ image: ctx.helperImage, purpose: 'es-restore-cleanup', cmd: ['sh', '-c', REMOVE, 'snapagent', MOUNT, subpath], mounts: [{ volume, target: MOUNT, readOnly: false }] });
  helper.stdout.resume();
  const res = await helper.done;
  if (res.exitCode !== 0) throw new SnapError(`removing ${subpath} from volume ${volume} failed: ${toolMessages(res.stderr)}`);
}
