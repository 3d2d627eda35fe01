// Point-in-time recovery's pure parts: which slices continue a chain from a dump
// (coverage), which ones retention removes (expiredSlices), what a restore to a time
// replays (planPointInTime against a real local target), and the mongo archive filter
// appending slice entries to a dump's oplog with its checksum recomputed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { BSON, Long, Timestamp } from 'mongodb';
import type { Listed } from '../../agent/catalog/manifest.ts';
import { hostKey, makeKeyring } from '../../agent/catalog/signing.ts';
import { coverage, expiredSlices, SLICE_FORMAT, sliceId, writeSlice, type ListedSlice, type Slice } from '../../agent/pitr/slices.ts';
import { planPointInTime, PointInTimeGapError } from '../../agent/pitr/point.ts';
import { LocalTarget } from '../../agent/targets/local.ts';
import { ArchiveFilter, Crc64 } from '../../plugins/mongo/filter.ts';

const T0 = 1_796_000_000;
const pos = (t: number, i = 1) => ({ t: T0 + t, i });
const at = (s: number) => new Date((T0 + s) * 1000);

function slice(after: number, last: number, until: number, signed = true): ListedSlice {
  const s: Slice = {
    format: SLICE_FORMAT,
    id: sliceId(at(until)),
    host: 'h',
    job: 'rs',
    plugin: 'mongo',
    after: pos(after),
    last: pos(last),
    entries: last - after,
    until: at(until).toISOString(),
    artifact: { name: 'oplog.bson.zst', format: 'bson', compression: 'zstd', encryption: 'none', size: 1, sha256: '0'.repeat(64), raw_size: 0 },
  };
  return { target: undefined as never, slice: s, dir: `h/rs/pitr/${s.id}`, signature: signed ? { state: 'signed', key: 'k' } as never : { state: 'unsigned' } };
}

describe('pitr coverage', () => {
  const base = { id: 'b', position: pos(100) };
  it('chains slices from the dump, skipping what it holds, up to the time asked', () => {
    const list = [slice(50, 90, 91), slice(90, 100, 101), slice(100, 110, 111), slice(110, 110, 116), slice(110, 120, 121), slice(120, 130, 131)];
    const all = coverage(base, list);
    assert.deepEqual(all.slices.map((l) => l.slice.last.t - T0), [110, 120, 130]);
    assert.equal(all.until, at(131).getTime());
    assert.equal(all.gap, undefined);
    const to = coverage(base, list, at(115).getTime());
    assert.deepEqual(to.slices.map((l) => l.slice.last.t - T0), [110]);
    assert.equal(to.until, at(116).getTime(), 'an empty slice moves the covered time on');
  });
  it('stops at a gap, and at a slice not signed by a trusted key', () => {
    const gap = coverage(base, [slice(100, 110, 111), slice(115, 120, 121)]);
    assert.equal(gap.until, at(111).getTime());
    assert.deepEqual(gap.gap, { after: pos(110), next: pos(115) });
    const forged = coverage(base, [slice(100, 110, 111, false), slice(110, 120, 121)]);
    assert.equal(forged.slices.length, 0, 'the unsigned slice breaks the chain');
    assert.ok(forged.gap);
  });
  it('overlapping slices (a target that missed one) are used once each, in order', () => {
    const c = coverage(base, [slice(100, 110, 111), slice(100, 120, 121), slice(120, 125, 126)]);
    assert.deepEqual(c.slices.map((l) => l.slice.last.t - T0), [110, 120, 125]);
  });
});

describe('pitr retention', () => {
  const day = 86_400;
  it('keeps the slices a restore within keep needs, from the newest dump before the cutoff', () => {
    const bases = [{ id: 'd1', position: pos(0) }, { id: 'd2', position: pos(day) }, { id: 'd3', position: pos(2 * day) }];
    const list = [slice(0, 100, 101), slice(100, day - 10, day - 9), slice(day - 10, day + 50, day + 51), slice(day + 50, 2 * day + 5, 2 * day + 6)];
    // now = 2 days + 1 h; keep 24h: cutoff = 1 day + 1 h; the restore to the cutoff starts from d2
    const expired = expiredSlices(list, bases, at(day + 3600).getTime());
    assert.deepEqual(expired.map((l) => l.slice.last.t - T0), [100, day - 10]);
  });
  it('without a dump, only slices older than keep go', () => {
    const list = [slice(0, 10, 11), slice(10, 20, 5000)];
    assert.deepEqual(expiredSlices(list, [], at(100).getTime()).map((l) => l.slice.last.t - T0), [10]);
  });
  it('with every dump younger than the cutoff, the slices after the oldest stay', () => {
    const list = [slice(0, 10, 11), slice(10, 20, 21), slice(20, 30, 31)];
    assert.deepEqual(expiredSlices(list, [{ id: 'd', position: pos(10) }], at(1000).getTime()).map((l) => l.slice.last.t - T0), [10]);
  });
});

describe('planPointInTime (local target, signed slices)', () => {
  it('picks the newest dump before the time and the slices after it, and refuses a gap by name', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sa-pitr-'));
    try {
      const target = new LocalTarget('local', path.join(dir, 'backups'));
      const key = await hostKey(path.join(dir, 'state'));
      const ring = makeKeyring([], key);
      for (const l of [slice(100, 110, 111), slice(110, 120, 121), slice(130, 140, 141)]) await writeSlice(target, l.slice, Buffer.from('x'), key);
      const dump = (id: string, t: number) => ({ target, dir: `h/rs/${id}`, manifest: { id, job: 'rs', host: 'h', plugin: 'mongo', started_at: at(t - 5).toISOString(), stats: { oplog: true, oplog_window: { last: pos(t) } } }, checks: {}, signature: { state: 'signed' } }) as unknown as Listed;
      const pitr = { format: 'bson', positionOf: (s: Record<string, unknown>) => (s.oplog_window as { last: { t: number; i: number } }).last, openLog: async () => undefined as never };
      const backups = [dump('20261203T000000Z-critical', 100), dump('20261203T010000Z-critical', 50)];
      const p = await planPointInTime(backups, 'rs', at(115), pitr, ring);
      assert.equal(p.base.manifest.id, '20261203T000000Z-critical');
      assert.deepEqual(p.slices.map((l) => l.slice.last.t - T0), [110, 120]);
      assert.deepEqual(p.until, { t: T0 + 115, i: 0xffffffff });
      await assert.rejects(planPointInTime(backups, 'rs', at(125), pitr, ring), (err: Error) => err instanceof PointInTimeGapError && /not covered without a gap/.test(err.message) && /gap: the log after/.test(err.message));
      await assert.rejects(planPointInTime(backups, 'rs', at(10), pitr, ring), /no backup with an oplog position/);
      // a slice written by another key is not part of any chain
      const other = makeKeyring([]);
      await assert.rejects(planPointInTime(backups, 'rs', at(115), pitr, other), PointInTimeGapError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('mongo archive filter: appended oplog entries', () => {
  const header = (extra: BSON.Document) => BSON.serialize({ concurrent_collections: 1, version: '0.1', server_version: '7.0', tool_version: 't', ...extra });
  const TERM = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(0x8199e26d);
  const entry = (t: number, ns = 'app.c') => Buffer.from(BSON.serialize({ ts: new Timestamp({ t, i: 1 }), op: 'i', ns, o: { _id: t } }));
  function archive(oplog: Buffer[]): Buffer {
    const crc = new Crc64();
    for (const e of oplog) crc.update(e);
    return Buffer.concat([
      magic,
      header({}),
      BSON.serialize({ db: 'app', collection: 'c', metadata: '{}', size: 0, type: 'collection' }),
      BSON.serialize({ db: '', collection: 'oplog', metadata: '', size: 0, type: '' }),
      TERM,
      BSON.serialize({ db: 'app', collection: 'c', EOF: false, CRC: Long.fromInt(0) }),
      BSON.serialize({ _id: 1 }),
      TERM,
      BSON.serialize({ db: 'app', collection: 'c', EOF: true, CRC: Long.fromInt(0) }),
      TERM,
      BSON.serialize({ db: '', collection: 'oplog', EOF: false, CRC: Long.fromInt(0) }),
      ...oplog,
      TERM,
      BSON.serialize({ db: '', collection: 'oplog', EOF: true, CRC: crc.signed() }),
      TERM,
    ]);
  }
  it('puts the entries before the oplog\'s end, and the checksum covers them (small chunks, backpressure)', async () => {
    const own = [entry(10), entry(11)];
    const extra = [entry(12), entry(13, 'local.x'), entry(14)].filter((e) => !BSON.deserialize(e).ns.startsWith('local'));
    const filter = new ArchiveFilter(() => true, async function* () {
      for (const e of extra) yield e;
    });
    const src = archive(own);
    const chunks: Buffer[] = [];
    for (let k = 0; k < src.length; k += 7) chunks.push(src.subarray(k, k + 7));
    const out: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      Readable.from(chunks).pipe(filter).on('data', (c: Buffer) => out.push(c)).on('end', resolve).on('error', reject);
    });
    const expected = archive([...own, entry(12), entry(14)]);
    // the appended segment sits before the oplog's end header: the same documents, one more segment
    const got = Buffer.concat(out);
    assert.equal(filter.appendedOplogEntries, 2);
    const crc = new Crc64();
    for (const e of [...own, entry(12), entry(14)]) crc.update(e);
    assert.ok(got.includes(Buffer.from(BSON.serialize({ db: '', collection: 'oplog', EOF: true, CRC: crc.signed() }))), 'the end header carries the checksum of every entry');
    assert.ok(got.length > expected.length, 'one more segment header and terminator');
  });
});
