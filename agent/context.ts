// What the core needs from whoever drives it — the CLI, the daemon, a test — as one plain
// object: the config, the Docker client, the plugins this agent has, progress output and
// the cancellation signal. No CLI types (options, --json) reach the core.
import type { Config } from './config/load.ts';
import type { DockerClient } from './docker/client.ts';
import type { Progress } from './pipeline/progress.ts';
import type { PluginRegistry } from './plugin/contract.ts';

export interface Context {
  config: Config;
  docker: DockerClient;
  registry: PluginRegistry;
  progress: Progress;
  signal: AbortSignal;
}

/** The part of a Context that reading catalogs, planning and reporting need: no Docker. */
export type ConfigContext = Pick<Context, 'config' | 'registry'>;
