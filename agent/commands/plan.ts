// snapagent plan: what would be backed up, to where, and why.
import { ExitCode } from '../errors.ts';
import { buildPlan } from '../plan/plan.ts';
import { describePolicy } from '../catalog/retention.ts';
import { nextRun } from '../plan/schedule.ts';
import { openSession, output, setExit, table, type GlobalOptions } from './common.ts';
import { keepFor } from './prune.ts';

export async function planCommand(opts: GlobalOptions): Promise<void> {
  const s = openSession(opts);
  const plan = await buildPlan(s.config, s.docker);
  const doc = {
    config: s.config.source,
    host: s.config.host,
    targets: s.config.targets.map((t) => ({ name: t.name, type: t.type, location: t.type === 'local' ? t.path : t.remote })),
    tiers: Object.entries(s.config.tiers).map(([name, t]) => ({ name, schedule: t.schedule, next_run: nextRun(t.schedule, new Date()).toISOString(), keep: t.keep })),
    jobs: plan.jobs.map((j) => ({
      name: j.name,
      plugin: j.plugin,
      tier: j.tier,
      schedule: s.config.tiers[j.tier]?.schedule,
      keep: keepFor(s.config, j.name, j.tier).keep,
      volume: j.volume,
      container: j.container,
      stop: j.stop,
      order: j.order,
      targets: j.targets,
      reason: j.reason,
    })),
    problems: plan.problems,
  };
  output(s.json, doc, () => {
    const lines = [`config: ${s.config.source}   host: ${s.config.host}`];
    lines.push(`targets: ${doc.targets.map((t) => `${t.name} (${t.type} ${t.location})`).join(', ')}`);
    lines.push(`tiers: ${doc.tiers.map((t) => `${t.name} "${t.schedule}" (next ${t.next_run}, keep ${describePolicy(t.keep)})`).join(', ')}`);
    if (plan.jobs.length === 0) {
      lines.push('', 'no jobs: add jobs to the config, or label volumes/containers (e.g. docker volume create --label snapagent.tier=critical NAME)');
    } else {
      lines.push('', table([['JOB', 'PLUGIN', 'TIER', 'KEEP', 'SOURCE', 'STOP', 'TARGETS', 'WHY'], ...doc.jobs.map((j) => [j.name, j.plugin, j.tier, j.keep ? describePolicy(j.keep) : '-', j.volume ? `volume ${j.volume}` : `container ${j.container}`, j.stop ? 'yes' : 'no', j.targets.join(','), j.reason])]));
    }
    for (const p of plan.problems) lines.push(`problem: ${p.where}: ${p.message}`);
    return lines.join('\n');
  });
  if (plan.problems.length) setExit(ExitCode.usage);
}
