// Restore drills: a throwaway server from the backup's image, following the official
// image's conventions (a fresh root password in MARIADB_ROOT_PASSWORD / MYSQL_ROOT_PASSWORD,
// extra arguments for mariadbd / mysqld), on 127.0.0.1 with a port of its own.
import { type DrillPlan, freshPassword, type Job, runningContainer, withoutConnection } from '../../agent/plugin/index.ts';
import { credentials, endpoint } from './connection.ts';
import type { MariadbOptions } from './options.ts';
import { probe } from './probe.ts';

export async function drillServer(job: Job<MariadbOptions>, port: () => Promise<number>): Promise<DrillPlan<MariadbOptions>> {
  const password = freshPassword();
  const options = withoutConnection(job.options);
  return {
    kind: 'server',
    server: {
      env: { MARIADB_ROOT_PASSWORD: password, MYSQL_ROOT_PASSWORD: password },
      cmd: [`--port=${await port()}`, '--bind-address=127.0.0.1'],
      volumes: ['/var/lib/mysql'],
      options,
      ready: async (ctx, name) => {
        const c = await runningContainer(ctx, name, 'drill', 'mariadb');
        await probe(endpoint(c, options), await credentials(ctx, c, options), []);
      },
    },
  };
}
