// Point-in-time recovery, what a restore and `status` read: which backup and which
// slices bring a job back to a given time (planPointInTime), and how recent the newest
// restorable point is (recoveryPoint). Pure but for reading the target.
import { type Listed } from '../catalog/manifest.ts';
import type { Keyring } from '../catalog/signing.ts';
import { RefusedError } from '../errors.ts';
import type { LogPosition, PointInTime } from '../plugin/contract.ts';
import type { Target } from '../targets/target.ts';
import { comparePos, coverage, posTime, readSlices, sliceId, showPos, type Coverage, type ListedSlice, type ReplayBase } from './slices.ts';

/** A restore to a time the stored log does not reach without a gap. */
export class PointInTimeGapError extends RefusedError {}

export interface PointInTimePlan {
  base: Listed;
  at: Date;
  /** Replay the log after the base's position up to this one (inclusive). */
  after: LogPosition;
  until: LogPosition;
  slices: ListedSlice[];
  /** Every moment up to this one was restorable from this base. */
  coveredUntil: number;
}

/** Every entry of the second `at` falls in (oplog times have whole seconds). */
export function untilPosition(at: Date): LogPosition {
  return { t: Math.floor(at.getTime() / 1000), i: 0xffffffff };
}

const baseOf = (b: Listed, pitr: PointInTime): ReplayBase | undefined => {
  const p = pitr.positionOf(b.manifest.stats);
  return p && { id: b.manifest.id, position: p };
};

/** The slices of one job on one target that may continue a chain from `base`. */
export async function slicesAfter(target: Target, host: string, job: string, keys: Keyring, base: ReplayBase) {
  return (await readSlices(target, host, job, keys, sliceId(new Date(base.position.t * 1000)))).slices;
}

/**
 * The newest trusted backup of `job` whose data is as of `at` or earlier, and the
 * slices on its target that replay the log from it to `at` without a gap. Tries each
 * target holding such a backup; refuses (PointInTimeGapError) naming how far the stored
 * log reaches when none covers `at`.
 */
export async function planPointInTime(backups: Listed[], job: string, at: Date, pitr: PointInTime, keys: Keyring): Promise<PointInTimePlan> {
  const candidates = backups
    .filter((b) => b.manifest.job === job && b.signature.state === 'signed')
    .map((b) => ({ b, base: baseOf(b, pitr) }))
    .filter((c): c is { b: Listed; base: ReplayBase } => c.base !== undefined && c.base.position.t * 1000 <= at.getTime());
  if (candidates.length === 0) {
    throw new PointInTimeGapError(`job ${job} has no backup with an oplog position at or before ${at.toISOString()} to replay from`, 'see `snapagent list --job ' + job + '`: a point-in-time restore starts from a dump taken with --oplog (a replica-set member)');
  }
  // newest base first; each target's slices read once, from its oldest candidate on
  candidates.sort((x, y) => comparePos(y.base.position, x.base.position));
  const byTarget = new Map<Target, ListedSlice[]>();
  const reached = new Map<Target, string>();
  for (const { b, base } of candidates) {
    if (!byTarget.has(b.target)) {
      const oldest = candidates.filter((c) => c.b.target === b.target).at(-1)!.base;
      byTarget.set(b.target, await slicesAfter(b.target, b.manifest.host, job, keys, oldest));
    }
    const cov = coverage(base, byTarget.get(b.target)!, at.getTime());
    if (cov.until >= at.getTime()) {
      return { base: b, at, after: base.position, until: untilPosition(at), slices: cov.slices, coveredUntil: cov.until };
    }
    if (!reached.has(b.target)) reached.set(b.target, describeShort(b, cov));
  }
  throw new PointInTimeGapError(
    `job ${job}: ${at.toISOString()} is not covered without a gap: ${[...reached.values()].join('; ')}`,
    'restore to a time the stored oplog reaches (`snapagent status` shows the newest restorable point), or the dump alone with --id',
  );
}

function describeShort(b: Listed, cov: Coverage): string {
  const upTo = new Date(cov.until).toISOString();
  const gap = cov.gap ? `, then a gap: the log after ${showPos(cov.gap.after)} is missing${cov.gap.next ? ` up to ${showPos(cov.gap.next)}` : ''}` : '';
  return `from backup ${b.manifest.id} on target ${b.target.name} the slices reach ${upTo}${gap}`;
}

export interface RecoveryPoint {
  /** The newest moment the job can be restored to from this target. */
  at: string;
  /** "pitr": a dump and the oplog slices after it; "backup": a backup alone. */
  kind: 'pitr' | 'backup';
  base: string;
  /** PITR: slices in the chain, and the gap that stops it short, if any. */
  slices?: number;
  gap?: { after: string; next?: string };
}

/** The newest restorable point of a job on one target: for a plugin with pitr, the
 * chain of slices from its newest backup with a log position; else its newest backup's
 * start. Undefined: no trusted backup. */
export async function recoveryPoint(backups: Listed[], pitr: PointInTime | undefined, keys: Keyring): Promise<RecoveryPoint | undefined> {
  const signed = backups.filter((b) => b.signature.state === 'signed');
  if (signed.length === 0) return undefined;
  const newestStart = signed.reduce((a, b) => (Date.parse(b.manifest.started_at) > Date.parse(a.manifest.started_at) ? b : a));
  const plain: RecoveryPoint = { at: newestStart.manifest.started_at, kind: 'backup', base: newestStart.manifest.id };
  if (!pitr) return plain;
  let best: { b: Listed; base: ReplayBase } | undefined;
  for (const b of signed) {
    const base = baseOf(b, pitr);
    if (base && (!best || comparePos(base.position, best.base.position) > 0)) best = { b, base };
  }
  if (!best) return plain;
  const cov = coverage(best.base, await slicesAfter(best.b.target, best.b.manifest.host, best.b.manifest.job, keys, best.base));
  const point: RecoveryPoint = { at: new Date(cov.until).toISOString(), kind: 'pitr', base: best.b.manifest.id, slices: cov.slices.length, ...(cov.gap ? { gap: { after: posTime(cov.gap.after), ...(cov.gap.next ? { next: posTime(cov.gap.next) } : {}) } } : {}) };
  return Date.parse(point.at) >= Date.parse(plain.at) ? point : plain;
}
