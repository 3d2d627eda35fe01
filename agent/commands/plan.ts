// snapagent plan: what would be backed up, to where, and why (agent/plan/describe.ts).
import { ExitCode } from '../errors.ts';
import { describePolicy } from '../catalog/retention.ts';
import { describePlan } from '../plan/describe.ts';
import { openSession, output, setExit, table, type GlobalOptions } from './common.ts';

export async function planCommand(opts: GlobalOptions): Promise<void> {
  const s = openSession(opts);
  const doc = await describePlan(s, s.docker);
  output(s.json, doc, () => {
    const lines = [`config: ${doc.config}   host: ${doc.host}`];
    lines.push(`targets: ${doc.targets.map((t) => `${t.name} (${t.type} ${t.location})`).join(', ')}`);
    lines.push(`tiers: ${doc.tiers.map((t) => `${t.name} "${t.schedule}" (next ${t.next_run}, keep ${describePolicy(t.keep)})`).join(', ')}`);
    if (doc.jobs.length === 0) {
      lines.push('', 'no jobs: add jobs to the config, or label volumes/containers (e.g. docker volume create --label snapagent.tier=critical NAME)');
    } else {
      lines.push('', table([['JOB', 'PLUGIN', 'TIER', 'KEEP', 'BACKUPS', 'SOURCE', 'STOP', 'TARGETS', 'WHY'], ...doc.jobs.map((j) => [j.name, j.plugin, j.tier, j.keep ? describePolicy(j.keep) : '-', [j.full_every ? `full every ${j.full_every}, incremental between` : 'full', j.pitr ? `+ oplog every ${j.pitr.slice_seconds}s (pitr ${j.pitr.keep})` : ''].filter(Boolean).join(' '), j.volume ? `volume ${j.volume}` : `container ${j.container}`, j.stop ? 'yes' : 'no', j.targets.join(','), j.reason])]));
    }
    for (const p of doc.problems) lines.push(`problem: ${p.where}: ${p.message}`);
    return lines.join('\n');
  });
  if (doc.problems.length) setExit(ExitCode.usage);
}
