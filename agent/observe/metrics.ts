// The node_exporter textfile (docs/operations.md "Metrics"): one file for the host,
// rewritten whole from the targets' catalogs and the run state after every run (and
// after prune), so a run of some jobs never drops the other jobs' series. Replaced
// atomically: the collector reads the previous file or the new one, never a part.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/load.ts';
import type { ConfigContext } from '../context.ts';
import { writeFileAtomic } from '../atomic-file.ts';
import { redact } from '../log.ts';
import { gatherHealth, type Health, type KnownJob } from './health.ts';

type Labels = Record<string, string>;
type Series = { help: string; labels: readonly string[]; values: [Labels, number][] };

const seconds = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : undefined);

/** The exposition text for these jobs (HELP and TYPE lines, gauges only). */
export async function renderMetrics(health: Health): Promise<string> {
  const full = ['job', 'plugin', 'tier', 'target'] as const;
  const series: Record<string, Series> = {
    snapagent_last_success_timestamp_seconds: { help: 'Unix time the newest committed backup of the job on the target finished; 0 when there is none.', labels: full, values: [] },
    snapagent_last_attempt_timestamp_seconds: { help: "Unix time the job's last run started (successful or not).", labels: full, values: [] },
    snapagent_last_status: { help: "1 when the job's last run committed its backup to the target, 0 when it failed.", labels: full, values: [] },
    snapagent_last_duration_seconds: { help: "Duration of the job's last run in seconds.", labels: full, values: [] },
    snapagent_last_size_bytes: { help: 'Stored size (compressed) of the newest committed backup on the target.', labels: full, values: [] },
    snapagent_previous_size_bytes: { help: 'Stored size of the backup before the newest one (for size-drop alerts).', labels: full, values: [] },
    snapagent_last_represented_bytes: { help: 'Raw bytes of the data the newest committed backup represents (an incremental stores only what changed); compare this one for size-drop alerts.', labels: full, values: [] },
    snapagent_previous_represented_bytes: { help: 'Raw bytes of the data the backup before the newest one represents.', labels: full, values: [] },
    snapagent_last_incremental: { help: '1 when the newest committed backup is an incremental, 0 when it is a full.', labels: full, values: [] },
    snapagent_expected_interval_seconds: { help: "Longest interval between two runs of the job's tier schedule.", labels: full, values: [] },
    snapagent_backups: { help: 'Committed backups of the job kept on the target.', labels: ['job', 'target'], values: [] },
    snapagent_restore_drill_last_timestamp_seconds: { help: 'Unix time of the newest restore drill of the job from the target.', labels: full, values: [] },
    snapagent_restore_drill_last_status: { help: '1 when the newest restore drill passed, 0 when it failed.', labels: full, values: [] },
    snapagent_restore_drill_rto_seconds: { help: 'Seconds from the start of the newest restore drill to verified data (measured RTO).', labels: full, values: [] },
    snapagent_recovery_point_timestamp_seconds: { help: 'Unix time of the newest moment the job can be restored to from the target (with pitr: its newest dump and the oplog slices after it; else its newest backup\'s start). Alert on time() minus this: it keeps growing when the agent stops writing this file.', labels: full, values: [] },
    snapagent_recovery_point_age_seconds: { help: 'Age of that recovery point when this file was written (the RPO the job had then).', labels: full, values: [] },
    snapagent_pitr_slice_seconds: { help: 'Jobs with point-in-time recovery: seconds between two oplog slices (config pitr.slice_seconds).', labels: full, values: [] },
    snapagent_pitr_gap: { help: 'Jobs with point-in-time recovery: 1 when the stored oplog after the newest dump has a gap on the target (closed by the next backup), else 0.', labels: full, values: [] },
    snapagent_restore_drill_rpo_seconds: { help: 'Seconds between the newest moment the newest restore drill could restore to and its start (measured RPO; with pitr the oplog slices were replayed).', labels: full, values: [] },
    snapagent_target_up: { help: '1 when the target could be listed when this file was written, 0 when not.', labels: ['target'], values: [] },
  };
  const put = (name: string, labels: Labels, v: number | undefined) => {
    if (v !== undefined && Number.isFinite(v)) series[name]!.values.push([labels, v]);
  };
  for (const j of health.jobs) {
    for (const t of j.targets) {
      const l = { job: j.job, plugin: j.plugin, tier: j.tier, target: t.target };
      put('snapagent_last_success_timestamp_seconds', l, seconds(t.last_success_at) ?? 0);
      put('snapagent_last_attempt_timestamp_seconds', l, seconds(j.state?.last_attempt_at));
      put('snapagent_last_status', l, t.last_status && (t.last_status === 'ok' ? 1 : 0));
      put('snapagent_last_duration_seconds', l, j.state?.last_duration_seconds);
      put('snapagent_last_size_bytes', l, t.size);
      put('snapagent_previous_size_bytes', l, t.previous_size);
      put('snapagent_last_represented_bytes', l, t.represented_size);
      put('snapagent_previous_represented_bytes', l, t.previous_represented_size);
      put('snapagent_last_incremental', l, t.kind && (t.kind === 'incremental' ? 1 : 0));
      put('snapagent_expected_interval_seconds', l, j.expected_interval_seconds);
      put('snapagent_backups', { job: j.job, target: t.target }, t.backups);
      put('snapagent_restore_drill_last_timestamp_seconds', l, seconds(t.drill?.at));
      put('snapagent_restore_drill_last_status', l, t.drill && (t.drill.status === 'ok' ? 1 : 0));
      put('snapagent_restore_drill_rto_seconds', l, t.drill?.rto_seconds);
      put('snapagent_restore_drill_rpo_seconds', l, t.drill?.rpo_seconds);
      const rp = t.recovery_point && Date.parse(t.recovery_point.at);
      put('snapagent_recovery_point_timestamp_seconds', l, rp && rp / 1000);
      put('snapagent_recovery_point_age_seconds', l, rp && Math.max(0, (health.at ?? Date.now()) - rp) / 1000);
      if (j.pitr) {
        put('snapagent_pitr_slice_seconds', l, j.pitr.slice_seconds);
        put('snapagent_pitr_gap', l, t.recovery_point ? (t.recovery_point.gap ? 1 : 0) : undefined);
      }
    }
  }
  for (const t of health.targets) put('snapagent_target_up', { target: t.name }, t.reachable ? 1 : 0);

  const { Registry, Gauge } = await import('prom-client'); // loaded only when metrics are written
  const registry = new Registry();
  for (const [name, s] of Object.entries(series)) {
    if (s.values.length === 0) continue;
    const g = new Gauge({ name, help: s.help, labelNames: s.labels, registers: [registry] });
    for (const [labels, v] of s.values) g.set(labels, v);
  }
  return registry.metrics();
}

/** Where the metrics file goes, or undefined when metrics are not configured. */
export function metricsFile(config: Config): string | undefined {
  return config.metrics && path.join(config.metrics.textfile_dir, config.metrics.file);
}

/**
 * Rewrites the metrics file from the targets and the run state alone (after backup,
 * prune, verify...). Returns its path, or undefined when metrics are not configured.
 */
export async function writeMetrics(ctx: ConfigContext, known: KnownJob[] = []): Promise<string | undefined> {
  const file = metricsFile(ctx.config);
  if (!file) return undefined;
  const text = await renderMetrics(await gatherHealth(ctx, known));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, redact(text), { mode: 0o644 });
  return file;
}
