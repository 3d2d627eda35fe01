// Restore drills: a throwaway server from the backup's image, following the official
// image's conventions (a fresh root user from MONGO_INITDB_ROOT_USERNAME/_PASSWORD, extra
// arguments for mongod), on 127.0.0.1 with a port of its own.
import { randomBytes } from 'node:crypto';
import { type DrillPlan, freshPassword, type Job, runningContainer, withoutConnection } from '../../agent/plugin/index.ts';
import { agentEndpoint, connect, credentials } from './connection.ts';
import type { MongoOptions } from './options.ts';

export async function drillServer(job: Job<MongoOptions>, port: () => Promise<number>): Promise<DrillPlan<MongoOptions>> {
  const options = { ...withoutConnection(job.options), auth_source: 'admin' };
  return {
    kind: 'server',
    server: {
      // user names are redacted like passwords: one that appears nowhere else
      env: { MONGO_INITDB_ROOT_USERNAME: `drill-${randomBytes(4).toString('hex')}`, MONGO_INITDB_ROOT_PASSWORD: freshPassword() },
      cmd: ['--bind_ip', '127.0.0.1', '--port', String(await port())],
      volumes: ['/data/db', '/data/configdb'],
      options,
      ready: async (ctx, name) => {
        const c = await runningContainer(ctx, name, 'drill', 'mongo');
        await (await connect(agentEndpoint(c, options), await credentials(ctx, c, options))).close();
      },
    },
  };
}
