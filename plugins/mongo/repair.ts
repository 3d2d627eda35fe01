// The repair of a killed backup at the next start of the agent: a backup through a mongos
// killed with kill -9 while the balancer was stopped (balancer.ts) leaves the cluster
// without chunk balancing until someone runs sh.startBalancer(). The backup records the
// job's container and the mongos address before balancerStop; the next start restarts the
// balancer, reaching the mongos as the job does now, once it checked both values again
// (they are read back from a file) and that the server still is that mongos.
import { DOCKER_NAME, type Job, type KilledWork, type PluginContext, type RepairData, SnapError } from '../../agent/plugin/index.ts';
import { agentEndpoint, credentials, withClient } from './connection.ts';
import type { MongoOptions } from './options.ts';

/** What a backup records before it stops the balancer. */
export function balancerRecord(container: string, mongos: string): RepairData {
  return { container, mongos, balancer: 'stopped' };
}

/** The record a killed backup left, or why it is refused. */
export function recordedBalancer(killed: Pick<KilledWork, 'kind' | 'data'>): { container: string; mongos: string } | string {
  const { container, mongos, balancer, ...rest } = killed.data;
  if (killed.kind !== 'backup') return `recorded by a ${killed.kind}, not a backup`;
  if (Object.keys(rest).length) return `unexpected values (${Object.keys(rest).join(', ')})`;
  if (balancer !== 'stopped') return 'it does not say the balancer was stopped';
  if (!container || !DOCKER_NAME.test(container)) return 'its container is not a Docker container name';
  if (!mongos || !/^[A-Za-z0-9.:[\]-]+:[0-9]{1,5}$/.test(mongos)) return 'its mongos is not a host:port';
  return { container, mongos };
}

/** Restarts the balancer a killed backup stopped: true when done (or refused, or the job
 * reaches another server now: warned, naming what to run by hand), false while the job's
 * container is not running (the next start tries again). */
export async function restartKilledBalancer(ctx: PluginContext, killed: KilledWork<MongoOptions>): Promise<boolean> {
  const rec = recordedBalancer(killed);
  const byHand = (mongos: string) => `run sh.startBalancer() against the mongos ${mongos}`;
  if (typeof rec === 'string') {
    ctx.log.warn({ job: killed.job }, `the killed backup of job ${killed.job} recorded a stopped balancer that is not restarted: ${rec}`);
    return true;
  }
  const { container, mongos } = rec;
  const job: Job<MongoOptions> | undefined = killed.planned;
  if (!job || job.container !== container) {
    ctx.log.warn({ job: killed.job, mongos }, `the killed backup of job ${killed.job} left the balancer of mongos ${mongos} stopped, and the job no longer backs up container ${container}: ${byHand(mongos)}`);
    return true;
  }
  const c = await ctx.docker.inspectContainer(container);
  if (!c?.running) {
    ctx.log.warn({ job: killed.job, mongos }, `container ${container} is not running: the balancer of mongos ${mongos}, stopped by the killed backup of job ${killed.job}, is restarted at the next start once it runs (or ${byHand(mongos)})`);
    return false;
  }
  const ep = agentEndpoint(c, job.options);
  if (`${ep.host}:${ep.port}` !== mongos) {
    ctx.log.warn({ job: killed.job, mongos }, `the killed backup of job ${killed.job} left the balancer of mongos ${mongos} stopped, and the job now reaches ${ep.host}:${ep.port}: ${byHand(mongos)}`);
    return true;
  }
  await withClient(ep, await credentials(ctx, c, job.options), async (client) => {
    const admin = client.db('admin');
    if ((await admin.command({ hello: 1 })).msg !== 'isdbgrid') throw new SnapError(`${mongos} is no longer a mongos: ${byHand(mongos)}`);
    await admin.command({ balancerStart: 1 });
  });
  ctx.log.warn({ job: killed.job, mongos }, `restarted the balancer of mongos ${mongos}, stopped by the killed backup of job ${killed.job}`);
  return true;
}
