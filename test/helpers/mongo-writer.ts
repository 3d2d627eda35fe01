// A writer for the MongoDB oplog tests: one operation at a time on app.ledger (inserts,
// updates, deletes), each recorded, so that the collection's state after any of them
// can be rebuilt and compared with a restore.
import assert from 'node:assert/strict';
import { BSON, type MongoClient } from 'mongodb';

const LEDGER = 300;

export interface LedgerDoc {
  _id: number;
  seq: number;
  v: string;
  n: number;
}
type Op = { seq: number; kind: 'i' | 'u' | 'd'; id: number; doc?: LedgerDoc };

/** One writer, one operation at a time, each one recorded: the state after any of them
 * can be rebuilt (state()). Documents carry the seq of the operation that last wrote them. */
export class Writer {
  readonly ops: Op[] = [];
  private readonly seed = new Map<number, LedgerDoc>();
  private live: number[] = [];
  private nextId = 0;
  private stopped = false;
  private running?: Promise<void>;
  private readonly client: MongoClient;

  constructor(client: MongoClient) {
    this.client = client;
  }

  async seedLedger(): Promise<void> {
    const docs = Array.from({ length: LEDGER }, (_, k) => ({ _id: k, seq: 0, v: `seed ${k}`, n: 0 }));
    await this.client.db('app').collection<LedgerDoc>('ledger').insertMany(docs);
    for (const d of docs) this.seed.set(d._id, d);
    this.live = docs.map((d) => d._id);
    this.nextId = LEDGER;
  }

  /** Writes until stop(), pausing `pauseMs` between operations. */
  start(pauseMs = 0): void {
    this.stopped = false;
    const col = this.client.db('app').collection<LedgerDoc>('ledger');
    this.running = (async () => {
      let seq = this.ops.at(-1)?.seq ?? 0;
      while (!this.stopped) {
        if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
        seq++;
        const r = (seq * 7919) % 10;
        if (r < 4 || this.live.length < 10) {
          const doc = { _id: this.nextId++, seq, v: `inserted by op ${seq}`, n: 0 };
          await col.insertOne(doc);
          this.live.push(doc._id);
          this.ops.push({ seq, kind: 'i', id: doc._id, doc });
        } else if (r < 8) {
          const id = this.live[(seq * 104729) % this.live.length]!;
          const doc = await col.findOneAndUpdate({ _id: id }, { $set: { seq, v: `updated by op ${seq}` }, $inc: { n: 1 } }, { returnDocument: 'after' });
          this.ops.push({ seq, kind: 'u', id, doc: doc! });
        } else {
          const at = (seq * 15485863) % this.live.length;
          const id = this.live[at]!;
          await col.deleteOne({ _id: id });
          this.live.splice(at, 1);
          this.ops.push({ seq, kind: 'd', id });
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** The collection after operation `seq` (0: the seed), sorted by _id. */
  state(seq: number): LedgerDoc[] {
    const m = new Map(this.seed);
    for (const op of this.ops) {
      if (op.seq > seq) break;
      if (op.kind === 'd') m.delete(op.id);
      else m.set(op.id, op.doc!);
    }
    return [...m.values()].sort((a, b) => a._id - b._id);
  }

  /** The writer's operation that wrote this oplog entry. */
  opOf(entry: { op: string; o: BSON.Document }): number {
    if (entry.op === 'i') return entry.o.seq as number;
    if (entry.op === 'u') return (entry.o.$set?.seq ?? entry.o.seq) as number;
    const op = this.ops.find((x) => x.kind === 'd' && x.id === entry.o._id);
    assert.ok(op, `no delete of ${String(entry.o._id)} by the writer`);
    return op.seq;
  }
}

export const canon = (docs: unknown[]) => BSON.EJSON.stringify(docs as BSON.Document[], { relaxed: false });

export async function ledger(client: MongoClient): Promise<LedgerDoc[]> {
  return client.db('app').collection<LedgerDoc>('ledger').find({}, { sort: { _id: 1 } }).toArray();
}

