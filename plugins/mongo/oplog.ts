// Point-in-time recovery for mongo (agent/pitr/ does the shipping and choosing): the
// agent reads the replica set's oplog (local.oplog.rs) through the driver, as raw BSON
// documents, after the last position it shipped; and a restore to a time appends the
// slices' entries up to that time to the dump's own oplog (filter.ts), which mongorestore
// --oplogReplay then applies.
import { BSON, Timestamp, type MongoClient } from 'mongodb';
import { comparePos, showPos, type Job, type LogPosition, type LogRead, type LogReader, type LogReplay, LogGapError, type PluginContext, runningContainer, SnapError } from '../../agent/plugin/index.ts';
import { agentEndpoint, connect, credentials } from './connection.ts';
import type { KeepNamespace } from './filter.ts';
import type { MongoOptions } from './options.ts';

const tsOf = (doc: Buffer): LogPosition => {
  const ts = BSON.deserialize(doc, { promoteValues: false }).ts as Timestamp | undefined;
  if (!ts || ts._bsontype !== 'Timestamp') throw new Error('an oplog entry without a ts timestamp');
  return { t: ts.getHighBitsUnsigned(), i: ts.getLowBitsUnsigned() };
};

export async function openOplog(ctx: PluginContext, job: Job<MongoOptions>): Promise<LogReader> {
  const c = await runningContainer(ctx, job.container, `job ${job.name}`, 'mongo');
  const cred = await credentials(ctx, c, job.options);
  const client = await connect(agentEndpoint(c, job.options), cred);
  try {
    const hello = await client.db('admin').command({ hello: 1 });
    if (!hello.setName) throw new SnapError(`container ${c.name} is not a replica-set member: it has no oplog to ship`, { hint: 'point-in-time recovery needs a replica set (a single-member one is enough: mongod --replSet rs0, then rs.initiate()); or remove pitr from the job' });
  } catch (err) {
    await client.close();
    throw err;
  }
  return new OplogReader(client, c.name);
}

class OplogReader implements LogReader {
  private readonly client: MongoClient;
  private readonly container: string;
  constructor(client: MongoClient, container: string) {
    this.client = client;
    this.container = container;
  }

  private get oplog() {
    return this.client.db('local').collection('oplog.rs');
  }

  async read(after: LogPosition, maxBytes: number): Promise<LogRead> {
    // From `after` itself: finding it proves the log still reaches back there.
    const cursor = this.oplog.find({ ts: { $gte: new Timestamp({ t: after.t, i: after.i }) } }, { raw: true, batchSize: 1000, sort: { $natural: 1 } });
    const entries: Buffer[] = [];
    let bytes = 0;
    let more = false;
    try {
      let first = true;
      for await (const raw of cursor as AsyncIterable<unknown>) {
        const doc = raw as Buffer;
        if (first) {
          first = false;
          const p = tsOf(doc);
          if (comparePos(p, after) !== 0) throw new LogGapError(`the oplog of ${this.container} no longer holds ${showPos(after)}: its oldest entry from there is ${showPos(p)}; the entries between were overwritten (a larger oplog, or a shorter time with the agent down, avoids this)`);
          continue;
        }
        if (bytes + doc.length > maxBytes && entries.length) {
          more = true;
          break;
        }
        entries.push(doc);
        bytes += doc.length;
      }
      if (first) throw new LogGapError(`the oplog of ${this.container} no longer holds ${showPos(after)} (no entry from there on): it rolled over, or the server's oplog was reset (a restore, a new replica set)`);
    } finally {
      await cursor.close().catch(() => undefined);
    }
    return { entries, bytes, more, ...(entries.length ? { first: tsOf(entries[0]!), last: tsOf(entries.at(-1)!) } : {}) };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** The entries a restore to `log.until` appends after the dump: every slice read to its
 * end (each one's checks need all of its bytes), the entries past the position already
 * reached and up to `until` kept, each once, in order; the namespaces the restore
 * leaves alone dropped as in the dump's own oplog. */
export function replayEntries(log: LogReplay, keep: KeepNamespace, counts: { dropped: number }): () => AsyncIterable<Buffer> {
  return async function* () {
    let pos = log.after;
    for (const piece of log.pieces) {
      for await (const doc of bsonDocuments(piece.input.stream())) {
        const p = tsOf(doc);
        if (comparePos(p, pos) <= 0 || comparePos(p, log.until) > 0) continue;
        pos = p;
        const ns = String(BSON.deserialize(doc, { promoteValues: false }).ns ?? '');
        const dot = ns.indexOf('.');
        if (!keep(dot < 0 ? ns : ns.slice(0, dot), dot < 0 ? '' : ns.slice(dot + 1))) {
          counts.dropped++;
          continue;
        }
        yield doc;
      }
    }
  };
}

/** Concatenated BSON documents, one by one. */
async function* bsonDocuments(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let buf: Buffer = Buffer.alloc(0);
  for await (const chunk of src) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readInt32LE(off);
      if (len < 5 || len > 64 * 1024 * 1024) throw new Error(`not an oplog slice: a document of ${len} bytes`);
      if (buf.length - off < len) break;
      yield buf.subarray(off, off + len);
      off += len;
    }
    buf = buf.subarray(off);
  }
  if (buf.length) throw new Error('an oplog slice ends inside a document');
}
