// The CQL a restore runs as superuser comes from the backup (the manifest's keyspace and
// type statements, each table's schema.cql in the archive): data, not instructions. Each
// statement must be one of the few kinds a schema needs, for exactly the keyspace and
// table being restored: CREATE KEYSPACE <ks>, CREATE TYPE <ks>.<type>, CREATE TABLE
// <ks>.<table>, ALTER TABLE <ks>.<table> ADD/DROP (dropped columns), CREATE [CUSTOM]
// INDEX ... ON <ks>.<table>. Anything else (DROP, CREATE ROLE, GRANT, a function, another
// keyspace's table...) is refused before the first statement runs.
import { RefusedError } from '../../agent/plugin/index.ts';
import { splitStatements } from './cql.ts';
import { KEYSPACE, TABLE } from './names.ts';
import { SYSTEM_KEYSPACES } from './options.ts';

/** A statement of the backup's schema that a restore must not run; nothing was changed. */
export class UnsafeSchemaError extends RefusedError {}

const ID = String.raw`([A-Za-z0-9_]+|"(?:[^"]|"")+")`;
const INE = String.raw`(?:IF\s+NOT\s+EXISTS\s+)?`;
const FORMS = {
  keyspace: new RegExp(String.raw`^CREATE\s+KEYSPACE\s+${INE}${ID}\s+WITH\s`, 'i'),
  type: new RegExp(String.raw`^CREATE\s+TYPE\s+${INE}${ID}\s*\.\s*${ID}\s*\(`, 'i'),
  table: new RegExp(String.raw`^CREATE\s+TABLE\s+${INE}${ID}\s*\.\s*${ID}\s*\(`, 'i'),
  alter: new RegExp(String.raw`^ALTER\s+TABLE\s+${ID}\s*\.\s*${ID}\s+(?:ADD|DROP)\s`, 'i'),
  index: new RegExp(String.raw`^CREATE\s+(?:CUSTOM\s+)?INDEX\s+${INE}(?:${ID}\s+)?ON\s+${ID}\s*\.\s*${ID}\s*\(`, 'i'),
};

/** An identifier as Cassandra reads it: unquoted ones are case-insensitive. */
function ident(text: string): string {
  return text.startsWith('"') ? text.slice(1, -1).replaceAll('""', '"') : text.toLowerCase();
}

const same = (id: string | undefined, name: string) => id !== undefined && ident(id) === name;

function refuse(what: string, statement: string): never {
  const shown = statement.replace(/\s+/g, ' ').slice(0, 120);
  throw new UnsafeSchemaError(`the backup's schema ${what}: "${shown}"; no statement was run`, 'the stored schema was altered, or not written by snapagent: restore the schema by hand, then restore again');
}

/** Keyspace and table names the manifest lists: plain names, no system keyspace. */
export function checkNames(backed: Record<string, { tables: Record<string, unknown> }>): void {
  for (const [ks, v] of Object.entries(backed)) {
    if (!KEYSPACE.test(ks) || SYSTEM_KEYSPACES.includes(ks.toLowerCase())) throw new UnsafeSchemaError(`the backup lists keyspace "${ks.slice(0, 60)}", which a restore never writes; nothing was changed`);
    for (const t of Object.keys(v.tables ?? {})) if (!TABLE.test(t)) throw new UnsafeSchemaError(`the backup lists table "${ks}.${t.slice(0, 60)}", not a plain table name; nothing was changed`);
  }
}

/** The keyspace's statement: exactly one CREATE KEYSPACE of that keyspace. */
export function checkKeyspaceCql(ks: string, cql: string): string {
  const all = splitStatements(cql);
  if (all.length !== 1) refuse(`of keyspace ${ks} holds ${all.length} statements, not one CREATE KEYSPACE`, all[1] ?? cql);
  const m = FORMS.keyspace.exec(all[0]!);
  if (!m || !same(m[1], ks)) refuse(`of keyspace ${ks} is not a CREATE KEYSPACE ${ks}`, all[0]!);
  return all[0]!;
}

/** One user type's statement: exactly one CREATE TYPE in that keyspace. */
export function checkTypeCql(ks: string, cql: string): string {
  const all = splitStatements(cql);
  const m = all.length === 1 ? FORMS.type.exec(all[0]!) : null;
  if (!m || !same(m[1], ks)) refuse(`has a type statement of keyspace ${ks} that is not one CREATE TYPE ${ks}.<name>`, all[all.length === 1 ? 0 : 1] ?? cql);
  return all[0]!;
}

/** A table's schema.cql: its CREATE TABLE, with the types, dropped columns and indexes of
 * that table only. Returns the statements to run, in order. */
export function checkTableCql(ks: string, table: string, text: string): string[] {
  const all = splitStatements(text);
  let created = false;
  for (const s of all) {
    let m: RegExpExecArray | null;
    if ((m = FORMS.table.exec(s))) {
      if (!same(m[1], ks) || !same(m[2], table)) refuse(`of table ${ks}.${table} creates another table`, s);
      created = true;
    } else if ((m = FORMS.type.exec(s))) {
      if (!same(m[1], ks)) refuse(`of table ${ks}.${table} creates a type in another keyspace`, s);
    } else if ((m = FORMS.alter.exec(s)) || (m = FORMS.index.exec(s))) {
      const [k, t] = m.slice(-2);
      if (!same(k, ks) || !same(t, table)) refuse(`of table ${ks}.${table} alters another table`, s);
    } else {
      refuse(`of table ${ks}.${table} holds a statement a restore never runs`, s);
    }
  }
  if (!created) refuse(`of table ${ks}.${table} holds no CREATE TABLE for it`, text);
  return all;
}
