// A real MariaDB server in a container (snapagent-test/mariadb, official-image
// conventions) on 127.0.0.1 with a port of its own, and a SQL helper that passes the
// password through the environment, never on a command line.
import { docker, removeContainer, removeVolume, uniq } from './harness.ts';
import { waitForServer } from './wait.ts';

export const MARIADB_IMAGE = 'snapagent-test/mariadb:latest';

export interface MariaDb {
  name: string;
  volume: string;
  port: number;
  password: string;
  sql(query: string, db?: string): Promise<string>;
  remove(): Promise<void>;
}

export async function startMariaDb(password: string, env: string[] = [], image = MARIADB_IMAGE): Promise<MariaDb> {
  const name = uniq('sa-mdb');
  const volume = `${name}-data`;
  const port = 33000 + Math.floor(Math.random() * 2000);
  await docker('run', '-d', '--name', name, '--network', 'host', '-e', `MARIADB_ROOT_PASSWORD=${password}`, ...env.flatMap((e) => ['-e', e]), '-v', `${volume}:/var/lib/mysql`, image, `--port=${port}`, '--bind-address=127.0.0.1');
  const sql = sqlIn(docker, name, password);
  await waitForServer(name, 'MariaDB', () => sql('SELECT 1'), { timeoutMs: 90_000 });
  return {
    name,
    volume,
    port,
    password,
    sql,
    remove: async () => {
      await removeContainer(name);
      await removeVolume(volume);
    },
  };
}

/** SQL as root in a MariaDB container of engine `d` (mariadb -N -B: tab-separated rows);
 * the password goes through the environment, never a command line. */
export function sqlIn(d: (...args: string[]) => Promise<string>, container: string, password: string): (query: string, db?: string) => Promise<string> {
  return (query, db) => d('exec', '-e', `MYSQL_PWD=${password}`, container, 'mariadb', '-uroot', '-N', '-B', ...(db ? [db] : []), '-e', query);
}
