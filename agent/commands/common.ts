// What every command shares: options, config + Docker set-up, output and exit codes.
// The CLI's wiring: the one place that picks the plugins (plugins/index.ts) and hands
// them to the core in a Context.
import { loadConfig } from '../config/load.ts';
import type { Context } from '../context.ts';
import { prepareStateDir } from '../config/state-dir.ts';
import { closeSync, constants, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { connectDocker, type Transfer } from '../docker/client.ts';
import { ExitCode, SnapError } from '../errors.ts';
import { log, redact, redactedJson, registerEnvSecrets } from '../log.ts';
import { makeProgress } from '../pipeline/progress.ts';
import type { PluginRegistry } from '../plugin/contract.ts';
import { plugins } from '../../plugins/index.ts';

export interface GlobalOptions {
  config?: string;
  json?: boolean;
}

/** The plugins this agent has. */
export const registry: PluginRegistry = plugins;

/** A command's Context, and how it prints its result. Commands pass it to the core as
 * the Context it is; the core never sees `json`. */
export interface Session extends Context {
  json: boolean;
}

const controller = new AbortController();
let interrupted = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    log.warn({ signal: sig }, `${sig}: cancelling; partial backups are removed and stopped containers restarted (press again to quit at once)`);
    controller.abort(new SnapError(`cancelled by ${sig}`));
  });
}

// "auto" uses named pipes when dockerd sees our state dir at the same path: it runs in
// our PID namespace and /proc/<dockerd>/root<dir> is the very same directory. An agent
// in a container (or without permission to look) falls back to the Docker API.
function transferMode(t: 'auto' | 'fifo' | 'attach', pipeDir: string): Transfer {
  if (t !== 'auto') return t;
  try {
    mkdirSync(pipeDir, { recursive: true, mode: 0o700 });
    const real = realpathSync(pipeDir);
    const mine = statSync(real);
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let comm = '';
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      if (comm === 'dockerd' && sameDirIn(pid, real, mine)) return 'fifo';
    }
  } catch {
    // not visible or not permitted: the API path always works
  }
  return 'attach';
}

// Whether `dir`, walked from the root of process `pid` one component at a time without
// following a link, is the directory `mine`. Any process may call itself "dockerd" (one
// in a container too): a link in its filesystem must not lead the walk to a host path.
function sameDirIn(pid: string, dir: string, mine: Stats): boolean {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/root`, constants.O_RDONLY | constants.O_DIRECTORY); // procfs's magic link: followed on purpose
  } catch {
    return false;
  }
  try {
    for (const part of dir.split('/').filter(Boolean)) {
      const next = openSync(`/proc/${process.pid}/fd/${fd}/${part}`, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      closeSync(fd);
      fd = next;
    }
    const theirs = fstatSync(fd);
    return theirs.dev === mine.dev && theirs.ino === mine.ino;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

export function openSession(opts: GlobalOptions): Session {
  registerEnvSecrets();
  const config = loadConfig(opts.config);
  prepareStateDir(config.stateDir, process.getuid!());
  const json = Boolean(opts.json);
  const pipeDir = path.join(config.stateDir, 'pipes');
  return {
    config,
    docker: connectDocker({ socket: config.docker.socket, transfer: transferMode(config.docker.transfer, pipeDir), pipeDir }),
    registry,
    progress: makeProgress(!json && Boolean(process.stderr.isTTY)),
    json,
    signal: controller.signal,
  };
}

/** Prints the command's result: one JSON document with --json, else the human text;
 * registered secrets redacted from both. */
export function output(json: boolean, doc: unknown, human: () => string): void {
  if (json) process.stdout.write(redactedJson(doc));
  else {
    const text = redact(human());
    if (text) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function setExit(code: number): void {
  if (code > (process.exitCode as number | undefined ?? 0)) process.exitCode = code;
}

export { ExitCode };
