// Stops the containers that use some data, in order, and restarts them in reverse
// order. Restart is idempotent and must be called on every path (success, failure,
// abort); a failed restart is reported, never swallowed. Each container is recorded in
// the process record before it is stopped, so that the next start restarts it if this
// process is killed meanwhile (agent/runtime/recovery.ts).
import type { ContainerInfo, DockerClient } from '../docker/client.ts';
import { SnapError } from '../errors.ts';
import { noteRestarted, noteStopped } from '../runtime/inflight.ts';
import type { Logger } from '../log.ts';

export interface Quiesced {
  /** Names of the containers that were stopped. */
  stopped: string[];
  /** Restarts what was stopped (reverse order); safe to call more than once. */
  restart(): Promise<void>;
}

export function containerOrder(c: ContainerInfo): number {
  const n = Number(c.labels['snapagent.order'] ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** Running containers that mount the named volume. */
export async function volumeUsers(docker: DockerClient, volume: string): Promise<ContainerInfo[]> {
  const all = await docker.listContainers();
  return all
    .filter((c) => c.running && c.mounts.some((m) => m.type === 'volume' && m.name === volume))
    .sort((a, b) => containerOrder(a) - containerOrder(b) || a.name.localeCompare(b.name));
}

export async function stopInOrder(docker: DockerClient, containers: ContainerInfo[], log: Logger, timeoutSeconds = 30): Promise<Quiesced> {
  const stopped: ContainerInfo[] = [];
  let restarted = false;
  const restart = async () => {
    if (restarted) return;
    restarted = true;
    const errors: string[] = [];
    for (const c of [...stopped].reverse()) {
      try {
        await docker.startContainer(c.id);
        await noteRestarted(c.id);
      } catch (err) {
        errors.push(`${c.name}: ${(err as Error).message}`);
      }
    }
    if (errors.length) {
      throw new SnapError(`could not restart stopped containers: ${errors.join('; ')}`, { hint: 'start them by hand with docker start' });
    }
  };
  try {
    for (const c of containers) {
      log.info({ container: c.name, order: containerOrder(c) }, 'stopping container for a consistent copy');
      await noteStopped(c);
      await docker.stopContainer(c.id, timeoutSeconds).catch(async (err: unknown) => {
        await noteRestarted(c.id); // not stopped: nothing to restart
        throw err;
      });
      stopped.push(c);
    }
  } catch (err) {
    await restart().catch((e: unknown) => log.error({ err: String(e) }, 'restart after failed stop'));
    throw err;
  }
  return { stopped: stopped.map((c) => c.name), restart };
}
