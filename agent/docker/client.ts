// The narrow Docker interface every plugin and step uses (plugins never import
// dockerode): the API wrapper (api.ts: containers, volumes, images, inspect, labels) and
// the byte transport (transport.ts: exec streams, helpers, named pipes) composed over one
// dockerode connection. Callers see one DockerClient.
import type Docker from 'dockerode';
import type { DockerApi } from './api.ts';
import type { DockerTransport, TransportOptions } from './transport.ts';

export type { ContainerDetails, ContainerInfo, DockerApi, HelperMount, MountRef, ServerSpec, VolumeInfo } from './api.ts';
export type { DockerTransport, ExecRun, ExecSpec, HelperResult, HelperRun, HelperSpec, Transfer } from './transport.ts';
export type { HelperCollect, HelperFile } from './archive.ts';

export interface DockerOptions extends TransportOptions {
  socket?: string;
}

export interface DockerClient extends DockerApi, DockerTransport {}

// Every method of a DockerClient, listed so that the lazy client below has them all
// (the compiler checks the list against the interface).
const METHODS = {
  ping: 1, inspectContainer: 1, listContainers: 1, listVolumes: 1, inspectVolume: 1, createVolume: 1, removeVolume: 1, imageExists: 1,
  stopContainer: 1, startContainer: 1, runServer: 1, removeContainer: 1, containerLogs: 1, exec: 1, runHelper: 1, removeTempFiles: 1,
} satisfies Record<keyof DockerClient, 1>;

/** A client whose dockerode connection is made at its first call: dockerode and its
 * dependencies (ssh2, tar-fs...), and the wrappers over it (api.ts, transport.ts with
 * tar-stream), load only for a command that talks to dockerd, not for
 * `plan` without discovery, `list`, `status`, `key`... */
export function connectDocker(o: DockerOptions): DockerClient {
  let real: Promise<DockerClient> | undefined;
  const connect = (): Promise<DockerClient> =>
    (real ??= Promise.all([import('dockerode'), import('./api.ts'), import('./transport.ts')]).then(([{ default: Docker }, { dockerApi, dockerCalls }, { dockerTransport }]) => {
      const socket = o.socket;
      const opts = socket ? { socketPath: socket } : process.env.DOCKER_HOST ? undefined : { socketPath: '/var/run/docker.sock' };
      const docker: Docker = new Docker(opts);
      const calls = dockerCalls(socket ?? process.env.DOCKER_HOST ?? '/var/run/docker.sock');
      return { ...dockerApi(docker, calls), ...dockerTransport(docker, calls, o) };
    }));
  const lazy = (name: keyof DockerClient) =>
    async (...args: unknown[]): Promise<unknown> => {
      const client = await connect();
      return (client[name] as (...a: unknown[]) => Promise<unknown>)(...args);
    };
  return Object.fromEntries(Object.keys(METHODS).map((name) => [name, lazy(name as keyof DockerClient)])) as unknown as DockerClient;
}
