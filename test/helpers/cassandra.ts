// A real Cassandra node in a container (snapagent-test/cassandra: Cassandra 5.0 with the
// official image's conventions) on 127.0.0.1 with ports of its own, and a driver client
// for the test's own checks and data.
import { createHash } from 'node:crypto';
import cassandra from 'cassandra-driver';
import { docker, removeContainer, removeVolume, uniq } from './harness.ts';
import { waitForServer } from './wait.ts';

export const CASSANDRA_IMAGE = 'snapagent-test/cassandra:latest';

export interface CassandraNode {
  name: string;
  volume: string;
  port: number;
  client: cassandra.Client;
  /** Snapshot directories (<ks>/<table-id>/snapshots/<tag>) on the node's disk. */
  snapshots(): Promise<string[]>;
  remove(): Promise<void>;
}

export interface NodeOptions {
  /** PasswordAuthenticator on (default superuser cassandra/cassandra). */
  auth?: boolean;
  /** Rack in datacenter1 (GossipingPropertyFileSnitch, as rings use); default: SimpleSnitch. */
  rack?: string;
  /** Joins the seed's ring, on an address of its own (127.0.0.N: same storage and CQL
   * ports as the seed, as in a real ring). */
  join?: { seed: CassandraNode; address: string };
  /** Another image of the same conventions (default: CASSANDRA_IMAGE). */
  image?: string;
}

/** Starts a node on 127.0.0.1 with ports of its own, or a member of `join`'s ring. */
export async function startCassandra(opts: NodeOptions = {}): Promise<CassandraNode> {
  const name = uniq('sa-cass');
  const volume = `${name}-data`;
  const base = opts.join ? opts.join.seed.port - 1 : 20000 + Math.floor(Math.random() * 400) * 10;
  const port = base + 1;
  const address = opts.join?.address ?? '127.0.0.1';
  const env = [
    `CASSANDRA_LISTEN_ADDRESS=${address}`,
    `CASSANDRA_RPC_ADDRESS=${address}`,
    `CASSANDRA_NATIVE_PORT=${port}`,
    `CASSANDRA_STORAGE_PORT=${base + 2}`,
    // JMX listens on every address: each member needs a port of its own
    `CASSANDRA_JMX_PORT=${base + 3 + (opts.join ? Number(address.split('.')[3]) * 10 : 0)}`,
    ...(opts.join ? ['CASSANDRA_SEEDS=127.0.0.1'] : []),
    ...(opts.rack ? ['CASSANDRA_ENDPOINT_SNITCH=GossipingPropertyFileSnitch', 'CASSANDRA_DC=datacenter1', `CASSANDRA_RACK=${opts.rack}`] : []),
    'MAX_HEAP_SIZE=512M',
    'HEAP_NEWSIZE=128M',
    'JVM_EXTRA_OPTS=-Dcassandra.ring_delay_ms=1000 -Dcassandra.skip_wait_for_gossip_to_settle=0',
    ...(opts.auth ? ['CASSANDRA_AUTHENTICATOR=PasswordAuthenticator', 'CASSANDRA_AUTHORIZER=CassandraAuthorizer'] : []),
  ];
  await docker('run', '-d', '--name', name, '--network', 'host', ...env.flatMap((e) => ['-e', e]), '-v', `${volume}:/var/lib/cassandra`, opts.image ?? CASSANDRA_IMAGE);
  const where = `${address}:${port}`;
  const client = await waitForServer(name, 'Cassandra', async () => {
    const c = new cassandra.Client({
      contactPoints: [where],
      localDataCenter: 'datacenter1',
      authProvider: opts.auth ? new cassandra.auth.PlainTextAuthProvider('cassandra', 'cassandra') : undefined,
      socketOptions: { readTimeout: 120_000, connectTimeout: 5000 },
      queryOptions: { consistency: cassandra.types.consistencies.one },
    });
    try {
      await c.connect();
      await c.execute('SELECT release_version FROM system.local');
      return c;
    } catch (err) {
      await c.shutdown().catch(() => undefined);
      throw err;
    }
  }, { timeoutMs: 180_000, intervalMs: 1000 });
  return {
    name,
    volume,
    port,
    client,
    snapshots: async () =>
      (await docker('exec', name, 'sh', '-c', 'cd /var/lib/cassandra/data && find . -mindepth 4 -maxdepth 4 -type d -path "./*/*/snapshots/*"'))
        .split('\n')
        .filter(Boolean)
        .sort(),
    remove: async () => {
      await client.shutdown().catch(() => undefined);
      await removeContainer(name);
      await removeVolume(volume);
    },
  };
}

// Every row of a table in a canonical form, hashed; and the row count.
function canon(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(canon);
  if (typeof v === 'object' && (v as object).constructor === Object) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, canon(x)]));
  }
  return typeof v === 'object' ? String(v) : v;
}

export async function tableDigest(client: cassandra.Client, table: string): Promise<string> {
  const rows: string[] = [];
  try {
    const rs = await client.execute(`SELECT * FROM ${table}`, [], { fetchSize: 5000 });
    for await (const r of rs) rows.push(JSON.stringify(canon({ ...r })));
  } catch (err) {
    return `missing: ${(err as Error).message.slice(0, 60)}`;
  }
  rows.sort();
  return `${rows.length} ${createHash('sha256').update(rows.join('\n')).digest('hex')}`;
}

