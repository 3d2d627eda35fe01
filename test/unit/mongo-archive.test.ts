// The mongo plugin's readers of a `mongodump --archive` stream, on archives built here
// byte by byte after mongo-tools' archive spec: the counter's oplog window, and the
// filter that leaves system namespaces (and their oplog entries) out of a restore with
// --oplogReplay, whose oplog checksum must match what mongorestore recomputes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { BSON, Long, Timestamp } from 'mongodb';
import { ArchiveCounter } from '../../plugins/mongo/archive.ts';
import { ArchiveFilter, Crc64 } from '../../plugins/mongo/filter.ts';

// Reference CRC-64/ECMA as Go's hash/crc64 computes it (reflected, complemented), with
// BigInt: slow and independent of the plugin's two-halves version.
function referenceCrc(bufs: Buffer[]): bigint {
  const poly = 0xc96c5795d7870f42n;
  let crc = 0xffffffffffffffffn;
  for (const b of bufs) {
    for (const byte of b) {
      crc ^= BigInt(byte);
      for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
    }
  }
  return crc ^ 0xffffffffffffffffn;
}

const TERM = Buffer.from([0xff, 0xff, 0xff, 0xff]);
const doc = (d: BSON.Document) => Buffer.from(BSON.serialize(d));

interface Ns {
  db: string;
  coll: string;
  docs: BSON.Document[];
}

/** An archive as mongodump writes it: each namespace in two segments, then its EOF. */
function archive(namespaces: Ns[]): Buffer {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(0x8199e26d);
  const parts: Buffer[] = [magic, doc({ concurrent_collections: 4, version: '0.1', server_version: '7.0.42', tool_version: '100.12.2' })];
  for (const n of namespaces) parts.push(doc({ db: n.db, collection: n.coll, metadata: '{"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"}]}', size: 0, type: 'collection' }));
  parts.push(TERM);
  for (const n of namespaces) {
    const bodies = n.docs.map(doc);
    const half = Math.ceil(bodies.length / 2);
    for (const seg of [bodies.slice(0, half), bodies.slice(half)]) {
      if (!seg.length) continue;
      parts.push(doc({ db: n.db, collection: n.coll, EOF: false, CRC: Long.ZERO }), ...seg, TERM);
    }
    parts.push(doc({ db: n.db, collection: n.coll, EOF: true, CRC: Long.fromBigInt(BigInt.asIntN(64, referenceCrc(bodies))) }), TERM);
  }
  return Buffer.concat(parts);
}

const ts = (t: number, i: number) => new Timestamp({ t, i });
const entry = (op: string, ns: string, t: number, i: number, o: BSON.Document) => ({ _id: new BSON.ObjectId(), op, ns, ts: ts(t, i), o, t: 1n, v: 2n, wall: new Date(t * 1000) });

const sample = (): Ns[] => [
  { db: 'shop', coll: 'items', docs: Array.from({ length: 5 }, (_, k) => ({ _id: k, name: `item ${k}` })) },
  { db: 'admin', coll: 'system.users', docs: [{ _id: 'admin.root', user: 'root' }] },
  { db: 'admin', coll: 'settings', docs: [{ _id: 1 }] },
  {
    db: '',
    coll: 'oplog',
    docs: [
      entry('i', 'shop.items', 1_800_000_000, 7, { _id: 4, name: 'item 4' }),
      entry('i', 'admin.system.users', 1_800_000_001, 1, { _id: 'admin.x', user: 'x' }),
      entry('u', 'shop.items', 1_800_000_001, 2, { $v: 1, $set: { _id: 1, name: 'one' } }),
      entry('i', 'local.oplog.rs', 1_800_000_001, 3, { op: 'n' }),
      entry('d', 'shop.items', 1_800_000_002, 9, { _id: 2 }),
    ],
  },
];

async function through(input: Buffer, t: NodeJS.ReadWriteStream, chunk: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let off = 0; off < input.length; off += chunk) pieces.push(input.subarray(off, off + chunk));
  return buffer(Readable.from(pieces).pipe(t));
}

describe('mongo archive: oplog window and namespace filter', () => {
  it('CRC-64/ECMA: the known check value and the reference', () => {
    const c = new Crc64();
    c.update(Buffer.from('123456789'));
    assert.equal(BigInt.asUintN(64, c.signed().toBigInt()), 0x995dc9bbdf1939fan);
    const data = Buffer.from(Array.from({ length: 5000 }, (_, k) => (k * 131 + 7) & 255));
    const d = new Crc64();
    d.update(data.subarray(0, 1234));
    d.update(data.subarray(1234));
    assert.equal(BigInt.asUintN(64, d.signed().toBigInt()), referenceCrc([data]));
    assert.equal(new Crc64().signed().toBigInt(), 0n, 'nothing hashed: 0');
  });

  it('the counter records the oplog window (first and last timestamp) and counts entries', async () => {
    const counter = new ArchiveCounter();
    await through(archive(sample()), counter, 13);
    const s = counter.stats();
    assert.equal(s.oplog_entries, 5);
    assert.deepEqual(s.oplog_window, {
      first: { time: new Date(1_800_000_000_000).toISOString(), t: 1_800_000_000, i: 7 },
      last: { time: new Date(1_800_000_002_000).toISOString(), t: 1_800_000_002, i: 9 },
    });
    assert.equal(s.databases.shop!.items!.documents, 5);
    assert.equal(s.databases['']?.oplog, undefined, 'the oplog is not a collection');
  });

  it('a filter that keeps everything returns the archive byte for byte, at any chunking', async () => {
    const a = archive(sample());
    for (const chunk of [1, 3, 7, 64, a.length]) assert.ok((await through(a, new ArchiveFilter(() => true), chunk)).equals(a), `chunks of ${chunk}`);
  });

  it('leaves out namespaces and their oplog entries, with the oplog checksum recomputed', async () => {
    const keep = (db: string, coll: string) => db !== 'local' && !(db === 'admin' && coll.startsWith('system.'));
    const f = new ArchiveFilter(keep);
    const data = sample();
    const out = await through(archive(data), f, 5);
    // The result is what mongodump would have written without those namespaces/entries.
    const expected = data.filter((n) => keep(n.db, n.coll));
    const oplog = expected.find((n) => n.coll === 'oplog')!;
    const keptEntries = oplog.docs.filter((e) => !['admin.system.users', 'local.oplog.rs'].includes(e.ns as string));
    // (segments split differently: compare the parsed content and the EOF checksum)
    const counter = new ArchiveCounter();
    await through(out, counter, 4096);
    const s = counter.stats();
    assert.deepEqual(Object.keys(s.databases).sort(), ['admin', 'shop']);
    assert.deepEqual(Object.keys(s.databases.admin!), ['settings']);
    assert.equal(s.oplog_entries, 3);
    assert.deepEqual([...f.dropped.namespaces], ['admin.system.users']);
    assert.equal(f.dropped.oplogEntries, 2);
    assert.equal(f.keptOplogEntries, 3);
    const eof = findEof(out, '', 'oplog');
    assert.equal(BigInt.asUintN(64, (eof.CRC as Long).toBigInt()), referenceCrc(keptEntries.map(doc)));
  });

  it('an archive cut short is an error, not a shorter restore', async () => {
    const a = archive(sample());
    await assert.rejects(through(a.subarray(0, a.length - 10), new ArchiveFilter(() => true), 100), /ended early/);
    await assert.rejects(through(Buffer.from('not an archive at all'), new ArchiveFilter(() => true), 100), /wrong magic number/);
  });
});

// The EOF header of a namespace, found by walking the archive's documents.
function findEof(a: Buffer, db: string, coll: string): BSON.Document {
  let off = 4;
  let found: BSON.Document | undefined;
  while (off < a.length) {
    const len = a.readInt32LE(off);
    if (len === -1) {
      off += 4;
      continue;
    }
    const d = BSON.deserialize(a.subarray(off, off + len));
    if (d.EOF === true && d.db === db && d.collection === coll) found = d;
    off += len;
  }
  assert.ok(found, `no EOF header for ${db}.${coll}`);
  return found;
}
