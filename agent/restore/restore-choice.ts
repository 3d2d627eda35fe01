// Which backups a restore takes: one job's (an id, or the latest), the latest of every
// job, each optionally at or before a point in time (--before), and in which order a
// whole host is brought back (volumes before datastores). Pure: no I/O.
import { UsageError } from '../errors.ts';
import { newer, type Listed } from '../catalog/manifest.ts';
import type { Job } from '../plugin/contract.ts';

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const COMPACT = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z)$/i;

/** Parses --before: ISO 8601 with or without a zone (Z, +01:00, -0500). Without a
 * zone the time is this host's local time ($TZ); a date alone means its midnight.
 * The compact form of backup ids (20261121T020000Z) is accepted too. */
export function parseBefore(text: string, flag = '--before'): Date {
  const c = COMPACT.exec(text.trim());
  const m = ISO.exec(c ? `${c[1]}-${c[2]}-${c[3]}T${c[4]}:${c[5]}:${c[6]}Z` : text.trim());
  const bad = () =>
    new UsageError(
      `${flag} "${text}": expected an ISO 8601 time such as 2026-11-21T02:30:00Z, 2026-11-21T03:30:00+01:00 or 2026-11-21 02:30 (local time)`,
      'a time without a zone is this host\'s local time; a date alone means its midnight',
    );
  if (!m) throw bad();
  const [y, mo, d, h = '0', mi = '0', s = '0', frac = '0', zone] = m.slice(1) as string[];
  const n = { y: Number(y), mo: Number(mo), d: Number(d), h: Number(h), mi: Number(mi), s: Number(s), ms: Math.floor(Number(`0.${frac}`) * 1000) };
  if (n.mo < 1 || n.mo > 12 || n.d < 1 || n.d > 31 || n.h > 23 || n.mi > 59 || n.s > 59) throw bad();
  let at: Date;
  if (zone) {
    const off = zone.toUpperCase() === 'Z' ? 0 : offsetMinutes(zone);
    if (Number.isNaN(off)) throw bad();
    at = new Date(Date.UTC(n.y, n.mo - 1, n.d, n.h, n.mi, n.s, n.ms) - off * 60_000);
  } else {
    at = new Date(n.y, n.mo - 1, n.d, n.h, n.mi, n.s, n.ms);
  }
  // 2026-02-31 would roll over into March: refuse instead.
  const check = zone ? new Date(Date.UTC(n.y, n.mo - 1, n.d)) : at;
  if (Number.isNaN(at.getTime()) || (zone ? check.getUTCDate() : check.getDate()) !== n.d) throw bad();
  return at;
}

function offsetMinutes(zone: string): number {
  const m = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone);
  if (!m) return NaN;
  const [hh, mm] = [Number(m[2]), Number(m[3] ?? 0)];
  if (hh > 14 || mm > 59) return NaN;
  return (m[1] === '-' ? -1 : 1) * (hh * 60 + mm);
}

/** A backup's point in time: when it started (the data it holds is from then on). */
export function backupTime(b: Listed): number {
  return Date.parse(b.manifest.started_at);
}

/** The backups at or before `before` (all of them without it). */
export function atOrBefore(backups: Listed[], before?: Date): Listed[] {
  return before ? backups.filter((b) => backupTime(b) <= before.getTime()) : backups;
}

const newest = (list: Listed[]): Listed => list.reduce(newer);

function oldest(list: Listed[]): Listed {
  return list.reduce((a, b) => (backupTime(b) < backupTime(a) ? b : a));
}

/** One job's backup: `id`, or the newest (at or before `before`). */
export function pickOne(backups: Listed[], job: string, id = 'latest', before?: Date): Listed {
  const mine = backups.filter((b) => b.manifest.job === job);
  if (mine.length === 0) throw new UsageError(`no committed backup of job "${job}"`, 'see `snapagent list` for what the targets hold');
  if (id === 'latest') {
    const eligible = atOrBefore(mine, before);
    if (eligible.length === 0) {
      const first = oldest(mine);
      throw new UsageError(`job "${job}" has no committed backup at or before ${before!.toISOString()}`, `its oldest is ${first.manifest.id} (started ${first.manifest.started_at})`);
    }
    return newest(eligible);
  }
  const hit = mine.find((b) => b.manifest.id === id);
  if (!hit) throw new UsageError(`job "${job}" has no committed backup "${id}"`, `latest is ${newest(mine).manifest.id}; see \`snapagent list --job ${job}\``);
  return hit;
}

export interface HostChoice {
  chosen: Listed[];
  /** Jobs that have backups, but none at or before `before`. */
  skipped: { job: string; plugin: string; oldest: string }[];
}

/** The newest backup of every job (at or before `before`), by job name. */
export function latestPerJob(backups: Listed[], before?: Date): HostChoice {
  const jobs = [...new Set(backups.map((b) => b.manifest.job))].sort();
  const out: HostChoice = { chosen: [], skipped: [] };
  for (const job of jobs) {
    const mine = backups.filter((b) => b.manifest.job === job);
    const eligible = atOrBefore(mine, before);
    if (eligible.length) out.chosen.push(newest(eligible));
    else out.skipped.push({ job, plugin: mine[0]!.manifest.plugin, oldest: oldest(mine).manifest.id });
  }
  return out;
}

/** Whole-host order: volumes first (the stack's containers start on restored data),
 * then datastores, which restore into running containers; each by the job's `order`
 * (config or snapagent.order label), then name. */
export function restoreOrder(chosen: Listed[], planned: Job[]): Listed[] {
  const order = (l: Listed) => planned.find((j) => j.name === l.manifest.job)?.order ?? 0;
  const phase = (l: Listed) => (l.manifest.plugin === 'volume' ? 0 : 1);
  return [...chosen].sort((a, b) => phase(a) - phase(b) || order(a) - order(b) || a.manifest.job.localeCompare(b.manifest.job));
}
