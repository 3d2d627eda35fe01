// The host's compose stack during a whole-host restore: `restore --all` starts it
// (`compose up -d`: the apps on their restored volumes, the datastores empty) between
// the volume and the datastore phases, and every datastore restore waits for its
// container to run and pass its healthcheck first.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ComposeConfig } from '../config/schema.ts';
import type { DockerClient } from '../docker/client.ts';
import { SnapError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** The compose command: the configured one, else `docker-compose` (v1, Debian's
 * package) when installed, else the `docker compose` plugin (v2). */
async function composeCommand(c: ComposeConfig): Promise<string[]> {
  if (c.command) return c.command;
  const { execa } = await import('execa'); // loaded only when a restore starts the stack
  const v1 = await execa('docker-compose', ['version', '--short'], { reject: false });
  return v1.failed ? ['docker', 'compose'] : ['docker-compose'];
}

/** `compose -f FILE [-p P] [--env-file F] up -d` against the agent's Docker Engine
 * (docker.socket, else $DOCKER_HOST). Compose leaves running, unchanged containers alone
 * and adopts volumes restored with their compose labels. */
export async function startStack(c: ComposeConfig, socket: string | undefined, log: Logger, signal: AbortSignal): Promise<void> {
  const [cmd, ...pre] = await composeCommand(c);
  const args = [...pre, '-f', c.file, ...(c.project ? ['-p', c.project] : []), ...(c.env_file ? ['--env-file', c.env_file] : []), 'up', '-d'];
  const shown = [cmd, ...args].join(' ');
  log.info({ command: shown }, 'starting the stack');
  const { execa } = await import('execa');
  const res = await execa(cmd!, args, { reject: false, all: true, cancelSignal: signal, env: socket ? { DOCKER_HOST: `unix://${socket}` } : {} });
  if (res.failed) {
    const why = res.code === 'ENOENT' ? `${cmd} is not installed` : String(res.all ?? '').trim().split('\n').slice(-3).join('; ') || `exit code ${res.exitCode}`;
    throw new SnapError(`starting the stack failed (${shown}): ${why}`, {
      hint: res.code === 'ENOENT' ? 'install docker-compose (make deps) or set compose.command' : 'fix the compose file or its env file (config key compose), or start the stack yourself and restore again',
    });
  }
}

/** Waits while the container is being created, restarting, or running with a
 * healthcheck still "starting" (not passed yet). A missing or stopped container, or an
 * "unhealthy" one, returns at once: the plugin tries, and its error says what to do. */
export async function waitReady(docker: DockerClient, container: string, seconds: number, log: Logger, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  let told = false;
  for (;;) {
    const c = await docker.inspectContainer(container);
    if (!c) return;
    const starting = c.state === 'created' || c.state === 'restarting' || (c.running && c.health === 'starting');
    if (!starting) {
      if (c.health === 'unhealthy') log.warn({ container }, 'the container\'s healthcheck fails: restoring anyway');
      else if (told) log.info({ container }, 'container ready');
      return;
    }
    if (Date.now() > deadline) {
      throw new SnapError(`container ${container} is not ready after ${seconds} s (${c.running ? `health: ${c.health}` : c.state})`, {
        hint: `check \`docker logs ${container}\` and its healthcheck; compose.wait_seconds sets how long restore waits`,
      });
    }
    if (!told) log.info({ container, state: c.state, health: c.health }, 'waiting for the container to be ready');
    told = true;
    await sleep(1000, undefined, { signal });
  }
}
