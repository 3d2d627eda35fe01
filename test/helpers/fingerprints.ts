// Comparable fingerprints of the data in each kind of store, taken before a backup and
// after its restore: equal fingerprints mean the data came back. Volume trees come from
// tree.ts (re-exported here); the datastores are read through their own clients.
import { createHash } from 'node:crypto';
import type { Client as EsClient } from '@elastic/elasticsearch';
import type cassandra from 'cassandra-driver';
import { BSON, type MongoClient } from 'mongodb';
import { tableDigest } from './cassandra.ts';

export { snapshot, type Snapshot } from './tree.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Runs one SQL statement, returning mariadb's batch output (-N -B: tab-separated rows). */
export type Sql = (query: string) => Promise<string>;

export interface MariaDbFingerprintOptions {
  /** Schemas whose routines, triggers, events and views are part of the fingerprint. */
  schemas?: string[];
  /** More queries whose output is part of it (e.g. a view's rows, a BLOB as HEX). */
  queries?: string[];
}

/** Row counts and `CHECKSUM TABLE ... EXTENDED` of `tables` ("db.table"), and the
 * schemas' other objects. */
export async function mariadbFingerprint(sql: Sql, tables: string[], opts: MariaDbFingerprintOptions = {}): Promise<string> {
  const out = [
    await sql(`SELECT ${tables.map((t) => `(SELECT COUNT(*) FROM ${t})`).join(', ')}`),
    await sql(`CHECKSUM TABLE ${tables.join(', ')} EXTENDED`),
  ];
  for (const s of opts.schemas ?? []) {
    out.push(
      await sql(`SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '${s}' ORDER BY 1`),
      await sql(`SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '${s}' ORDER BY 1`),
      await sql(`SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '${s}' ORDER BY 1`),
      await sql(`SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '${s}' ORDER BY 1`),
    );
  }
  for (const q of opts.queries ?? []) out.push(await sql(q));
  return out.join('\n');
}

export interface MongoFingerprintOptions {
  /** Read namespace N from `rename[N]` instead (a restore under another name). */
  rename?: Record<string, string>;
  /** Only these documents (in _id order) instead of a digest of all of them. */
  sample?: { skip: number; limit: number };
  /** Namespaces whose documents are compared without their _id (ids the server makes). */
  withoutIds?: string[];
}

/** Per namespace ("db.collection"): the document count, the indexes (name, key,
 * unique) and the documents in _id order, as canonical Extended JSON (hashed unless
 * `sample`). */
export async function mongoFingerprint(client: MongoClient, namespaces: string[], opts: MongoFingerprintOptions = {}): Promise<string> {
  const out: string[] = [];
  for (const ns of namespaces) {
    const [db, coll] = (opts.rename?.[ns] ?? ns).split(/\.(.*)/s) as [string, string];
    const c = client.db(db).collection(coll);
    const indexes = (await c.listIndexes().toArray()).map((i) => `${i.name}${i.unique ? '!' : ''}:${JSON.stringify(i.key)}`).sort();
    const cursor = c.find({}, { sort: { _id: 1 } });
    if (opts.sample) cursor.skip(opts.sample.skip).limit(opts.sample.limit);
    const docs = (await cursor.toArray()).map((d) => (opts.withoutIds?.includes(ns) ? { ...d, _id: undefined } : d));
    const text = BSON.EJSON.stringify(docs, { relaxed: false });
    out.push(`${ns} ${await c.countDocuments({})} ${indexes.join(',')} ${opts.sample ? text : sha(text)}`);
  }
  return out.join('\n');
}

export interface EsFingerprintOptions {
  /** Aliases whose indices are part of the fingerprint. */
  aliases?: string[];
  /** Hash the documents' sources too, not only their ids (default true). */
  sources?: boolean;
  /** More counts, by name: documents of `index` matching `query` (e.g. a nested query). */
  counts?: Record<string, { index: string; query: Record<string, unknown> }>;
}

/** Per index: the document count, the mappings and a digest of every document (id and
 * source, in id order); the `counts`; and the indices behind `aliases`. */
export async function esFingerprint(client: EsClient, indices: string[], opts: EsFingerprintOptions = {}): Promise<Record<string, unknown>> {
  await client.indices.refresh({ index: indices.join(',') });
  const out: Record<string, unknown> = {};
  for (const index of indices) {
    const docs: [string, unknown][] = [];
    for await (const page of client.helpers.scrollSearch<Record<string, unknown>>({ index, size: 5000, query: { match_all: {} } })) {
      for (const h of page.body.hits.hits) docs.push([h._id!, opts.sources === false ? null : h._source]);
    }
    docs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    out[index] = {
      count: (await client.count({ index })).count,
      mappings: (await client.indices.getMapping({ index }))[index]?.mappings,
      docs: `${docs.length} ${sha(JSON.stringify(docs))}`,
    };
  }
  for (const [name, c] of Object.entries(opts.counts ?? {})) out[`count ${name}`] = (await client.count({ index: c.index, query: c.query })).count;
  for (const name of opts.aliases ?? []) out[`alias ${name}`] = Object.keys(await client.indices.getAlias({ name }).catch(() => ({}))).sort();
  return out;
}

/** Per table ("ks.table"): the row count and a digest of every row (helpers/cassandra.ts). */
export async function cassandraFingerprint(client: cassandra.Client, tables: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of tables) out[t] = await tableDigest(client, t);
  return out;
}
