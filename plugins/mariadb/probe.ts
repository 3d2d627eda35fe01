// What the agent learns over SQL (mysql2) before dumping: the server version, the
// databases, and the tables whose engine --single-transaction cannot make consistent.
import { SnapError } from '../../agent/plugin/index.ts';
import type { Credentials, Endpoint } from './connection.ts';

export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];

export interface Probe {
  version: string;
  databases: string[];
  /** "db.table (ENGINE)" of non-transactional base tables in the chosen databases. */
  nonTransactional: string[];
}

export async function probe(ep: Endpoint, cred: Credentials, chosen?: string[]): Promise<Probe> {
  // the driver loads with the first mariadb job, not with every command
  const { default: mysql } = await import('mysql2/promise');
  let conn;
  try {
    conn = await mysql.createConnection({ host: ep.host, port: ep.port, user: cred.user, password: cred.password, connectTimeout: 10000 });
  } catch (err) {
    const e = err as { code?: string; message: string };
    const hint =
      e.code === 'ER_ACCESS_DENIED_ERROR'
        ? 'the password is wrong: check the container\'s MARIADB_ROOT_PASSWORD(_FILE) or the job\'s password_env/password_file'
        : `check that the server listens on ${ep.host}:${ep.port} (or set options.host/port)`;
    throw new SnapError(`cannot connect to MariaDB at ${ep.host}:${ep.port} as ${cred.user}: ${e.code ?? e.message}`, { hint });
  }
  try {
    const [[v]] = (await conn.query('SELECT VERSION() AS v')) as unknown as [{ v: string }[]];
    const [dbs] = (await conn.query('SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA ORDER BY 1')) as unknown as [{ s: string }[]];
    const all = dbs.map((d) => d.s);
    const databases = chosen ?? all.filter((d) => !SYSTEM_SCHEMAS.includes(d));
    const missing = databases.filter((d) => !all.includes(d));
    if (missing.length) throw new SnapError(`options.databases: no database ${missing.join(', ')} on the server (it has ${all.join(', ')})`);
    let nonTransactional: string[] = [];
    if (databases.length) {
      const [rows] = (await conn.query(
        `SELECT TABLE_SCHEMA AS d, TABLE_NAME AS t, ENGINE AS e FROM information_schema.TABLES
         WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN (?) AND ENGINE NOT IN ('InnoDB', 'XtraDB')
         ORDER BY 1, 2`,
        [databases],
      )) as unknown as [{ d: string; t: string; e: string }[]];
      nonTransactional = rows.map((r) => `${r.d}.${r.t} (${r.e})`);
    }
    return { version: v!.v, databases, nonTransactional };
  } finally {
    await conn.end().catch(() => undefined);
  }
}
