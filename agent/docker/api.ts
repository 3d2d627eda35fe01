// The Docker API wrapper: containers, volumes, images, inspect, labels, server
// containers, logs. Every call that touches a container logs its id; dockerode's errors
// become SnapErrors saying what failed (and what to do when dockerd is out of reach).
// Moving bulk bytes in and out of containers is transport.ts.
import type Docker from 'dockerode';
import { SnapError } from '../errors.ts';
import { log } from '../log.ts';

export interface MountRef {
  type: string;
  name?: string;
  source: string;
  destination: string;
  rw: boolean;
}

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  state: string;
  running: boolean;
  labels: Record<string, string>;
  mounts: MountRef[];
}

export interface VolumeInfo {
  name: string;
  driver: string;
  labels: Record<string, string>;
  options: Record<string, string>;
}

export interface HelperMount {
  volume: string;
  target: string;
  readOnly: boolean;
}

/** A long-running server container (restore drills), on the host network. */
export interface ServerSpec {
  name: string;
  image: string;
  env: Record<string, string>;
  cmd: string[];
  user?: string;
  mounts: HelperMount[];
  labels: Record<string, string>;
}

export interface ContainerDetails extends ContainerInfo {
  env: Record<string, string>;
  /** Entrypoint + Cmd as the container runs them. */
  args: string[];
  networkMode: string;
  /** host port published for "<port>/tcp", e.g. { "3306/tcp": 13306 }. */
  published: Record<string, number>;
  /** The healthcheck's status ("starting", "healthy", "unhealthy"); undefined without one. */
  health?: string;
}

export interface DockerApi {
  ping(): Promise<void>;
  /** A container by name or id, undefined when it does not exist. */
  inspectContainer(ref: string): Promise<ContainerDetails | undefined>;
  listContainers(): Promise<ContainerInfo[]>;
  listVolumes(): Promise<VolumeInfo[]>;
  inspectVolume(name: string): Promise<VolumeInfo | undefined>;
  createVolume(v: VolumeInfo): Promise<void>;
  removeVolume(name: string): Promise<void>;
  imageExists(ref: string): Promise<boolean>;
  stopContainer(id: string, timeoutSeconds: number): Promise<void>;
  startContainer(id: string): Promise<void>;
  /** Creates and starts a server container; the env goes through the API, never argv. */
  runServer(spec: ServerSpec): Promise<void>;
  /** Removes a container (running or not) and its anonymous volumes; no error when gone. */
  removeContainer(ref: string): Promise<void>;
  /** The last lines of a container's output, for an error message. */
  containerLogs(ref: string, lines: number): Promise<string>;
}

/** How calls to dockerd fail: `wrap` turns an error into a SnapError naming the call;
 * `lookup` is an inspect whose 404 means "there is none" rather than an error. */
export interface DockerCalls {
  wrap<T>(what: string, fn: () => Promise<T>): Promise<T>;
  lookup<T, M>(what: string, fn: () => Promise<T>, missing: M): Promise<T | M>;
}

/** `where`: the Engine's address, for the message when it cannot be reached. */
export function dockerCalls(where: string): DockerCalls {
  const wrap = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      const e = err as { statusCode?: number; json?: { message?: string }; message?: string; code?: string };
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES') {
        throw new SnapError(`cannot reach the Docker Engine at ${where} (${e.code})`, {
          hint: 'start dockerd (or set docker.socket / $DOCKER_HOST) and make sure this user may use the socket',
          cause: err,
        });
      }
      throw new SnapError(`docker: ${what}: ${e.json?.message ?? e.message ?? String(err)}`, { cause: err });
    }
  };

  // An inspect whose 404 means "there is none" rather than an error.
  const lookup = async <T, M>(what: string, fn: () => Promise<T>, missing: M): Promise<T | M> => {
    try {
      return await fn();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return missing;
      return wrap(what, () => Promise.reject(err));
    }
  };

  return { wrap, lookup };
}

export function dockerApi(docker: Docker, { wrap, lookup }: DockerCalls): DockerApi {
  return {
    ping: () => wrap('ping', async () => void (await docker.ping())),

    inspectContainer: (ref) => lookup(`inspect container ${ref}`, async () => toDetails(await docker.getContainer(ref).inspect()), undefined),

    listContainers: () =>
      wrap('list containers', async () => {
        const list = await docker.listContainers({ all: true });
        return list.map((c) => ({
          id: c.Id,
          name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
          image: c.Image,
          state: c.State,
          running: c.State === 'running' || c.State === 'restarting' || c.State === 'paused',
          labels: c.Labels ?? {},
          mounts: (c.Mounts ?? []).map((m) => ({
            type: m.Type,
            name: m.Name,
            source: m.Source,
            destination: m.Destination,
            rw: m.RW,
          })),
        }));
      }),

    listVolumes: () =>
      wrap('list volumes', async () => {
        const res = await docker.listVolumes();
        return (res.Volumes ?? []).map(toVolume);
      }),

    inspectVolume: (name) => lookup(`inspect volume ${name}`, async () => toVolume(await docker.getVolume(name).inspect()), undefined),

    createVolume: (v) =>
      wrap(`create volume ${v.name}`, async () => {
        await docker.createVolume({ Name: v.name, Driver: v.driver, Labels: v.labels, DriverOpts: v.options });
      }),

    removeVolume: (name) => wrap(`remove volume ${name}`, async () => void (await docker.getVolume(name).remove())),

    imageExists: (ref) => lookup(`inspect image ${ref}`, async () => Boolean(await docker.getImage(ref).inspect()), false),

    stopContainer: (id, timeoutSeconds) =>
      wrap(`stop container ${id.slice(0, 12)}`, async () => {
        log.info({ container: id.slice(0, 12) }, 'stopping container');
        try {
          await docker.getContainer(id).stop({ t: timeoutSeconds });
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode !== 304) throw err; // 304: already stopped
        }
      }),

    startContainer: (id) =>
      wrap(`start container ${id.slice(0, 12)}`, async () => {
        log.info({ container: id.slice(0, 12) }, 'starting container');
        try {
          await docker.getContainer(id).start();
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode !== 304) throw err; // 304: already running
        }
      }),

    runServer: (spec) =>
      wrap(`start container ${spec.name}`, async () => {
        const c = await docker.createContainer({
          name: spec.name,
          Image: spec.image,
          Cmd: spec.cmd.length ? spec.cmd : undefined,
          User: spec.user,
          Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
          Labels: spec.labels,
          HostConfig: {
            NetworkMode: 'host',
            Mounts: spec.mounts.map((m) => ({ Type: 'volume' as const, Source: m.volume, Target: m.target, ReadOnly: m.readOnly })),
          },
        });
        log.info({ container: c.id.slice(0, 12), name: spec.name, image: spec.image }, 'starting container');
        await c.start();
      }),

    removeContainer: (ref) =>
      lookup(`remove container ${ref}`, async () => void (await docker.getContainer(ref).remove({ force: true, v: true })), undefined),

    containerLogs: (ref, lines) =>
      lookup(`logs of container ${ref}`, async () => unframe(await docker.getContainer(ref).logs({ stdout: true, stderr: true, tail: lines, follow: false })), ''),
  };
}

// A non-TTY container's log: frames of an 8-byte header (stream, 3 zero bytes, length).
function unframe(buf: Buffer): string {
  const out: Buffer[] = [];
  for (let off = 0; off + 8 <= buf.length; ) {
    const n = buf.readUInt32BE(off + 4);
    out.push(buf.subarray(off + 8, off + 8 + n));
    off += 8 + n;
  }
  return Buffer.concat(out).toString('utf8');
}

function toDetails(c: Docker.ContainerInspectInfo): ContainerDetails {
  const env: Record<string, string> = {};
  for (const kv of c.Config.Env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const published: Record<string, number> = {};
  for (const [port, binds] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
    const hostPort = binds?.[0]?.HostPort;
    if (hostPort) published[port] = Number(hostPort);
  }
  const entry = c.Config.Entrypoint ?? [];
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    image: c.Config.Image,
    state: c.State.Status,
    running: c.State.Running,
    labels: c.Config.Labels ?? {},
    mounts: (c.Mounts ?? []).map((m) => ({ type: m.Type, name: m.Name, source: m.Source, destination: m.Destination, rw: m.RW })),
    env,
    args: [...(Array.isArray(entry) ? entry : [entry]), ...(c.Config.Cmd ?? [])],
    networkMode: c.HostConfig.NetworkMode ?? 'default',
    published,
    health: c.State.Health?.Status,
  };
}

function toVolume(v: Docker.VolumeInspectInfo): VolumeInfo {
  return { name: v.Name, driver: v.Driver, labels: v.Labels ?? {}, options: (v.Options as Record<string, string> | null) ?? {} };
}
