// Restore drills: a throwaway single node from the backup's image, in the backup's
// datacenter and rack (so that its keyspaces' replication finds a replica), listening on
// 127.0.0.1 with ports of its own (CASSANDRA_NATIVE_PORT / _STORAGE_PORT / _JMX_PORT, as
// the snapagent-test image reads them), in a cluster of its own, without authentication.
import { type DrillPlan, type Job, runningContainer, withoutConnection } from '../../agent/plugin/index.ts';
import { connectNode } from './cql.ts';
import type { CassandraOptions } from './options.ts';

export async function drillServer(job: Job<CassandraOptions>, port: () => Promise<number>, source: Record<string, unknown>): Promise<DrillPlan<CassandraOptions>> {
  const options = withoutConnection(job.options);
  // from the manifest into the image's config files: plain names only
  const where = (k: string, dflt: string) => (typeof source[k] === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(source[k] as string) ? (source[k] as string) : dflt);
  return {
    kind: 'server',
    server: {
      env: {
        CASSANDRA_CLUSTER_NAME: 'snapagent-drill',
        CASSANDRA_LISTEN_ADDRESS: '127.0.0.1',
        CASSANDRA_RPC_ADDRESS: '127.0.0.1',
        CASSANDRA_NATIVE_PORT: String(await port()),
        CASSANDRA_STORAGE_PORT: String(await port()),
        CASSANDRA_JMX_PORT: String(await port()),
        CASSANDRA_ENDPOINT_SNITCH: 'GossipingPropertyFileSnitch',
        CASSANDRA_DC: where('datacenter', 'datacenter1'),
        CASSANDRA_RACK: where('rack', 'rack1'),
        MAX_HEAP_SIZE: '1G',
        HEAP_NEWSIZE: '256M',
        JVM_EXTRA_OPTS: '-Dcassandra.ring_delay_ms=1000 -Dcassandra.skip_wait_for_gossip_to_settle=0',
      },
      cmd: [],
      volumes: ['/var/lib/cassandra'],
      options,
      ready: async (ctx, name) => {
        await (await connectNode(ctx, await runningContainer(ctx, name, 'drill', 'cassandra'), options)).close();
      },
    },
  };
}
