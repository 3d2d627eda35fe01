// The last run of each job on this host, kept in the agent's state dir: what the targets
// cannot tell (when a run was last attempted, whether it failed and why). One small file
// per job (<state>/runs/<host>--<job>.json, mode 0600), replaced atomically after every
// run, so jobs running in parallel or in two processes never overwrite each other.
// Committed backups (last success, sizes, counts) are read from the targets; the last
// success recorded here only stands in when a target cannot be read.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { BackupResult } from '../backup/backup-job.ts';
import { writeFileAtomic } from '../atomic-file.ts';
import { redactedJson } from '../log.ts';

export const RUN_STATE_FORMAT = 'snapagent.run-state/1';

const targetStateSchema = z.object({
  status: z.enum(['ok', 'failed']),
  error: z.string().optional(),
  /** The last backup committed to this target by this agent. */
  last_success_at: z.string().optional(),
  last_success_id: z.string().optional(),
  last_size: z.number().optional(),
});

export const jobStateSchema = z.object({
  format: z.literal(RUN_STATE_FORMAT),
  host: z.string(),
  job: z.string(),
  plugin: z.string(),
  tier: z.string(),
  /** The run id of the process that ran it (the `run` field of its log lines). */
  run: z.string(),
  last_attempt_at: z.string(),
  last_status: z.enum(['ok', 'failed']),
  last_duration_seconds: z.number(),
  last_error: z.string().optional(),
  last_hint: z.string().optional(),
  last_id: z.string().optional(),
  /** Failed runs since the last successful one. */
  failures_in_a_row: z.int().min(0),
  targets: z.record(z.string(), targetStateSchema),
});
export type JobState = z.infer<typeof jobStateSchema>;

function stateFile(stateDir: string, host: string, job: string): string {
  return path.join(stateDir, 'runs', `${host}--${job}.json`);
}

export async function readJobState(stateDir: string, host: string, job: string): Promise<JobState | undefined> {
  try {
    const res = jobStateSchema.safeParse(JSON.parse(await readFile(stateFile(stateDir, host, job), 'utf8')));
    return res.success ? res.data : undefined;
  } catch {
    return undefined; // none yet, or unreadable: the next run rewrites it
  }
}

/** Every job's last run on `host`, by job name. */
export async function readRunStates(stateDir: string, host: string): Promise<Map<string, JobState>> {
  const out = new Map<string, JobState>();
  const names = await readdir(path.join(stateDir, 'runs')).catch(() => [] as string[]);
  const prefix = `${host}--`;
  for (const n of names.filter((n) => n.startsWith(prefix) && n.endsWith('.json'))) {
    const st = await readJobState(stateDir, host, n.slice(prefix.length, -'.json'.length));
    if (st && st.host === host) out.set(st.job, st);
  }
  return out;
}

/**
 * Records one job's run. A failed run keeps each target's last success, and marks failed
 * the job's targets it did not report on (it failed before reaching them); a successful
 * run leaves the targets it did not use (`--target`) as they were.
 */
export async function recordRun(stateDir: string, host: string, r: BackupResult, run: string, jobTargets: string[]): Promise<JobState> {
  const prev = await readJobState(stateDir, host, r.job);
  const targets: JobState['targets'] = { ...prev?.targets };
  for (const name of new Set([...jobTargets, ...r.targets.map((t) => t.target)])) {
    const before = prev?.targets[name];
    const t = r.targets.find((x) => x.target === name);
    if (t?.status === 'ok') targets[name] = { status: 'ok', last_success_at: r.finished_at, last_success_id: r.id, last_size: r.size };
    else if (t || r.status === 'failed') targets[name] = { ...before, status: 'failed', error: t?.error ?? r.error };
  }
  const state: JobState = {
    format: RUN_STATE_FORMAT,
    host,
    job: r.job,
    plugin: r.plugin,
    tier: r.tier,
    run,
    last_attempt_at: r.started_at,
    last_status: r.status,
    last_duration_seconds: r.duration_seconds,
    last_error: r.error,
    last_hint: r.hint,
    last_id: r.id,
    failures_in_a_row: r.status === 'ok' ? 0 : (prev?.failures_in_a_row ?? 0) + 1,
    targets,
  };
  await mkdir(path.join(stateDir, 'runs'), { recursive: true, mode: 0o700 });
  await writeFileAtomic(stateFile(stateDir, host, r.job), redactedJson(state));
  return state;
}
