// A real MariaDB server in a container (snapagent-test/mariadb, official-image
// conventions) on 127.0.0.1 with a port of its own, and a SQL helper that passes the
// password through the environment, never on a command line.
import { docker, removeContainer, removeVolume, uniq } from './harness.ts';

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
  const sql = (query: string, db?: string) => docker('exec', '-e', `MYSQL_PWD=${password}`, name, 'mariadb', '-uroot', '-N', '-B', ...(db ? [db] : []), '-e', query);
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      await sql('SELECT 1');
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`MariaDB in ${name} did not start: ${(err as Error).message}\n${await docker('logs', '--tail', '30', name).catch(() => '')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
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
