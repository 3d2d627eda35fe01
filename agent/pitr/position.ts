// Log positions (MongoDB: an oplog entry's timestamp, {t: seconds, i: ordinal}): order
// and display. No dependencies, so that plugins may use it (through agent/plugin/index.ts)
// without loading what the slices need.
import type { LogPosition } from '../plugin/contract.ts';

/** Sort order of two positions: negative when `a` is before `b`. */
export const comparePos = (a: LogPosition, b: LogPosition): number => a.t - b.t || a.i - b.i;
/** A position's second, as an ISO 8601 time. */
export const posTime = (p: LogPosition): string => new Date(p.t * 1000).toISOString();
/** A position for messages: its time and its exact value. */
export const showPos = (p: LogPosition): string => `${posTime(p)} (${p.t}:${p.i})`;
