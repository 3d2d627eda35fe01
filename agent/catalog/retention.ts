// Which backups a retention policy keeps: restic's calendar semantics. Walking from the
// newest backup to the oldest, a `daily: N` rule keeps the first (newest) backup of each
// day it meets until it has kept N, so "the newest backup of each of the last N days that
// have one"; weekly (ISO weeks), monthly and yearly likewise, `last: N` the N newest, and
// `within: D` every backup started less than D before the newest one. A backup is kept
// when any rule keeps it, and the newest one is always kept. Days, weeks, months and years
// are those of the host's local zone (process TZ), as restic and cron do. Pure: no I/O.
import type { Config } from '../config/load.ts';
import { DURATION, type KeepPolicy } from '../config/schema.ts';

export interface Dated {
  id: string;
  /** When the backup started (the manifest's started_at). */
  startedAt: Date;
}

export interface Decision<T extends Dated> {
  item: T;
  keep: boolean;
  /** Why it stays (each rule that keeps it), or why it goes. */
  reasons: string[];
}

type Calendar = 'daily' | 'weekly' | 'monthly' | 'yearly';

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The calendar bucket of `t` in the local zone: "2026-11-21", "2026-W47", "2026-11", "2026". */
export function bucket(rule: Calendar, t: Date): string {
  const y = t.getFullYear();
  const m = t.getMonth() + 1;
  switch (rule) {
    case 'daily':
      return `${y}-${pad(m)}-${pad(t.getDate())}`;
    case 'weekly':
      return isoWeek(y, m, t.getDate());
    case 'monthly':
      return `${y}-${pad(m)}`;
    case 'yearly':
      return String(y);
  }
}

// ISO 8601 week of a calendar date: weeks start on Monday, week 1 holds the year's first
// Thursday (so 2027-01-01, a Friday, is in 2026-W53). Computed on the civil date, in UTC
// arithmetic, so DST and zone offsets cannot move a day into another week.
function isoWeek(y: number, m: number, d: number): string {
  const day = new Date(Date.UTC(y, m - 1, d));
  const dow = day.getUTCDay() || 7; // Monday 1 .. Sunday 7
  day.setUTCDate(day.getUTCDate() + 4 - dow); // the Thursday of this week decides its year
  const year = day.getUTCFullYear();
  const week = Math.floor((day.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 / 7) + 1;
  return `${year}-W${pad(week)}`;
}

/** `from` minus a duration: years, months and days on the local calendar (like restic), hours as elapsed time. */
export function subtractDuration(from: Date, duration: string): Date {
  if (!DURATION.test(duration)) throw new Error(`within: "${duration}": expected a duration such as "36h", "7d", "2w", "1m" (months), "1y" or "1y6m"`);
  const n = { y: 0, m: 0, w: 0, d: 0, h: 0 };
  for (const [, count, unit] of duration.matchAll(/(\d+)([hdwmy])/g)) n[unit as keyof typeof n] += Number(count);
  const t = new Date(from);
  t.setFullYear(t.getFullYear() - n.y, t.getMonth() - n.m, t.getDate() - n.d - 7 * n.w);
  return new Date(t.getTime() - n.h * 3_600_000);
}

/** True when the policy has no rule that keeps anything: such a policy keeps everything. */
export function emptyPolicy(keep: KeepPolicy): boolean {
  return !keep.within && !(['last', 'daily', 'weekly', 'monthly', 'yearly'] as const).some((r) => (keep[r] ?? 0) > 0);
}

/** A short human form of a policy: "daily 30, within 7d". */
export function describePolicy(keep: KeepPolicy): string {
  const parts = (['last', 'daily', 'weekly', 'monthly', 'yearly'] as const).filter((r) => (keep[r] ?? 0) > 0).map((r) => `${r} ${keep[r]}`);
  if (keep.within) parts.push(`within ${keep.within}`);
  return parts.join(', ') || 'keep everything';
}

/** Applies `keep` to one job's backups on one target; decisions come newest first. */
export function applyPolicy<T extends Dated>(items: T[], keep: KeepPolicy): Decision<T>[] {
  const sorted = [...items].sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime() || b.id.localeCompare(a.id));
  const newest = sorted[0];
  if (!newest) return [];
  if (emptyPolicy(keep)) return sorted.map((item) => ({ item, keep: true, reasons: ['the policy has no rule: everything is kept'] }));
  const left: Record<Calendar | 'last', number> = { last: keep.last ?? 0, daily: keep.daily ?? 0, weekly: keep.weekly ?? 0, monthly: keep.monthly ?? 0, yearly: keep.yearly ?? 0 };
  const seen: Partial<Record<Calendar, string>> = {};
  const cutoff = keep.within ? subtractDuration(newest.startedAt, keep.within) : undefined;
  return sorted.map((item, i) => {
    const reasons: string[] = [];
    if (i === 0) reasons.push('newest backup');
    if (left.last > 0) {
      left.last--;
      reasons.push(`last ${keep.last}`);
    }
    for (const rule of ['daily', 'weekly', 'monthly', 'yearly'] as const) {
      if (left[rule] <= 0) continue;
      const b = bucket(rule, item.startedAt);
      if (b === seen[rule]) continue;
      seen[rule] = b;
      left[rule]--;
      reasons.push(`${rule} ${b}`);
    }
    if (cutoff && item.startedAt.getTime() > cutoff.getTime()) reasons.push(`within ${keep.within}`);
    if (reasons.length > 0) return { item, keep: true, reasons };
    return { item, keep: false, reasons: [`kept by no rule (${describePolicy(keep)})`] };
  });
}

/** The job's policy: its own `keep` in the config, else its tier's (config job, else `tier`). */
export function keepFor(config: Config, job: string, tier: string | undefined): { keep?: KeepPolicy; tier?: string } {
  const j = config.jobs.find((x) => x.name === job);
  if (j?.keep) return { keep: j.keep, tier: j.tier };
  const t = j?.tier ?? tier;
  return { keep: t ? config.tiers[t]?.keep : undefined, tier: t };
}
