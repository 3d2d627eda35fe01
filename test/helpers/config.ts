// The tests' config files, built from a typed object (the agent's own config input type,
// agent/config/schema.ts) instead of YAML text: a typo in a key is a type error here, not
// a config error in the middle of an e2e run. The defaults are what nearly every test
// wants (one local target in the workspace, no label discovery, the state dir in the
// workspace); a test states only what is particular to it.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import type { RawConfig } from '../../agent/config/schema.ts';
import { workspace, type Workspace } from './harness.ts';

/** One job, one target, as a config states them. */
export type Job = NonNullable<RawConfig['jobs']>[number];
export type Target = NonNullable<RawConfig['targets']>[number];
/** An rclone target's settings besides its name and remote. */
export type RcloneSettings = Omit<Extract<Target, { type: 'rclone' }>, 'name' | 'type' | 'remote'>;

/** A config as the agent reads it; unset keys get the tests' defaults (see `configText`). */
export type TestConfig = RawConfig;

/** A config, or a function of the workspace (for values that name files in it). */
export type ConfigSpec = TestConfig | ((ws: Workspace) => TestConfig);

export interface ConfigWorkspace extends Workspace {
  /** The state dir (`state` in the workspace unless the config says otherwise). */
  state: string;
  /** Writes another config file into the workspace (same dir, so relative paths and the
   * default target and state are the same); returns its path. */
  variant(file: string, spec: ConfigSpec): string;
  /** Replaces the workspace's own config file. */
  rewrite(spec: ConfigSpec): void;
}

/** Retention that keeps every backup a test makes (the default keeps one a day). */
export const KEEP_EVERY_BACKUP = { critical: { schedule: '0 2 * * *', keep: { last: 100 } } } as const;

/** A volume job. */
export function volumeJob(name: string, volume: string, extra: Partial<Job> = {}): Job {
  return { name, plugin: 'volume', volume, ...extra };
}

/** A datastore job (mariadb, mongo, elasticsearch, cassandra) on a container. */
export function containerJob(name: string, plugin: string, container: string, extra: Partial<Job> = {}): Job {
  return { name, plugin, container, ...extra };
}

/** The default target, named: a local target at `ws.backups` (to list it beside others). */
export function localTarget(ws: Workspace, name = 'local'): Target {
  return { name, type: 'local', path: ws.backups };
}

/** An rclone target. */
export function rcloneTarget(name: string, remote: string, settings: RcloneSettings = {}): Target {
  return { name, type: 'rclone', remote, ...settings };
}

/** The YAML text of `spec` with the defaults for workspace `ws`: a local target named
 * "local" at `ws.backups`, label discovery off, the state dir `ws.dir/state`. */
export function configText(ws: Workspace, spec: ConfigSpec): string {
  const s = typeof spec === 'function' ? spec(ws) : spec;
  const full: TestConfig = {
    ...s,
    targets: s.targets ?? [localTarget(ws)],
    discovery: s.discovery ?? { labels: false },
    state_dir: s.state_dir ?? path.join(ws.dir, 'state'),
  };
  return stringify(full, { lineWidth: 0 });
}

/** A temp workspace holding the config `spec` (see `configText` for the defaults). */
export function config(spec: ConfigSpec = {}): ConfigWorkspace {
  const ws = workspace('');
  const write = (file: string, s: ConfigSpec) => {
    writeFileSync(file, configText(ws, s));
    return file;
  };
  write(ws.config, spec);
  const s = typeof spec === 'function' ? spec(ws) : spec;
  return {
    ...ws,
    state: s.state_dir ? path.resolve(ws.dir, s.state_dir) : path.join(ws.dir, 'state'),
    variant: (file, v) => write(path.join(ws.dir, file), v),
    rewrite: (v) => void write(ws.config, v),
  };
}

/** A one-job workspace: `config({ jobs: [job], ...rest })`. */
export function jobConfig(job: Job, rest: TestConfig = {}): ConfigWorkspace {
  return config({ ...rest, jobs: [job, ...(rest.jobs ?? [])] });
}

/** Config workspaces made along a describe, all removed by `cleanup()` (in its `after`). */
export function configs(): { add(spec: ConfigSpec): ConfigWorkspace; cleanup(): void } {
  const all: ConfigWorkspace[] = [];
  return {
    add: (spec) => {
      const ws = config(spec);
      all.push(ws);
      return ws;
    },
    cleanup: () => all.splice(0).forEach((w) => w.cleanup()),
  };
}
