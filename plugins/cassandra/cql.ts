// What the agent does over CQL (cassandra-driver), pinned to the one node the job names:
// zero-configuration credentials, the node's identity (host id, tokens, datacenter,
// rack, version), the schema of keyspaces and tables (system_schema), paged row counts,
// and running the schema statements a restore needs.
import { isIP } from 'node:net';
import type cassandra from 'cassandra-driver';
import { type ContainerDetails, containerSecret, endpoint, type Endpoint, type PluginContext, secretFromOptions, SnapError } from '../../agent/plugin/index.ts';
import { SYSTEM_KEYSPACES, type CassandraOptions } from './options.ts';

export interface Node {
  client: cassandra.Client;
  ep: Endpoint;
  /** How the agent authenticated, for logs: "none", "options", "CASSANDRA_PASSWORD"... */
  auth: string;
  close(): Promise<void>;
}

/** Quotes a CQL identifier. */
export const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** The CQL port inside the container: CASSANDRA_NATIVE_PORT when the container sets it
 * (not an official variable, but harmless to honour), else 9042. */
export function cqlEndpoint(c: ContainerDetails, o: CassandraOptions): Endpoint {
  const port = Number(c.env.CASSANDRA_NATIVE_PORT ?? 9042);
  const ep = endpoint(c, o, Number.isInteger(port) && port > 0 ? port : 9042, 'CQL');
  // On the host network, ring members share the port on addresses of their own
  // (CASSANDRA_RPC_ADDRESS, as the official image takes it): reach this one there.
  const rpc = c.env.CASSANDRA_BROADCAST_RPC_ADDRESS ?? c.env.CASSANDRA_RPC_ADDRESS;
  if (!o.host && c.networkMode === 'host' && rpc && isIP(rpc) && !['0.0.0.0', '::'].includes(rpc)) return { ...ep, host: rpc };
  return ep;
}

async function open(ep: Endpoint, o: CassandraOptions, cred?: { user: string; password: string }): Promise<cassandra.Client> {
  const { default: cassandra } = await import('cassandra-driver'); // loaded with the first cassandra job
  const where = `${ep.host}:${ep.port}`;
  return new cassandra.Client({
    contactPoints: [where],
    // every request goes to this node only: the agent backs up the node it runs beside
    policies: { loadBalancing: new cassandra.policies.loadBalancing.AllowListPolicy(new cassandra.policies.loadBalancing.RoundRobinPolicy(), [where]) },
    authProvider: cred ? new cassandra.auth.PlainTextAuthProvider(cred.user, cred.password) : undefined,
    socketOptions: { connectTimeout: 10_000, readTimeout: o.request_timeout * 1000 },
    queryOptions: { consistency: cassandra.types.consistencies.localOne, fetchSize: 5000 },
    isMetadataSyncEnabled: false,
  });
}

function authRequired(err: unknown): boolean {
  return /requires authentication/i.test(innerMessages(err));
}

function innerMessages(err: unknown): string {
  const e = err as { message?: string; innerErrors?: Record<string, { message?: string }> };
  const inner = Object.values(e.innerErrors ?? {}).map((i) => i?.message ?? String(i));
  return [e.message ?? String(err), ...inner].join('; ');
}

/** Connects to the job's node: the options' credentials; else the container's
 * CASSANDRA_USER / CASSANDRA_PASSWORD(_FILE); else none when the server asks for none;
 * else the default superuser cassandra/cassandra (official image + PasswordAuthenticator). */
export async function connectNode(ctx: PluginContext, c: ContainerDetails, o: CassandraOptions): Promise<Node> {
  const ep = cqlEndpoint(c, o);
  let cred: { user: string; password: string } | undefined;
  let auth = 'none';
  const fromOptions = await secretFromOptions(o);
  if (fromOptions !== undefined) {
    cred = { user: o.user ?? 'cassandra', password: fromOptions };
    auth = 'options';
  } else {
    const found = await containerSecret(ctx, c, ['CASSANDRA_PASSWORD']);
    if (found) {
      cred = { user: o.user ?? c.env.CASSANDRA_USER ?? 'cassandra', password: found.value };
      auth = found.from;
    } else if (o.user) {
      throw new SnapError(`container ${c.name}: no password known for CQL user "${o.user}"`, { hint: 'set options.password_env or options.password_file' });
    }
  }
  const attempt = async (cr?: { user: string; password: string }) => {
    const client = await open(ep, o, cr);
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.shutdown().catch(() => undefined);
      throw err;
    }
  };
  let client: cassandra.Client;
  try {
    try {
      client = await attempt(cred);
    } catch (err) {
      if (cred || !authRequired(err)) throw err;
      cred = { user: 'cassandra', password: 'cassandra' };
      auth = 'default superuser';
      ctx.log.info({ container: c.name }, 'the server asks for authentication and none is configured: trying the default superuser');
      client = await attempt(cred);
    }
  } catch (err) {
    const text = innerMessages(err);
    const hint = /incorrect|bad credentials|authentication/i.test(text)
      ? 'the CQL credentials were refused: set options.user and options.password_env (or password_file), or CASSANDRA_USER/CASSANDRA_PASSWORD(_FILE) on the container'
      : `check that the node's CQL port is reachable at ${ep.host}:${ep.port} (or set options.host/port)`;
    throw new SnapError(`cannot connect to Cassandra at ${ep.host}:${ep.port}${cred ? ` as ${cred.user}` : ''}: ${text}`, { hint, cause: err });
  }
  return { client, ep, auth, close: () => client.shutdown().catch(() => undefined) };
}

export interface NodeInfo {
  version: string;
  cluster: string;
  partitioner: string;
  host_id: string;
  datacenter: string;
  rack: string;
  address: string;
  tokens: string[];
  /** Nodes in the ring, this one included (system.peers_v2 + 1). */
  ring_nodes: number;
}

export async function nodeInfo(client: cassandra.Client): Promise<NodeInfo> {
  const local = (await client.execute('SELECT release_version, cluster_name, partitioner, host_id, data_center, rack, broadcast_address, tokens FROM system.local')).first();
  const peers = (await client.execute('SELECT peer FROM system.peers_v2')).rowLength;
  const tokens = [...((local.tokens as string[] | null) ?? [])].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
  return {
    version: String(local.release_version),
    cluster: String(local.cluster_name),
    partitioner: String(local.partitioner),
    host_id: String(local.host_id),
    datacenter: String(local.data_center),
    rack: String(local.rack),
    address: String(local.broadcast_address),
    tokens,
    ring_nodes: peers + 1,
  };
}

export interface TableRef {
  keyspace: string;
  table: string;
  /** The table id (uuid); its data directory is <table>-<id without dashes>. */
  id: string;
  /** The first partition key column, for row counts. */
  key: string;
}

export interface Schema {
  /** CREATE KEYSPACE IF NOT EXISTS ... per keyspace. */
  keyspaces: Record<string, string>;
  /** CREATE TYPE IF NOT EXISTS ... per keyspace, each after the types it uses. */
  types: Record<string, string[]>;
  tables: TableRef[];
}

/** Keyspaces (their DDL) and base tables (not views) of the user's keyspaces. */
export async function readSchema(client: cassandra.Client): Promise<Schema> {
  const keyspaces: Record<string, string> = {};
  for (const r of (await client.execute('SELECT keyspace_name, durable_writes, replication FROM system_schema.keyspaces')).rows) {
    const ks = String(r.keyspace_name);
    if (SYSTEM_KEYSPACES.includes(ks)) continue;
    const repl = Object.entries(r.replication as Record<string, string>).map(([k, v]) => `${lit(k)}: ${lit(v)}`).join(', ');
    keyspaces[ks] = `CREATE KEYSPACE IF NOT EXISTS ${q(ks)} WITH replication = {${repl}} AND durable_writes = ${r.durable_writes ? 'true' : 'false'};`;
  }
  const types: Record<string, string[]> = {};
  const defs = new Map<string, { name: string; uses: string[]; cql: string }[]>();
  for (const r of (await client.execute('SELECT keyspace_name, type_name, field_names, field_types FROM system_schema.types')).rows) {
    const ks = String(r.keyspace_name);
    if (!(ks in keyspaces)) continue;
    const names = r.field_names as string[];
    const ftypes = r.field_types as string[];
    const fields = names.map((f, i) => `${q(f)} ${ftypes[i]}`).join(', ');
    const list = defs.get(ks) ?? [];
    list.push({ name: String(r.type_name), uses: ftypes, cql: `CREATE TYPE IF NOT EXISTS ${q(ks)}.${q(String(r.type_name))} (${fields});` });
    defs.set(ks, list);
  }
  for (const [ks, list] of defs) types[ks] = orderTypes(list);
  const keys = new Map<string, string>();
  for (const r of (await client.execute("SELECT keyspace_name, table_name, column_name, kind, position FROM system_schema.columns")).rows) {
    if (r.kind === 'partition_key' && r.position === 0) keys.set(`${r.keyspace_name}.${r.table_name}`, String(r.column_name));
  }
  const tables: TableRef[] = [];
  for (const r of (await client.execute('SELECT keyspace_name, table_name, id FROM system_schema.tables')).rows) {
    const keyspace = String(r.keyspace_name);
    if (!(keyspace in keyspaces)) continue;
    const table = String(r.table_name);
    tables.push({ keyspace, table, id: String(r.id), key: keys.get(`${keyspace}.${table}`) ?? '' });
  }
  tables.sort((a, b) => a.keyspace.localeCompare(b.keyspace) || a.table.localeCompare(b.table));
  return { keyspaces, types, tables };
}

// Types in an order where each comes after the types its fields use.
function orderTypes(list: { name: string; uses: string[]; cql: string }[]): string[] {
  const out: string[] = [];
  const done = new Set<string>();
  const uses = (t: { uses: string[] }, other: string) => t.uses.some((u) => new RegExp(`(^|[<, ])"?${other}"?([>, ]|$)`).test(u));
  let rest = [...list].sort((a, b) => a.name.localeCompare(b.name));
  while (rest.length) {
    const ready = rest.filter((t) => rest.every((o) => o === t || done.has(o.name) || !uses(t, o.name)));
    const next = ready.length ? ready : rest; // a cycle cannot exist; keep going whatever
    for (const t of next) {
      out.push(t.cql);
      done.add(t.name);
    }
    rest = rest.filter((t) => !done.has(t.name));
  }
  return out;
}

/** The table's CQL rows, counted by paging through its first key column (each page is
 * its own request: no server-side timeout on a whole-table scan). */
export async function countRows(client: cassandra.Client, t: { keyspace: string; table: string; key: string }): Promise<number> {
  const rs = await client.execute(`SELECT ${q(t.key)} FROM ${q(t.keyspace)}.${q(t.table)}`, [], { fetchSize: 5000 });
  let n = 0;
  for await (const _ of rs) n++;
  return n;
}

/** Whether the table holds at least one row. */
export async function hasRows(client: cassandra.Client, t: { keyspace: string; table: string; key: string }): Promise<boolean> {
  return (await client.execute(`SELECT ${q(t.key)} FROM ${q(t.keyspace)}.${q(t.table)} LIMIT 1`)).rowLength > 0;
}

/** Splits CQL text into statements at top-level semicolons (outside strings, quoted
 * identifiers, $$ blocks and comments). */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    const two = text.slice(i, i + 2);
    if (ch === "'" || ch === '"') {
      let j = i + 1;
      for (; j < text.length; j++) {
        if (text[j] === ch) {
          if (text[j + 1] === ch) j++;
          else break;
        }
      }
      cur += text.slice(i, j + 1);
      i = j + 1;
    } else if (two === '$$') {
      const j = text.indexOf('$$', i + 2);
      const end = j < 0 ? text.length : j + 2;
      cur += text.slice(i, end);
      i = end;
    } else if (two === '--' || two === '//') {
      const j = text.indexOf('\n', i);
      i = j < 0 ? text.length : j + 1;
    } else if (two === '/*') {
      const j = text.indexOf('*/', i + 2);
      i = j < 0 ? text.length : j + 2;
    } else if (ch === ';') {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
      i++;
    } else {
      cur += ch;
      i++;
    }
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}
