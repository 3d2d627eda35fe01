// Restore drills: a throwaway single-node cluster from the backup's image, configured
// through env settings like the official image (security off: it only ever listens on
// 127.0.0.1, on ports of its own), with path.repo on a fresh volume for the staged
// repository. Started as root so that the entrypoint gives its directories to uid 1000.
import { type DrillPlan, type Job, runningContainer } from '../../agent/plugin/index.ts';
import { connect } from './connect.ts';
import type { EsOptions } from './options.ts';

const REPO = '/usr/share/elasticsearch/snapagent-drill';

export async function drillServer(job: Job<EsOptions>, port: () => Promise<number>): Promise<DrillPlan<EsOptions>> {
  const options: EsOptions = { ...job.options, host: undefined, port: undefined, scheme: undefined, ca_file: undefined, password_env: undefined, password_file: undefined, location: undefined };
  return {
    kind: 'server',
    server: {
      env: {
        'discovery.type': 'single-node',
        'network.host': '127.0.0.1',
        'http.port': String(await port()),
        'transport.port': String(await port()),
        'path.repo': REPO,
        'xpack.security.enabled': 'false',
        ES_JAVA_OPTS: '-Xms512m -Xmx512m',
      },
      cmd: [],
      user: '0',
      volumes: ['/usr/share/elasticsearch/data', REPO],
      options,
      ready: async (ctx, name) => {
        const es = await connect(ctx, await runningContainer(ctx, name, 'drill', 'elasticsearch'), options, false);
        try {
          const h = await es.client.cluster.health({ wait_for_status: 'yellow', timeout: '1s' });
          if (h.timed_out) throw new Error(`cluster health ${h.status}`);
        } finally {
          await es.close();
        }
      },
    },
  };
}
