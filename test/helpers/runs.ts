// What the e2e tests ask of a CLI run again and again: that it exits as expected (the
// output in the failure message), what each job's result was, how many backups a target
// lists, and that a restore brings a volume back identical.
import assert from 'node:assert/strict';
import { snapagent, type CliResult } from './harness.ts';
import { snapshot, type Snapshot } from './tree.ts';

/** One job's entry in `backup --json` results. */
export interface JobResult {
  job: string;
  status: string;
  id?: string;
  error?: string;
  hint?: string;
  targets?: { target: string; status: string; error?: string }[];
  [k: string]: any;
}

/** Runs `snapagent ...args`, asserts the exit code (default 0) and returns the result. */
export async function expectRun(args: string[], env: Record<string, string> = {}, code = 0): Promise<CliResult> {
  const r = await snapagent(args, env);
  assert.equal(r.code, code, `snapagent ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  return r;
}

/** The results of a `--json` backup or restore, by job name. */
export function byJob(r: CliResult): Record<string, JobResult> {
  return Object.fromEntries((r.json?.results ?? []).map((x: JobResult) => [x.job, x]));
}

/** The result of `job` in a `--json` backup or restore (fails when there is none). */
export function jobResult(r: CliResult, job: string): JobResult {
  const x = byJob(r)[job];
  assert.ok(x, `no result for job ${job}:\n${r.stdout}`);
  return x;
}

/** "<job> <status>" for each result, in the order printed. */
export function statuses(r: CliResult): string[] {
  return (r.json?.results ?? []).map((x: JobResult) => `${x.job} ${x.status}`);
}

/** The jobs whose result is "failed". */
export function failedJobs(r: CliResult): string[] {
  return (r.json?.results ?? []).filter((x: JobResult) => x.status === 'failed').map((x: JobResult) => x.job);
}

/** How many committed backups `list` shows (of one job when given). */
export async function backupCount(config: string, opts: { job?: string; env?: Record<string, string> } = {}): Promise<number> {
  const r = await expectRun(['list', '--config', config, ...(opts.job ? ['--job', opts.job] : []), '--json'], opts.env);
  return r.json.backups.length;
}

export interface RestoreOptions {
  /** Restore into the job's own volume (no --to-volume); `into` must be that volume. */
  inPlace?: boolean;
  id?: string;
  env?: Record<string, string>;
  args?: string[];
  /** Compare only the files' contents (not modes, owners, times). */
  hashesOnly?: boolean;
}

/**
 * `restore --job <job> --to-volume <into>` (or in place), exit 0, and `into` then equals
 * `expected`. Returns the run.
 */
export async function restoresIdentical(config: string, job: string, into: string, expected: Snapshot, opts: RestoreOptions = {}): Promise<CliResult> {
  const r = await expectRun(['restore', '--config', config, '--job', job, ...(opts.id ? ['--id', opts.id] : []), ...(opts.inPlace ? [] : ['--to-volume', into]), ...(opts.args ?? []), '--json'], opts.env);
  const got = await snapshot(into);
  if (opts.hashesOnly) assert.deepEqual(got.hashes, expected.hashes);
  else assert.deepEqual(got, expected);
  return r;
}
