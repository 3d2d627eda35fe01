// The narrow Docker interface every plugin and step uses (plugins never import
// dockerode): the API wrapper (api.ts: containers, volumes, images, inspect, labels) and
// the byte transport (transport.ts: exec streams, helpers, named pipes) composed over one
// dockerode connection. Callers see one DockerClient.
import Docker from 'dockerode';
import { dockerApi, dockerCalls, type DockerApi } from './api.ts';
import { dockerTransport, type DockerTransport, type TransportOptions } from './transport.ts';

export type { ContainerDetails, ContainerInfo, DockerApi, HelperMount, MountRef, ServerSpec, VolumeInfo } from './api.ts';
export type { DockerTransport, ExecRun, ExecSpec, HelperResult, HelperRun, HelperSpec, Transfer } from './transport.ts';
export type { HelperCollect, HelperFile } from './archive.ts';

export interface DockerOptions extends TransportOptions {
  socket?: string;
}

export interface DockerClient extends DockerApi, DockerTransport {}

export function connectDocker(o: DockerOptions): DockerClient {
  const socket = o.socket;
  const opts = socket ? { socketPath: socket } : process.env.DOCKER_HOST ? undefined : { socketPath: '/var/run/docker.sock' };
  const docker = new Docker(opts);
  const calls = dockerCalls(socket ?? process.env.DOCKER_HOST ?? '/var/run/docker.sock');
  return { ...dockerApi(docker, calls), ...dockerTransport(docker, calls, o) };
}
