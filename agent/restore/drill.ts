// Restore drills (`snapagent verify --drill`, and per tier on the daemon's schedule):
// a backup is restored into a throwaway copy of its datastore — a fresh volume, or a
// server started from the image its manifest recorded — by the plugin's own restore,
// which reads every stored byte against the sha256 and compares the result with the
// manifest's counts and checksums. Everything the drill created is removed afterwards,
// whatever happened. The result, with the measured time to restore (the RTO), is
// written next to the manifest as drill.json.
//
// A drill that cannot start (no age identity, the image is not on this host, the
// server never answers) or is cancelled records nothing: it says nothing about the backup.
import { createServer, type AddressInfo } from 'node:net';
import type { Config } from '../config/load.ts';
import type { Context } from '../context.ts';
import type { DockerClient } from '../docker/client.ts';
import { errorMessage, ExitCode, SnapError } from '../errors.ts';
import { lockJob, type Lock } from '../runtime/lock.ts';
import { log, runId } from '../log.ts';
import { dataArtifact, type Listed } from '../catalog/manifest.ts';
import type { DrillServer, Job, PluginContext } from '../plugin/contract.ts';
import { checkIdentity, requireIdentity } from '../pipeline/age.ts';
import { makeProgress } from '../pipeline/progress.ts';
import { restoreBackup, type RestoreRequest } from './restore-job.ts';
import { buildPlan } from '../plan/plan.ts';
import { drillImage, jobFromManifest } from './restore-trust.ts';
import { listBackups } from '../catalog/list.ts';
import { refreshIndexes } from '../catalog/catalog.ts';
import { catalogTrust } from '../catalog/trust.ts';
import { slicesAfter, untilPosition, type PointInTimePlan } from '../pitr/point.ts';
import { coverage } from '../pitr/slices.ts';
import { checkRecord, chooseBackups, finish, notRun, round, trustGate, type CheckResult } from '../catalog/verify.ts';

/** Label on every container and volume a drill creates (value: the agent's run id). */
export const DRILL_LABEL = 'snapagent.drill';

export interface DrillSelection {
  tier?: string;
  job?: string;
  target?: string;
  host?: string;
  /** "latest" (default: the newest backup of each job on each target), "all", or an id. */
  id?: string;
  /** The image of the drill's server (default: the one the manifest recorded, when allowed). */
  image?: string;
}

/** Drills the chosen backups one after the other (the daemon calls this per tier).
 * Without progress or signal: no progress bars, not cancellable. */
export async function runDrills(ctx: Pick<Context, 'config' | 'docker' | 'registry'> & Partial<Context>, sel: DrillSelection): Promise<CheckResult[]> {
  const full: Context = { progress: makeProgress(false), signal: new AbortController().signal, ...ctx };
  const chosen = chooseBackups(await listBackups(full, sel), sel.id, sel.tier);
  const results: CheckResult[] = [];
  const recorded: Listed[] = [];
  for (const l of chosen) {
    if (full.signal.aborted) break;
    const r = await drillBackup(full, l, sel.image);
    results.push(r);
    if (r.recorded) recorded.push(l);
  }
  if (recorded.length) await refreshIndexes(recorded, await catalogTrust(full));
  return results;
}

let seq = 0;

export async function drillBackup(ctx: Context, l: Listed, image?: string, insecureUnsigned = false): Promise<CheckResult> {
  const { config, docker, signal } = ctx;
  // a manifest anyone could have written must not choose an image to start
  const refused = trustGate(l, 'drill', insecureUnsigned);
  if (refused) return refused;
  const started = new Date();
  const m = l.manifest;
  const name = `snapagent-drill-${m.job.toLowerCase().replace(/[^a-z0-9_.-]/g, '-')}-${runId}-${++seq}`;
  const made: Made = { volumes: [] };
  const details: Record<string, unknown> = { target: l.target.name, plugin: m.plugin };
  const jlog = log.child({ job: m.job, id: m.id, drill: name });
  let lock: Lock | undefined;
  let result: CheckResult;
  let problems: string[] = [];
  try {
    result = await drillInto();
  } finally {
    await lock?.release();
    problems = await removeMade(docker, made, jlog);
  }
  // reported, not recorded: the backup is not what failed
  if (problems.length) {
    result.errors.push(...problems.map((p) => `drill cleanup: ${p}`));
    result.exitCode = Math.max(result.exitCode, ExitCode.failed);
  }
  return result;

  async function drillInto(): Promise<CheckResult> {
    let job: Job;
    let req: RestoreRequest;
    try {
      const artifact = dataArtifact(m);
      if (artifact.encryption === 'age') await checkIdentity(l.target, `${l.dir}/${artifact.name}`, await requireIdentity(config, `backup ${m.job}/${m.id}`), signal);
      job = jobFromManifest(ctx, l, undefined, { drill: true });
      const plan = await ctx.registry[m.plugin]!.drill(job, ports(), m.source);
      if (plan.kind === 'volume') {
        made.volume = name;
        Object.assign(details, { kind: 'volume', volume: name, startup_seconds: 0 });
        req = { toVolume: name, stop: false, force: false, locked: true, drill: true, insecureUnsigned };
      } else {
        const from = drillImage(config, m.source.image, await ownImage(ctx, m.job), image, `backup ${m.job}/${m.id}`);
        const t0 = performance.now();
        details.kind = 'server';
        await startServer(config, docker, { docker, log: jlog, signal, helperImage: config.docker.helper_image, host: config.host }, name, from, plan.server, made, details);
        details.startup_seconds = round((performance.now() - t0) / 1000);
        job = { ...job, options: plan.server.options };
        req = { toContainer: name, stop: false, force: false, locked: true, drill: true, insecureUnsigned };
      }
      lock = await lockJob(config.stateDir, config.host, m.job, jlog);
    } catch (err) {
      return notRun(l, 'drill', started, err);
    }
    // a job with pitr: the drill replays the oplog slices after its newest dump, to the
    // newest moment they reach (RPO: how long before the drill that moment was)
    let point = Date.parse(m.started_at);
    try {
      const pit = await drillPointInTime(ctx, l);
      if (pit) {
        req.pointInTime = pit;
        point = pit.at.getTime();
        details.point_in_time = { at: pit.at.toISOString(), slices: pit.slices.length };
      }
    } catch (err) {
      jlog.warn(`drill: the oplog slices cannot be read, the dump alone is restored: ${errorMessage(err)}`);
    }
    details.rpo_seconds = round(Math.max(0, started.getTime() - point) / 1000);
    jlog.info({ into: details.volume ?? details.container }, 'drill: restoring');
    const r = await restoreBackup(ctx, l, job, req);
    if (signal.aborted) return notRun(l, 'drill', started, signal.reason); // a cancelled drill proves nothing
    Object.assign(details, { restore_seconds: round(r.duration_seconds), bytes: r.bytes, destination: r.destination });
    const errors = r.status === 'ok' ? [] : [`${r.error}${r.hint ? ` (${r.hint})` : ''}`];
    const record = checkRecord('drill', l, started, errors, details, r.status === 'ok' ? r.duration_seconds : undefined);
    if (r.status === 'ok') record.rpo_seconds = details.rpo_seconds as number;
    return finish(config, l, record, r.exitCode === ExitCode.integrity);
  }
}

// The drill of a pitr job's newest dump replays the slices after it (all of them).
async function drillPointInTime(ctx: Context, l: Listed): Promise<PointInTimePlan | undefined> {
  const m = l.manifest;
  const pitr = ctx.registry[m.plugin]?.pitr;
  if (!pitr || !ctx.config.jobs.find((j) => j.name === m.job)?.pitr?.enabled) return undefined;
  const position = pitr.positionOf(m.stats);
  if (!position) return undefined;
  const keys = (await catalogTrust(ctx)).keys;
  const base = { id: m.id, position };
  const cov = coverage(base, await slicesAfter(l.target, m.host, m.job, keys, base));
  if (cov.slices.length === 0) return undefined;
  const at = new Date(cov.until);
  return { base: l, at, after: position, until: untilPosition(at), slices: cov.slices, coveredUntil: cov.until };
}

interface Made {
  container?: string;
  volume?: string;
  volumes: string[];
}

// The server from the manifest's image, each data path on a fresh labelled volume,
// polled until it answered twice in a row (an image whose entrypoint runs a temporary
// server during initialisation must not be caught in between).
async function startServer(config: Config, docker: DockerClient, ctx: PluginContext, name: string, image: string, server: DrillServer, made: Made, details: Record<string, unknown>): Promise<void> {
  details.image = image;
  if (!(await docker.imageExists(image))) {
    throw new SnapError(`image ${image} is not on this host`, { hint: `pull or build it (docker pull ${image}), then run the drill again` });
  }
  const labels = { [DRILL_LABEL]: runId };
  const mounts = [];
  for (const [i, target] of server.volumes.entries()) {
    const volume = `${name}-${i}`;
    await docker.createVolume({ name: volume, driver: 'local', labels, options: {} });
    made.volumes.push(volume);
    mounts.push({ volume, target, readOnly: false });
  }
  made.container = name;
  await docker.runServer({ name, image, env: server.env, cmd: server.cmd, user: server.user, mounts, labels });
  details.container = name;
  const deadline = Date.now() + config.drill.startup_timeout * 1000;
  let answered = 0;
  let last: unknown;
  for (;;) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const c = await docker.inspectContainer(name);
    if (!c?.running) {
      const logs = (await docker.containerLogs(name, 5)).trim().split('\n').join(' | ');
      throw new SnapError(`the drill server ${name} stopped (${c?.state ?? 'gone'}) before it answered${logs ? `: ${logs}` : ''}`);
    }
    // volumes the image declares get anonymous ones: recorded, and removed with it
    details.volumes = c.mounts.filter((mt) => mt.type === 'volume' && mt.name).map((mt) => mt.name);
    try {
      await server.ready(ctx, name);
      if (++answered === 2) return;
    } catch (err) {
      answered = 0;
      last = err;
    }
    if (Date.now() > deadline) {
      throw new SnapError(`the drill server ${name} did not answer within ${config.drill.startup_timeout} s: ${errorMessage(last)}`, { hint: 'raise drill.startup_timeout, or look at its log in a drill that is still starting: docker logs NAME' });
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// The image of the job's own container on this host, if the plan has one running: the
// operator already runs it, so a drill may start it whatever the manifest says.
async function ownImage(ctx: Context, job: string): Promise<string | undefined> {
  const { docker } = ctx;
  const planned = (await buildPlan(ctx, docker)).jobs.find((j) => j.name === job);
  return planned?.container ? (await docker.inspectContainer(planned.container))?.image : undefined;
}

async function removeMade(docker: DockerClient, made: Made, jlog: typeof log): Promise<string[]> {
  const problems: string[] = [];
  if (made.container) await docker.removeContainer(made.container).catch((err: unknown) => problems.push(errorMessage(err)));
  for (const v of [...made.volumes, ...(made.volume ? [made.volume] : [])]) {
    // dockerd may still count a just-removed container as the volume's user
    for (let attempt = 0; ; attempt++) {
      try {
        if (await docker.inspectVolume(v)) await docker.removeVolume(v);
        break;
      } catch (err) {
        if (attempt === 10) {
          problems.push(errorMessage(err));
          break;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
  for (const p of problems) jlog.error({ label: `${DRILL_LABEL}=${runId}` }, `drill cleanup: ${p}`);
  return problems;
}

// Free TCP ports on 127.0.0.1, never the same one twice in a drill.
function ports(): () => Promise<number> {
  const given = new Set<number>();
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.on('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
  return async () => {
    for (;;) {
      const p = await one();
      if (!given.has(p)) {
        given.add(p);
        return p;
      }
    }
  };
}
