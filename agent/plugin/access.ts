// Zero-configuration access to a datastore container that follows its official
// image's conventions, shared by the datastore plugins: secrets from the job's options
// (an env var or a file of the agent's host) or else from the container's own env
// (VAR, or VAR_FILE read inside the container, Docker-secrets style); the endpoint the
// agent reaches from its network mode, server arguments or published ports; small
// commands and private files inside the container. Every secret found is registered
// for redaction before it is returned.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ContainerDetails } from '../docker/client.ts';
import { SnapError } from '../errors.ts';
import { registerSecret, runId } from '../log.ts';
import type { PluginContext } from './contract.ts';

/** The job options every datastore plugin accepts for a secret. */
export interface SecretOptions {
  password_env?: string;
  password_file?: string;
}

/** The secret the job's options name (password_env / password_file), if any. */
export async function secretFromOptions(o: SecretOptions): Promise<string | undefined> {
  let value: string | undefined;
  if (o.password_env) {
    value = process.env[o.password_env];
    if (value === undefined) throw new SnapError(`options.password_env: the agent's environment has no ${o.password_env}`);
  } else if (o.password_file) {
    const text = await readFile(o.password_file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new SnapError(`options.password_file: cannot read ${o.password_file} (${err.code})`);
    });
    value = text.replace(/\r?\n$/, '');
  }
  if (value !== undefined) registerSecret(value);
  return value;
}

/** The job's options without how to reach and log in to the live server, for a restore
 * into another one (a drill server): that server's own conventions apply. */
export function withoutConnection<O extends SecretOptions & { user?: string; host?: string; port?: number }>(o: O): O {
  return { ...o, user: undefined, password_env: undefined, password_file: undefined, host: undefined, port: undefined };
}

/** A fresh random password (for a drill server), registered for redaction. */
export function freshPassword(): string {
  const value = randomBytes(18).toString('base64url');
  registerSecret(value);
  return value;
}

/** The first of `names` the container sets, as NAME or NAME_FILE (read inside the
 * container); undefined when none is set. Registered for redaction unless `secret` is
 * false (a user name, which error messages must still show). */
export async function containerSecret(ctx: PluginContext, c: ContainerDetails, names: string[], secret = true): Promise<{ value: string; from: string } | undefined> {
  for (const name of names) {
    let value = c.env[name];
    let from = name;
    const file = c.env[`${name}_FILE`];
    if (value === undefined && file) {
      const res = await runIn(ctx, c.name, ['cat', '--', file]);
      if (res.exitCode !== 0) throw new SnapError(`container ${c.name}: cannot read ${file} (from ${name}_FILE): ${res.stderr.trim() || `exit ${res.exitCode}`}`);
      value = res.stdout.replace(/\r?\n$/, '');
      from = `${name}_FILE`;
    }
    if (value !== undefined) {
      if (secret) registerSecret(value);
      return { value, from };
    }
  }
  return undefined;
}

/** The value of a server argument: `--name=V`, `--name V`, or an alias like `-P V`. */
export function argValue(c: ContainerDetails, names: string[]): string | undefined {
  for (let i = 0; i < c.args.length; i++) {
    const a = c.args[i]!;
    for (const n of names) {
      if (n.startsWith('--') && a.startsWith(`${n}=`)) return a.slice(n.length + 1);
      if (a === n && i + 1 < c.args.length) return c.args[i + 1];
    }
  }
  return undefined;
}

export interface Endpoint {
  host: string;
  port: number;
}

/** Where the agent reaches the server that listens on `port` inside the container:
 * options host/port when given; 127.0.0.1:port on the host network; else the port
 * published on the host. */
export function endpoint(c: ContainerDetails, o: { host?: string; port?: number }, port: number, what: string): Endpoint {
  if (o.host || o.port) return { host: o.host ?? '127.0.0.1', port: o.port ?? port };
  if (c.networkMode === 'host') return { host: '127.0.0.1', port };
  const published = c.published[`${port}/tcp`];
  if (published) return { host: '127.0.0.1', port: published };
  throw new SnapError(`container ${c.name}: its ${what} port ${port} is neither on the host network nor published`, {
    hint: `publish the port (e.g. -p 127.0.0.1:${port}:${port}) or set options.host and options.port`,
  });
}

/** The running container named by a job; a clear error when it is missing or stopped. */
export async function runningContainer(ctx: PluginContext, name: string | undefined, what: string, plugin: string): Promise<ContainerDetails> {
  if (!name) throw new SnapError(`${what}: the ${plugin} plugin needs "container"`);
  const c = await ctx.docker.inspectContainer(name);
  if (!c) throw new SnapError(`${what}: container "${name}" does not exist`, { hint: 'check `docker ps -a`, or fix the job\'s "container" key' });
  if (!c.running) throw new SnapError(`${what}: container "${name}" is not running (${c.state})`, { hint: `start it: docker start ${name}` });
  return c;
}

/** Runs a short command in the container and collects its output. */
export async function runIn(ctx: PluginContext, container: string, cmd: string[], input?: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const run = await ctx.docker.exec(container, { cmd, stdin: input !== undefined });
  let stdout = '';
  run.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  if (input !== undefined) run.stdin!.end(input);
  const res = await run.done;
  return { exitCode: res.exitCode, stdout, stderr: res.stderr };
}

/** Writes `content` to a fresh 0600 file in the container's /tmp (through stdin, never
 * a command line) and returns its path there; the tool that reads it removes it. Named
 * after the run, like the named pipes, so that the repair after a killed run removes it
 * too (agent/runtime/recovery.ts): a tool killed before it ran leaves it behind. */
export async function writePrivateFile(ctx: PluginContext, container: string, content: string, suffix = ''): Promise<string> {
  const res = await runIn(ctx, container, ['sh', '-c', `umask 077; f=$(mktemp /tmp/snapagent-${runId}-XXXXXX${suffix}) && cat > "$f" && echo "$f"`], content);
  const file = res.stdout.trim();
  if (res.exitCode !== 0 || !file.startsWith('/tmp/')) throw new SnapError(`cannot write a private file in container ${container}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
  return file;
}

/** The last lines of a tool's stderr, for an error message. */
export function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join('; ') || 'no message';
}
