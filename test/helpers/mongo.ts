// A MongoDB-compatible server in a container (snapagent-test/mongo: FerretDB with the
// official mongo image's conventions, mongodump/mongorestore inside) on 127.0.0.1 with a
// port of its own, and a driver client for the test's own checks. The root password
// reaches the container through an env file, never a command line.
// startMongoReplicaSet: the replica-set stand-in (snapagent-test/mongo-rs: FerretDB with
// --replSet and a test-only applyOps, see compose/images/mongo/replset/Dockerfile).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Binary, Long, MongoClient, ObjectId, Timestamp, type Document } from 'mongodb';
import { docker, removeContainer, removeVolume, uniq } from './harness.ts';
import { waitForServer } from './wait.ts';

export const MONGO_IMAGE = 'snapagent-test/mongo:latest';
export const MONGO_RS_IMAGE = 'snapagent-test/mongo-rs:latest';

export interface Mongo {
  name: string;
  port: number;
  client: MongoClient;
  remove(): Promise<void>;
}

export async function startMongo(user: string, password: string, image = MONGO_IMAGE, args: string[] = []): Promise<Mongo> {
  const name = uniq('sa-mongo');
  const port = 27200 + Math.floor(Math.random() * 2000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sa-mongo-env-'));
  writeFileSync(path.join(dir, 'env'), `MONGO_INITDB_ROOT_USERNAME=${user}\nMONGO_INITDB_ROOT_PASSWORD=${password}\n`, { mode: 0o600 });
  try {
    await docker('run', '-d', '--name', name, '--network', 'host', '--env-file', path.join(dir, 'env'), '-v', `${name}-db:/data/db`, '-v', `${name}-cfg:/data/configdb`,
      image, '--bind_ip', '127.0.0.1', '--port', String(port), ...args);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const client = new MongoClient(`mongodb://127.0.0.1:${port}/`, { directConnection: true, auth: { username: user, password }, authSource: 'admin', serverSelectionTimeoutMS: 2000 });
  await waitForServer(name, 'mongo', async () => {
    await client.connect();
    await client.db('admin').command({ listDatabases: 1, nameOnly: true });
  }, { intervalMs: 300 });
  return {
    name,
    port,
    client,
    remove: async () => {
      await client.close().catch(() => undefined);
      await removeContainer(name);
      await removeVolume(`${name}-db`);
      await removeVolume(`${name}-cfg`);
    },
  };
}

/** A one-member replica set "rs0" (`hello` reports it) whose oplog exists: the helper
 * does what rs.initiate() does on a real server, as far as the stand-in needs it —
 * creates the capped local.oplog.rs and writes its first entry, a no-op (mongodump
 * --oplog refuses an empty oplog; a real one never is). From then on FerretDB records
 * every insert, update and delete there. */
export async function startMongoReplicaSet(user: string, password: string, oplogBytes = 256 << 20): Promise<Mongo> {
  const m = await startMongo(user, password, MONGO_RS_IMAGE, ['--replSet', 'rs0']);
  try {
    const hello = await m.client.db('admin').command({ hello: 1 });
    if (hello.setName !== 'rs0') throw new Error(`${m.name}: hello reports no replica set (setName ${String(hello.setName)})`);
    const local = m.client.db('local');
    await local.createCollection('oplog.rs', { capped: true, size: oplogBytes });
    const now = Math.floor(Date.now() / 1000);
    await local.collection('oplog.rs').insertOne({ op: 'n', ns: '', o: { msg: 'initiating set' }, ts: new Timestamp({ t: now - 1, i: 1 }), t: Long.fromNumber(1), v: Long.fromNumber(2), wall: new Date() });
  } catch (err) {
    await m.remove();
    throw err;
  }
  return m;
}

/** Document number `n` of the "shop.events" collection both MongoDB test files seed: every
 * BSON type a dump must carry that FerretDB v1 stores. */
export function shopEvent(n: number): Document {
  return {
    _id: new ObjectId(n.toString(16).padStart(24, '0')),
    n,
    at: new Date(Date.UTC(2024, 0, 1) + n * 1000),
    // FerretDB v1 has no Decimal128 (it drops the connection): decimals as doubles.
    price: n + (n % 100) / 100,
    big: Long.fromNumber(n * 1_000_003),
    tags: [`t${n % 7}`, `t${n % 11}`],
    nested: { level: [{ a: n % 3, b: [n, `x${n}`] }], flag: n % 2 === 0, none: null },
    blob: new Binary(Buffer.from([n & 255, (n >> 8) & 255, 0, 255])),
    text: `événement ${n} 😀`,
  };
}
