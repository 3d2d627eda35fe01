// Tier schedules: standard 5-field cron expressions (an optional 6th leading field for
// seconds), evaluated in the host's local time zone like cron itself unless a zone is
// given. Pure functions: the daemon (node-cron) fires the schedules; these compute slots,
// next runs and the expected interval that metrics and `status` compare against.
import { CronExpressionParser } from 'cron-parser';

export interface ScheduleOptions {
  /** IANA zone, e.g. "Europe/Paris"; default: the process's local zone. */
  tz?: string;
}

function parse(expr: string, currentDate: Date, o: ScheduleOptions = {}) {
  return CronExpressionParser.parse(expr, { currentDate, tz: o.tz, strict: false });
}

/** undefined when `expr` is a valid schedule, else what is wrong with it. */
export function scheduleError(expr: string, o: ScheduleOptions = {}): string | undefined {
  const fields = expr.trim().split(/\s+/);
  if (!expr.trim().startsWith('@') && (fields.length < 5 || fields.length > 6)) {
    return `expected 5 fields "minute hour day-of-month month day-of-week" (or 6 with seconds first), got ${fields.length}`;
  }
  try {
    parse(expr, new Date(), o).next();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The first scheduled time strictly after `after`. */
export function nextRun(expr: string, after: Date, o: ScheduleOptions = {}): Date {
  return parse(expr, after, o).next().toDate();
}

/** The latest scheduled time at or before `at` (the slot a run at `at` belongs to). */
export function slotAt(expr: string, at: Date, o: ScheduleOptions = {}): Date {
  // prev() is strictly before currentDate: start one millisecond later to include `at`.
  return parse(expr, new Date(at.getTime() + 1), o).prev().toDate();
}

/** Scheduled times in (from, to], oldest first, at most `limit` of them (the newest). */
export function slotsBetween(expr: string, from: Date, to: Date, o: ScheduleOptions = {}, limit = 1000): Date[] {
  const it = parse(expr, new Date(to.getTime() + 1), o);
  const out: Date[] = [];
  while (out.length < limit) {
    const d = it.prev().toDate();
    if (d.getTime() <= from.getTime()) break;
    out.push(d);
  }
  return out.reverse();
}

/**
 * The longest gap between two consecutive runs over the next `sample` runs after `from`
 * (monthly schedules vary from 28 to 31 days, DST shifts daily ones by an hour): the
 * interval after which a backup is late for sure.
 */
export function expectedIntervalSeconds(expr: string, from = new Date(), o: ScheduleOptions = {}, sample = 13): number {
  const it = parse(expr, from, o);
  let prev = it.next().toDate().getTime();
  let longest = 0;
  for (let i = 0; i < sample; i++) {
    const next = it.next().toDate().getTime();
    longest = Math.max(longest, next - prev);
    prev = next;
  }
  return Math.round(longest / 1000);
}
