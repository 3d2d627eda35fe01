// The run object of one backup: what its steps (backup-job.ts) share and fill in. Its
// type says how far the run got: BackupRun (started) → PreparedRun (lock held, targets
// checked, id chosen) → ProducingRun (the plugin's stream is open).
import type { Context } from '../context.ts';
import type { Listed, Manifest } from '../catalog/manifest.ts';
import type { HostKey } from '../catalog/signing.ts';
import { errorMessage, SnapError } from '../errors.ts';
import { log, type Logger } from '../log.ts';
import type { Recipients } from '../pipeline/age.ts';
import type { BackupStream, DatastorePlugin, IncrementalBase, Job, PluginContext } from '../plugin/contract.ts';
import type { Target } from '../targets/target.ts';

export interface TargetOutcome {
  target: string;
  status: 'ok' | 'failed';
  error?: string;
  /** What to do about the failure (e.g. fix the remote's credentials). */
  hint?: string;
}

export interface BackupResult {
  job: string;
  plugin: string;
  tier: string;
  status: 'ok' | 'failed';
  started_at: string;
  finished_at: string;
  id?: string;
  size?: number;
  raw_size?: number;
  sha256?: string;
  /** "full" or "incremental" (plugins that take increments). */
  kind?: 'full' | 'incremental';
  /** An incremental: the backups it depends on, oldest first. */
  depends_on?: string[];
  duration_seconds: number;
  timings?: Manifest['timings'];
  targets: TargetOutcome[];
  error?: string;
  hint?: string;
}

export interface BackupRun {
  readonly ctx: Context;
  readonly job: Job;
  readonly log: Logger;
  /** What the caller gets back; the steps fill it in. */
  readonly result: BackupResult;
  /** When the backup started: set again once the job's lock is held (the wait is not
   * part of the backup). */
  started: Date;
  /** What to undo when the run ends, whatever happened; run last first. */
  readonly undo: (() => Promise<void>)[];
}

export interface PreparedRun extends BackupRun {
  readonly plugin: DatastorePlugin;
  /** What the plugin is handed (its signal is the run's `abort` once data flows). */
  readonly pluginCtx: PluginContext;
  /** The targets that answered: the backup goes to these. */
  readonly targets: Target[];
  readonly id: string;
  /** The backup's directory in every target: <host>/<job>/<id>. */
  readonly dir: string;
  /** Set when backups are encrypted (age). */
  readonly recipients?: Recipients;
  readonly signer: HostKey;
  /** The committed backup an incremental builds on (absent: a full). */
  readonly base?: IncrementalBase;
  /** The base's chain and the base, oldest first: what depends_on may name. */
  readonly baseChain: Listed[];
}

export interface ProducingRun extends PreparedRun {
  readonly stream: BackupStream;
  /** The artifact's file name and its key in every target. */
  readonly artifactName: string;
  readonly key: string;
  /** The run's own cancellation: follows the caller's signal while the data flows, and
   * stops every part of the stream when one of them fails. */
  readonly abort: AbortController;
  /** Stops following the caller's signal (idempotent). */
  readonly unfollow: () => void;
  /** performance.now() when the plugin was asked for its stream, and when it had it. */
  readonly askedAt: number;
  readonly openedAt: number;
}

export function startRun(ctx: Context, job: Job): BackupRun {
  const started = new Date();
  return {
    ctx,
    job,
    log: log.child({ job: job.name }),
    result: { job: job.name, plugin: job.plugin, tier: job.tier, status: 'failed', started_at: started.toISOString(), finished_at: '', duration_seconds: 0, targets: [] },
    started,
    undo: [],
  };
}

/** The run failed as a whole: `err` says why. */
export function failRun(run: BackupRun, err: unknown): void {
  run.result.status = 'failed';
  run.result.error = errorMessage(err);
  run.result.hint = err instanceof SnapError ? err.hint : undefined;
}

/** Undoes what the run set up (last first) and records when it ended. */
export async function endRun(run: BackupRun): Promise<BackupResult> {
  try {
    for (const undo of run.undo.reverse()) await undo();
  } finally {
    const finished = new Date();
    run.result.finished_at = finished.toISOString();
    run.result.duration_seconds = (finished.getTime() - run.started.getTime()) / 1000;
  }
  return run.result;
}
