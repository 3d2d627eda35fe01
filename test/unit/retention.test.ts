// Retention (agent/catalog/retention.ts) over years of synthetic backup dates, in several host
// zones (DST changes, a fall-back hour repeated, a zone that skipped a whole day, a zone
// whose DST changed at midnight), against an independent oracle built on Intl instead of
// the Date getters the implementation uses.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { KeepPolicy } from '../../agent/config/schema.ts';
import { applyPolicy, bucket, describePolicy, subtractDuration } from '../../agent/catalog/retention.ts';

const ORIGINAL_TZ = process.env.TZ;
function inZone(tz: string): void {
  process.env.TZ = tz; // Node re-reads TZ when it is assigned
}

interface B {
  id: string;
  startedAt: Date;
}
const at = (iso: string, n = 0): B => ({ id: `b${n}-${iso}`, startedAt: new Date(iso) });
const kept = (items: B[], keep: KeepPolicy) => applyPolicy(items, keep).filter((d) => d.keep).map((d) => d.item.startedAt.toISOString());

// A small deterministic PRNG, so failures reproduce.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

// ---- the oracle: "the newest backup of each of the N newest buckets that have one" ----
const formats = new Map<string, Intl.DateTimeFormat>();
function civil(t: Date, tz: string): { y: number; m: number; d: number } {
  if (!formats.has(tz)) formats.set(tz, new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: 'numeric', day: 'numeric' }));
  const parts = Object.fromEntries(formats.get(tz)!.formatToParts(t).map((p) => [p.type, p.value]));
  return { y: Number(parts.year), m: Number(parts.month), d: Number(parts.day) };
}
// ISO week by the ordinal-day formula (not the Thursday trick the implementation uses).
function oracleWeek(y: number, m: number, d: number): string {
  const leap = (yy: number) => (yy % 4 === 0 && yy % 100 !== 0) || yy % 400 === 0;
  const cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
  const ordinal = cum[m - 1]! + d + (m > 2 && leap(y) ? 1 : 0);
  const weekday = ((new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7) + 1;
  let week = Math.floor((ordinal - weekday + 10) / 7);
  let year = y;
  const weeksIn = (yy: number) => {
    const jan1 = new Date(Date.UTC(yy, 0, 1)).getUTCDay();
    return jan1 === 4 || (jan1 === 3 && leap(yy)) ? 53 : 52;
  };
  if (week < 1) week = weeksIn(--year);
  else if (week > weeksIn(y)) {
    week = 1;
    year++;
  }
  return `${year}-W${String(week).padStart(2, '0')}`;
}
function oracleBucket(rule: string, t: Date, tz: string): string {
  const { y, m, d } = civil(t, tz);
  if (rule === 'daily') return `${y}-${m}-${d}`;
  if (rule === 'weekly') return oracleWeek(y, m, d);
  if (rule === 'monthly') return `${y}-${m}`;
  return String(y);
}
function oracle(items: B[], keep: KeepPolicy, tz: string): Set<string> {
  const sorted = [...items].sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime());
  const out = new Set<string>([sorted[0]!.startedAt.toISOString()]);
  sorted.slice(0, keep.last ?? 0).forEach((b) => out.add(b.startedAt.toISOString()));
  for (const rule of ['daily', 'weekly', 'monthly', 'yearly'] as const) {
    const newestPerBucket = new Map<string, B>();
    for (const b of sorted) {
      const k = oracleBucket(rule, b.startedAt, tz);
      if (!newestPerBucket.has(k)) newestPerBucket.set(k, b);
    }
    [...newestPerBucket.values()].slice(0, keep[rule] ?? 0).forEach((b) => out.add(b.startedAt.toISOString()));
  }
  if (keep.within) {
    const cutoff = subtractDuration(sorted[0]!.startedAt, keep.within).getTime();
    sorted.filter((b) => b.startedAt.getTime() > cutoff).forEach((b) => out.add(b.startedAt.toISOString()));
  }
  return out;
}

describe('retention', () => {
  afterEach(() => {
    if (ORIGINAL_TZ === undefined) delete process.env.TZ;
    else process.env.TZ = ORIGINAL_TZ;
  });

  it('ISO weeks at year ends and the Sunday/Monday boundary, in the local zone', () => {
    inZone('UTC');
    const cases: [string, string][] = [
      ['2026-12-31T12:00:00Z', '2026-W53'], // Thursday: 2026 has 53 weeks
      ['2027-01-03T23:59:00Z', '2026-W53'], // Sunday
      ['2027-01-04T00:01:00Z', '2027-W01'], // Monday
      ['2024-12-30T12:00:00Z', '2025-W01'], // Monday before New Year
      ['2021-01-03T12:00:00Z', '2020-W53'],
      ['2028-02-29T12:00:00Z', '2028-W09'],
    ];
    for (const [iso, week] of cases) assert.equal(bucket('weekly', new Date(iso)), week, iso);
    inZone('America/New_York'); // Monday 00:30 UTC is still Sunday evening there
    assert.equal(bucket('weekly', new Date('2027-01-04T00:30:00Z')), '2026-W53');
    assert.equal(bucket('daily', new Date('2027-01-04T00:30:00Z')), '2027-01-03');
  });

  it('40 daily 02:00 backups across a DST change keep exactly the 30 newest', () => {
    inZone('Europe/Paris'); // DST starts 2026-03-29
    const days: B[] = [];
    for (let i = 0; i < 40; i++) {
      const local = new Date(2026, 2, 10 + i, 2, 0, 5); // 02:00:05 local (03:00:05 on the 29th)
      days.push({ id: `d${i}`, startedAt: local });
    }
    const d = applyPolicy(days, { daily: 30 });
    assert.equal(d.filter((x) => x.keep).length, 30);
    assert.deepEqual(d.filter((x) => !x.keep).map((x) => x.item.id), ['d9', 'd8', 'd7', 'd6', 'd5', 'd4', 'd3', 'd2', 'd1', 'd0']);
    assert.deepEqual(d[0]!.reasons, ['newest backup', `daily ${bucket('daily', days[39]!.startedAt)}`]);
    assert.match(d.at(-1)!.reasons[0]!, /^kept by no rule \(daily 30\)$/);
  });

  it('days are local days: around midnight and in a repeated fall-back hour', () => {
    inZone('America/New_York');
    // 23:30 and 00:30 local on consecutive days: the daily keeper is the newest of each local day
    const items = [at('2026-11-20T04:30:00Z'), at('2026-11-21T04:30:00Z'), at('2026-11-21T05:30:00Z'), at('2026-11-22T04:30:00Z')];
    // local: 11-19 23:30, 11-20 23:30, 11-21 00:30, 11-21 23:30: the 00:30 loses to 23:30 of its own day
    assert.deepEqual(kept(items, { daily: 2 }), ['2026-11-22T04:30:00.000Z', '2026-11-21T04:30:00.000Z']);
    inZone('Europe/Paris'); // 2026-10-25: 02:30 happens twice (00:30Z, then 01:30Z)
    const twice = [at('2026-10-24T00:30:00Z'), at('2026-10-25T00:30:00Z'), at('2026-10-25T01:30:00Z')];
    assert.deepEqual(kept(twice, { daily: 2 }), ['2026-10-25T01:30:00.000Z', '2026-10-24T00:30:00.000Z']);
  });

  it('a day a zone skipped (Samoa, 30 Dec 2011) and days without backups are not counted', () => {
    inZone('Pacific/Apia');
    const items = [at('2011-12-28T10:00:00Z'), at('2011-12-29T09:00:00Z'), at('2011-12-30T11:00:00Z')]; // local 28th, 29th, 31st
    assert.deepEqual(kept(items, { daily: 2 }), ['2011-12-30T11:00:00.000Z', '2011-12-29T09:00:00.000Z']);
    inZone('UTC');
    const sparse = Array.from({ length: 10 }, (_, i) => at(new Date(Date.UTC(2026, 0, 1 + 3 * i, 2)).toISOString(), i));
    assert.equal(kept(sparse, { daily: 5 }).length, 5, 'the last 5 days that have a backup, over 13 days');
  });

  it('monthly and yearly keep the newest of each month/year; weekly of each ISO week', () => {
    inZone('Europe/Paris');
    const daily: B[] = [];
    for (let t = new Date(2024, 0, 1, 2); t < new Date(2026, 5, 15); t = new Date(t.getFullYear(), t.getMonth(), t.getDate() + 1, 2)) daily.push({ id: t.toISOString(), startedAt: t });
    const newest = daily.at(-1)!.startedAt;
    const monthly = applyPolicy(daily, { monthly: 3 }).filter((d) => d.keep);
    assert.deepEqual(monthly.map((d) => d.item.startedAt.getTime()), [newest.getTime(), new Date(2026, 4, 31, 2).getTime(), new Date(2026, 3, 30, 2).getTime()]);
    assert.deepEqual(monthly.map((d) => d.reasons.at(-1)), ['monthly 2026-06', 'monthly 2026-05', 'monthly 2026-04']);
    const yearly = applyPolicy(daily, { yearly: 5 }).filter((d) => d.keep).map((d) => d.item.startedAt.getTime());
    assert.deepEqual(yearly, [newest.getTime(), new Date(2025, 11, 31, 2).getTime(), new Date(2024, 11, 31, 2).getTime()], 'only 3 years have a backup');
    const weekly = applyPolicy(daily, { weekly: 4 }).filter((d) => d.keep);
    assert.equal(weekly.length, 4);
    for (const d of weekly.slice(1)) assert.equal(d.item.startedAt.getDay(), 0, 'the newest of a full week is its Sunday');
  });

  it('matches the oracle over 4 years of irregular backups in many zones and policies', () => {
    const zones = ['UTC', 'Europe/Paris', 'America/New_York', 'Australia/Lord_Howe', 'Pacific/Apia', 'America/Sao_Paulo', 'Asia/Kolkata', 'Pacific/Chatham'];
    const policies: KeepPolicy[] = [
      { daily: 30 },
      { weekly: 4 },
      { monthly: 3 },
      { daily: 7, weekly: 4, monthly: 12, yearly: 3 },
      { last: 5, daily: 3 },
      { within: '10d', monthly: 2 },
      { within: '1m', yearly: 10 },
      { within: '36h', weekly: 10 },
      { daily: 400, weekly: 100 },
    ];
    const rand = rng(7);
    for (const tz of zones) {
      inZone(tz);
      const items: B[] = [];
      // from 2010 so that old DST rules (Sao Paulo's midnight changes, Samoa's skipped day) are crossed
      for (let t = Date.UTC(2009, 10, 1); t < Date.UTC(2013, 10, 1); t += Math.floor(rand() * 3 * 86_400_000) + 3_600_000) items.push({ id: `i${items.length}`, startedAt: new Date(t) });
      for (const keep of policies) {
        const got = new Set(kept(items, keep));
        assert.deepEqual(got, oracle(items, keep, tz), `${tz} ${describePolicy(keep)}`);
      }
    }
  });

  it('within counts back from the newest backup on the local calendar', () => {
    inZone('Europe/Paris');
    const newest = new Date('2026-03-29T10:00:00Z'); // 12:00 CEST, the day DST began
    assert.equal(subtractDuration(newest, '1d').toISOString(), '2026-03-28T11:00:00.000Z', 'a local day before: 23 hours');
    assert.equal(subtractDuration(newest, '24h').toISOString(), '2026-03-28T10:00:00.000Z');
    assert.equal(subtractDuration(newest, '2w').toISOString(), '2026-03-15T11:00:00.000Z');
    assert.equal(subtractDuration(newest, '1y6m').toISOString(), '2024-09-29T10:00:00.000Z');
    // not relative to "now": backups that stopped a year ago are still covered
    const old = [at('2025-01-01T00:00:00Z'), at('2025-01-05T00:00:00Z'), at('2025-01-09T00:00:00Z')];
    assert.equal(kept(old, { within: '7d' }).length, 2);
    assert.throws(() => subtractDuration(newest, '7 days'), /within: "7 days"/);
  });

  it('an empty policy keeps everything; ties are broken by id; the newest is always kept', () => {
    inZone('UTC');
    const items = [at('2026-01-01T00:00:00Z', 1), at('2026-01-02T00:00:00Z', 2)];
    assert.equal(kept(items, {}).length, 2);
    assert.equal(kept(items, { daily: 0, weekly: 0 }).length, 2);
    assert.match(applyPolicy(items, {})[0]!.reasons[0]!, /no rule/);
    const same = [at('2026-01-01T00:00:00Z', 1), at('2026-01-01T00:00:00Z', 2)];
    const d = applyPolicy(same, { last: 1 });
    assert.deepEqual(d.map((x) => [x.item.id, x.keep]), [['b2-2026-01-01T00:00:00Z', true], ['b1-2026-01-01T00:00:00Z', false]]);
    assert.deepEqual(applyPolicy([], { daily: 1 }), []);
  });
});
