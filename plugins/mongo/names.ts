// Database and collection names read from the server (listDatabases) or from the archive
// mongodump wrote, checked before a backup commits (agent/plugin/names.ts says why).
// The agent passes names to mongodump/mongorestore only inside single "--opt=value"
// arguments, so none can become an option; refusing them here keeps every stored name
// one that an operator can also hand to the tools (--database, --collection) safely.
// MongoDB's own rules: database names hold none of / \ . " $ space and are under 64
// bytes; collection names hold no "$".
import { checkName, type CheckOptions, type NameRule } from '../../agent/plugin/index.ts';

const database: NameRule = (n) => (/[/\\. "$]/.test(n) ? 'MongoDB allows none of / \\ . " $ or a space in a database name' : Buffer.byteLength(n) > 63 ? 'it is longer than 63 bytes' : undefined);
const collection: NameRule = (n) => (n.includes('$') ? 'MongoDB allows no "$" in a collection name' : undefined);

const HINT = 'rename it (renameCollection, or copy the database), or back up the other databases with one job each (options.database) and options.exclude_collections';

export function checkDatabase(name: string, where: string): string {
  return checkName('database', name, where, { rules: [database], hint: HINT } satisfies CheckOptions);
}

/** Every database and collection of the archive's figures; the oplog ("" / "oplog") is
 * not a namespace of the data. */
export function checkArchiveNames(stats: Record<string, Record<string, unknown>>, where: string): void {
  for (const [db, colls] of Object.entries(stats)) {
    checkDatabase(db, where);
    for (const c of Object.keys(colls)) checkName('collection', c, `database ${JSON.stringify(db)} in ${where}`, { rules: [collection], hint: HINT });
  }
}
