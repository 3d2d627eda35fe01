// Database and table names read from the server or from a backup's manifest, checked
// before they reach mariadb-dump's command line or the dump's markers (agent/plugin/
// names.ts says why). MariaDB itself limits identifiers to 64 characters.
import { checkName, type CheckOptions, maxLength } from '../../agent/plugin/index.ts';

const BACKUP: CheckOptions = { rules: [maxLength(64)], hint: 'rename it (RENAME TABLE, or a new database), or leave its database out with options.databases' };
const RESTORE: CheckOptions = { rules: [maxLength(64)], hint: 'this backup was not written by a MariaDB server snapagent trusts: restore another backup' };

/** Every database and table name of `stats` (database -> table -> ...), checked. */
export function checkDumpNames(stats: Record<string, Record<string, unknown>>, where: string, restore = false): void {
  const o = restore ? RESTORE : BACKUP;
  for (const [db, tables] of Object.entries(stats)) {
    checkName('database', db, where, o);
    for (const t of Object.keys(tables)) checkName('table', t, `database ${JSON.stringify(db)} in ${where}`, o);
  }
}

export function checkDatabase(name: string, where: string): string {
  return checkName('database', name, where, BACKUP);
}
