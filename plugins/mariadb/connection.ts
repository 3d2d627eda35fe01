// Zero-configuration access to a MariaDB/MySQL container that follows the official
// images' conventions: credentials from its own MARIADB_*/MYSQL_* env (or *_FILE,
// read inside the container), the TCP endpoint from its network mode, --port argument
// or published port. Every piece can be overridden in the job's options.
import { argValue, type ContainerDetails, containerSecret, type Endpoint, endpoint as reach, type PluginContext, registerSecret, secretFromOptions, SnapError } from '../../agent/plugin/index.ts';
import type { MariadbOptions } from './options.ts';

export type { Endpoint };

export interface Credentials {
  user: string;
  password: string;
}

export async function credentials(ctx: PluginContext, c: ContainerDetails, o: MariadbOptions): Promise<Credentials> {
  const user = o.user ?? 'root';
  let password = await secretFromOptions(o);
  if (password === undefined) {
    const kind = user === 'root' ? 'ROOT_PASSWORD' : 'PASSWORD';
    if (user !== 'root' && (c.env.MARIADB_USER ?? c.env.MYSQL_USER) !== user) {
      throw new SnapError(`container ${c.name}: no password known for user "${user}"`, { hint: 'set options.password_env or options.password_file' });
    }
    password = (await containerSecret(ctx, c, [`MARIADB_${kind}`, `MYSQL_${kind}`]))?.value;
    if (password === undefined && user === 'root' && (c.env.MARIADB_ALLOW_EMPTY_ROOT_PASSWORD ?? c.env.MYSQL_ALLOW_EMPTY_PASSWORD)) password = '';
    if (password === undefined) {
      throw new SnapError(`container ${c.name}: no MARIADB_ROOT_PASSWORD(_FILE) or MYSQL_ROOT_PASSWORD(_FILE) in its environment`, {
        hint: 'set options.password_env (a variable of the agent) or options.password_file for the job',
      });
    }
  }
  registerSecret(password);
  return { user, password };
}

export function endpoint(c: ContainerDetails, o: MariadbOptions): Endpoint {
  const port = Number(argValue(c, ['--port', '-P']) ?? 3306);
  return reach(c, o, port, 'MariaDB');
}

/** A MySQL option file for the tools inside the container (written there, 0600). */
export function optionFile(cred: Credentials, c: ContainerDetails): string {
  const q = (v: string) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  const socket = c.args.find((a) => a.startsWith('--socket='))?.slice('--socket='.length);
  return ['[client]', `user=${q(cred.user)}`, `password=${q(cred.password)}`, ...(socket ? [`socket=${q(socket)}`] : []), ''].join('\n');
}
