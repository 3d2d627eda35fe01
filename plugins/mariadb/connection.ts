// Zero-configuration access to a MariaDB/MySQL container that follows the official
// images' conventions: credentials from its own MARIADB_*/MYSQL_* env (or *_FILE,
// read inside the container), the TCP endpoint from its network mode, --port argument
// or published port. Every piece can be overridden in the job's options.
import { readFile } from 'node:fs/promises';
import type { ContainerDetails } from '../../agent/docker/client.ts';
import { SnapError } from '../../agent/errors.ts';
import { registerSecret } from '../../agent/log.ts';
import type { PluginContext } from '../../agent/plugin.ts';
import type { MariadbOptions } from './options.ts';
import { runIn } from './exec.ts';

export interface Credentials {
  user: string;
  password: string;
}

export interface Endpoint {
  host: string;
  port: number;
}

function envOf(c: ContainerDetails, name: string): string | undefined {
  return c.env[`MARIADB_${name}`] ?? c.env[`MYSQL_${name}`];
}

export async function credentials(ctx: PluginContext, c: ContainerDetails, o: MariadbOptions): Promise<Credentials> {
  const user = o.user ?? 'root';
  let password: string | undefined;
  if (o.password_env) {
    password = process.env[o.password_env];
    if (password === undefined) throw new SnapError(`options.password_env: the agent's environment has no ${o.password_env}`);
  } else if (o.password_file) {
    password = (await readFile(o.password_file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new SnapError(`options.password_file: cannot read ${o.password_file} (${err.code})`);
    })).replace(/\r?\n$/, '');
  } else {
    const kind = user === 'root' ? 'ROOT_PASSWORD' : 'PASSWORD';
    if (user !== 'root' && envOf(c, 'USER') !== user) {
      throw new SnapError(`container ${c.name}: no password known for user "${user}"`, { hint: 'set options.password_env or options.password_file' });
    }
    password = envOf(c, kind);
    const file = envOf(c, `${kind}_FILE`);
    if (password === undefined && file) {
      const res = await runIn(ctx, c.name, ['cat', '--', file]);
      if (res.exitCode !== 0) throw new SnapError(`container ${c.name}: cannot read ${file} (from MARIADB_${kind}_FILE)`);
      password = res.stdout.replace(/\r?\n$/, '');
    }
    if (password === undefined && user === 'root' && envOf(c, 'ALLOW_EMPTY_ROOT_PASSWORD')) password = '';
    if (password === undefined) {
      throw new SnapError(`container ${c.name}: no MARIADB_ROOT_PASSWORD(_FILE) or MYSQL_ROOT_PASSWORD(_FILE) in its environment`, {
        hint: 'set options.password_env (a variable of the agent) or options.password_file for the job',
      });
    }
  }
  registerSecret(password);
  return { user, password };
}

/** The server's --port (or -P) argument, if the container passes one. */
export function portArg(c: ContainerDetails): number | undefined {
  for (let i = 0; i < c.args.length; i++) {
    const a = c.args[i]!;
    const m = /^--port=(\d+)$/.exec(a) ?? (a === '--port' || a === '-P' ? /^(\d+)$/.exec(c.args[i + 1] ?? '') : null);
    if (m) return Number(m[1]);
  }
  return undefined;
}

export function endpoint(c: ContainerDetails, o: MariadbOptions): Endpoint {
  if (o.host || o.port) return { host: o.host ?? '127.0.0.1', port: o.port ?? 3306 };
  const port = portArg(c) ?? 3306;
  if (c.networkMode === 'host') return { host: '127.0.0.1', port };
  const published = c.published[`${port}/tcp`];
  if (published) return { host: '127.0.0.1', port: published };
  throw new SnapError(`container ${c.name}: its port ${port} is neither on the host network nor published`, {
    hint: 'publish the port (e.g. -p 127.0.0.1:3306:3306) or set options.host and options.port',
  });
}

/** A MySQL option file for the tools inside the container (written there, 0600). */
export function optionFile(cred: Credentials, c: ContainerDetails): string {
  const q = (v: string) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  const socket = c.args.find((a) => a.startsWith('--socket='))?.slice('--socket='.length);
  return ['[client]', `user=${q(cred.user)}`, `password=${q(cred.password)}`, ...(socket ? [`socket=${q(socket)}`] : []), ''].join('\n');
}
