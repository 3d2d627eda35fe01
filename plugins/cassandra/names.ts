// Keyspace and table names (and table ids) read from the node's system_schema or from a
// backup's manifest, checked before they reach nodetool, the scripts' arguments or a
// path on the node (agent/plugin/names.ts says why). Cassandra's own rule: letters,
// digits and "_" only (Java's \w), keyspaces up to 48 characters, tables up to 222
// (CASSANDRA-20389; 4.0-5.0 set no length limit of their own). A file of a table's
// snapshot: an SSTable component ("nb-1-big-Data.db", "da-3gl2_0txw_...-bti-Data.db",
// SAI components with "+"), manifest.json or schema.cql, or one of a legacy secondary
// index's, one level down in ".<index name>/".
import { checkName, type CheckOptions, patternRule } from '../../agent/plugin/index.ts';

export const KEYSPACE = /^[A-Za-z0-9_]{1,48}$/;
export const TABLE = /^[A-Za-z0-9_]{1,222}$/;
export const FILE = /^(?:\.[A-Za-z0-9_]{1,222}\/)?[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$/;
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const keyspaceRule = patternRule(KEYSPACE, 'Cassandra allows letters, digits and "_" (at most 48) in a keyspace name');
const tableRule = patternRule(TABLE, 'Cassandra allows letters, digits and "_" (at most 222) in a table name');
const idRule = patternRule(ID, 'a table id is a lowercase UUID');
const fileRule = patternRule(FILE, 'a file of a snapshot is named with letters, digits, "_", ".", "+" and "-" (in a ".<index>/" dir at most)');

const BACKUP = 'leave it out with options.keyspaces or options.tables';
const RESTORE = 'this backup was not written by a Cassandra node snapagent trusts: restore another backup';

export function checkTables(tables: { keyspace: string; table: string; id?: string }[], keyspaces: string[], where: string, restore = false): void {
  const o = (rule: typeof keyspaceRule): CheckOptions => ({ rules: [rule], hint: restore ? RESTORE : BACKUP });
  for (const ks of keyspaces) checkName('keyspace', ks, where, o(keyspaceRule));
  for (const t of tables) {
    checkName('keyspace', t.keyspace, where, o(keyspaceRule));
    checkName('table', t.table, `keyspace ${t.keyspace} in ${where}`, o(tableRule));
    if (t.id !== undefined) checkName(`id of table ${t.keyspace}.${t.table}`, t.id, where, o(idRule));
  }
}

/** A file of a table's snapshot, relative to it (names.ts FILE). */
export function checkFile(name: string, where: string, restore = false): void {
  checkName('file', name, where, { rules: [fileRule], hint: restore ? RESTORE : 'the snapshot holds a file Cassandra does not write; remove it from the node, or leave the table out with options.keyspaces or options.tables' });
}
