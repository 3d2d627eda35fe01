// Builds the plan: explicit jobs from the config plus jobs found from `snapagent.*`
// labels on volumes and containers. A bad label or job becomes a problem in the plan
// (named, with what to fix); it never stops the other jobs.
import type { Config } from '../config/load.ts';
import type { ConfigContext } from '../context.ts';
import { DEFAULT_FULL_EVERY, DURATION, FULL_EVERY_EXPECTED, type JobConfig } from '../config/schema.ts';
import type { ContainerInfo, DockerClient, VolumeInfo } from '../docker/client.ts';
import { errorMessage } from '../errors.ts';
import type { Job, PluginRegistry } from '../plugin/contract.ts';

export interface PlanProblem {
  where: string;
  message: string;
}

export interface Plan {
  jobs: Job[];
  problems: PlanProblem[];
  /** Job names claimed by more than one source: nothing is backed up or restored under them. */
  contested: Map<string, PlanProblem>;
}

const ANONYMOUS = /^[0-9a-f]{64}$/;

/** `docker` undefined: the config's jobs only (no label discovery). */
export async function buildPlan(ctx: ConfigContext, docker: DockerClient | undefined): Promise<Plan> {
  const { config, registry } = ctx;
  // Every claim on a job name, in the order found. A name claimed by two sources (the
  // config, a volume's labels, a container's labels, discovery) belongs to none of them:
  // any container on the host may set labels, so a label must never be able to take over
  // (or shadow) another job's backups and restores.
  const claims = new Map<string, Job[]>();
  const problems: PlanProblem[] = [];
  const add = (job: Job) => claims.set(job.name, [...(claims.get(job.name) ?? []), job]);

  config.jobs.forEach((j, i) => {
    try {
      add(fromConfig(config, registry, j, `${config.source}: jobs[${i}]`));
    } catch (err) {
      problems.push({ where: `${config.source}: jobs[${i}]`, message: errorMessage(err) });
    }
  });

  if (docker && (config.discovery.labels || config.discovery.all_volumes)) {
    const [volumes, containers] = await Promise.all([docker.listVolumes(), docker.listContainers()]);
    const covered = new Set(config.jobs.filter((j) => j.volume).map((j) => j.volume!));
    // A container the config already backs up with the same plugin: its labels only repeat that job.
    const configured = new Set(config.jobs.filter((j) => j.container).map((j) => `${j.plugin} ${j.container}`));
    if (config.discovery.labels) {
      for (const v of volumes) {
        if (!hasSnapLabels(v.labels)) continue;
        tryAdd(() => fromVolumeLabels(config, registry, v), `volume ${v.name}`, problems, add, covered, v.name);
      }
      for (const c of containers) {
        const plugin = c.labels['snapagent.plugin'];
        if (!plugin || configured.has(`${plugin} ${c.name}`) || configured.has(`${plugin} ${c.id}`)) continue;
        for (const job of safe(() => fromContainerLabels(config, registry, c, covered), `container ${c.name}`, problems)) add(job);
      }
    }
    if (config.discovery.all_volumes) {
      for (const v of volumes) {
        if (covered.has(v.name) || ANONYMOUS.test(v.name) || hasSnapLabels(v.labels)) continue;
        covered.add(v.name);
        add(volumeJob(config, registry, v.name, v.name, config.discovery.default_tier, false, 0, 'discovery.all_volumes: unlabelled named volume', fullEvery(config, config.discovery.default_tier)));
      }
    }
  }
  const jobs: Job[] = [];
  const contested = new Map<string, PlanProblem>();
  for (const [name, claimants] of claims) {
    if (claimants.length === 1) jobs.push(claimants[0]!);
    else {
      const problem = {
        where: claimants.map((j) => j.reason).join('; '),
        message: `job name "${name}" is claimed ${claimants.length} times (${claimants.map((j) => j.reason).join(', ')}): none of them is backed up or restored under it; give each a distinct name (snapagent.job label or the config's name), or remove the labels you did not set`,
      };
      problems.push(problem);
      contested.set(name, problem);
    }
  }
  const list = jobs.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
  return { jobs: list, problems, contested };
}

function hasSnapLabels(labels: Record<string, string>): boolean {
  return Object.keys(labels).some((k) => k.startsWith('snapagent.'));
}

function tryAdd(make: () => Job, where: string, problems: PlanProblem[], add: (j: Job) => void, covered: Set<string>, volume: string) {
  if (covered.has(volume)) return;
  const [job] = safe(() => [make()], where, problems);
  if (job) {
    covered.add(volume);
    add(job);
  }
}

function safe(make: () => Job[], where: string, problems: PlanProblem[]): Job[] {
  try {
    return make();
  } catch (err) {
    problems.push({ where, message: errorMessage(err) });
    return [];
  }
}

function fromConfig(config: Config, registry: PluginRegistry, j: JobConfig, where: string): Job {
  const plugin = registry[j.plugin];
  if (!plugin) throw new Error(`plugin: unknown plugin "${j.plugin}", expected one of ${Object.keys(registry).join(', ')}`);
  return {
    name: j.name,
    plugin: j.plugin,
    tier: j.tier,
    origin: 'config',
    reason: where,
    container: j.container,
    volume: j.volume,
    stop: j.stop,
    order: j.order,
    targets: j.targets ?? config.targets.map((t) => t.name),
    options: plugin.parseOptions(j.options, `${where}.options`),
    fullEvery: fullEvery(config, j.tier, j.incremental, j.full_every),
    ...(j.pitr?.enabled ? { pitr: pitrOf(plugin, j.pitr) } : {}),
  };
}

// A job's pitr settings, for a plugin that has point-in-time recovery.
function pitrOf(plugin: PluginRegistry[string], p: NonNullable<JobConfig["pitr"]>): NonNullable<Job['pitr']> {
  if (!plugin.pitr) throw new Error(`pitr: plugin ${plugin.name} has no point-in-time recovery (only mongo has)`);
  return { sliceSeconds: p.slice_seconds, keep: p.keep };
}

/** A job's full_every: the job's keys, then its tier's, then the default; undefined when
 * incremental backups are off. */
export function fullEvery(config: Config, tier: string, incremental?: boolean, every?: string): string | undefined {
  const t = config.tiers[tier];
  if (!(incremental ?? t?.incremental ?? true)) return undefined;
  return every ?? t?.full_every ?? DEFAULT_FULL_EVERY;
}

/** Reads snapagent.* labels; a bad value throws naming the label and what was expected. */
function labelValues(config: Config, labels: Record<string, string>) {
  const tier = labels['snapagent.tier'] ?? config.discovery.default_tier;
  if (!config.tiers[tier]) throw new Error(`label snapagent.tier="${tier}": expected one of ${Object.keys(config.tiers).join(', ')}`);
  const stopRaw = labels['snapagent.stop'];
  if (stopRaw !== undefined && !/^(true|false|1|0|yes|no)$/i.test(stopRaw)) throw new Error(`label snapagent.stop="${stopRaw}": expected true or false`);
  const orderRaw = labels['snapagent.order'];
  if (orderRaw !== undefined && !/^-?\d+$/.test(orderRaw)) throw new Error(`label snapagent.order="${orderRaw}": expected an integer`);
  const incRaw = labels['snapagent.incremental'];
  if (incRaw !== undefined && !/^(true|false|1|0|yes|no)$/i.test(incRaw)) throw new Error(`label snapagent.incremental="${incRaw}": expected true or false`);
  const everyRaw = labels['snapagent.full_every'];
  if (everyRaw !== undefined && !DURATION.test(everyRaw)) throw new Error(`label snapagent.full_every="${everyRaw}": expected ${FULL_EVERY_EXPECTED}`);
  const job = labels['snapagent.job'];
  if (job !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(job)) throw new Error(`label snapagent.job="${job}": expected letters, digits, "_", "." or "-"`);
  const every = fullEvery(config, tier, incRaw === undefined ? undefined : /^(true|1|yes)$/i.test(incRaw), everyRaw);
  return { tier, stop: /^(true|1|yes)$/i.test(stopRaw ?? ''), order: Number(orderRaw ?? 0), job, fullEvery: every };
}

function fromVolumeLabels(config: Config, registry: PluginRegistry, v: VolumeInfo): Job {
  const plugin = v.labels['snapagent.plugin'] ?? 'volume';
  if (plugin !== 'volume') throw new Error(`label snapagent.plugin="${plugin}" on a volume: expected "volume" (datastore plugins are set on containers)`);
  const l = labelValues(config, v.labels);
  return volumeJob(config, registry, l.job ?? v.name, v.name, l.tier, l.stop, l.order, `volume ${v.name} (labels)`, l.fullEvery);
}

function fromContainerLabels(config: Config, registry: PluginRegistry, c: ContainerInfo, covered: Set<string>): Job[] {
  const plugin = c.labels['snapagent.plugin']!;
  if (!registry[plugin]) throw new Error(`label snapagent.plugin="${plugin}": expected one of ${Object.keys(registry).join(', ')}`);
  const l = labelValues(config, c.labels);
  if (plugin !== 'volume') {
    const p = registry[plugin]!;
    return [
      {
        name: l.job ?? c.name,
        plugin,
        tier: l.tier,
        origin: 'label',
        reason: `container ${c.name} (labels)`,
        container: c.name,
        stop: l.stop,
        order: l.order,
        targets: config.targets.map((t) => t.name),
        options: p.parseOptions({}, `container ${c.name} labels`),
        fullEvery: l.fullEvery,
      },
    ];
  }
  const vols = c.mounts.filter((m) => m.type === 'volume' && m.name && !ANONYMOUS.test(m.name) && !covered.has(m.name));
  if (vols.length === 0 && c.mounts.length === 0) throw new Error('label snapagent.plugin=volume: the container mounts no named volume');
  return vols.map((m) => {
    covered.add(m.name!);
    const name = l.job && vols.length === 1 ? l.job : m.name!;
    return volumeJob(config, registry, name, m.name!, l.tier, l.stop, l.order, `container ${c.name} (labels), mount ${m.destination}`, l.fullEvery);
  });
}

function volumeJob(config: Config, registry: PluginRegistry, name: string, volume: string, tier: string, stop: boolean, order: number, reason: string, every: string | undefined): Job {
  return {
    name,
    plugin: 'volume',
    tier,
    origin: 'label',
    reason,
    volume,
    stop,
    order,
    targets: config.targets.map((t) => t.name),
    options: registry.volume!.parseOptions({}, reason),
    fullEvery: every,
  };
}

/** Keeps the jobs named by --job and --tier; unknown names are an error. */
export function selectJobs(plan: Plan, names: string[], tier?: string): Job[] {
  let jobs = plan.jobs;
  if (names.length) {
    const missing = names.filter((n) => !jobs.some((j) => j.name === n));
    if (missing.length) throw new Error(`no job named ${missing.map((m) => `"${m}"`).join(', ')} in the plan (jobs: ${jobs.map((j) => j.name).join(', ') || 'none'})`);
    jobs = jobs.filter((j) => names.includes(j.name));
  }
  if (tier) jobs = jobs.filter((j) => j.tier === tier);
  return jobs;
}
