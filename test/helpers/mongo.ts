// A MongoDB-compatible server in a container (snapagent-test/mongo: FerretDB with the
// official mongo image's conventions, mongodump/mongorestore inside) on 127.0.0.1 with a
// port of its own, and a driver client for the test's own checks. The root password
// reaches the container through an env file, never a command line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Binary, Long, MongoClient, ObjectId, type Document } from 'mongodb';
import { docker, removeContainer, removeVolume, uniq } from './harness.ts';
import { waitForServer } from './wait.ts';

export const MONGO_IMAGE = 'snapagent-test/mongo:latest';

export interface Mongo {
  name: string;
  port: number;
  client: MongoClient;
  remove(): Promise<void>;
}

export async function startMongo(user: string, password: string, image = MONGO_IMAGE): Promise<Mongo> {
  const name = uniq('sa-mongo');
  const port = 27200 + Math.floor(Math.random() * 2000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sa-mongo-env-'));
  writeFileSync(path.join(dir, 'env'), `MONGO_INITDB_ROOT_USERNAME=${user}\nMONGO_INITDB_ROOT_PASSWORD=${password}\n`, { mode: 0o600 });
  try {
    await docker('run', '-d', '--name', name, '--network', 'host', '--env-file', path.join(dir, 'env'), '-v', `${name}-db:/data/db`, '-v', `${name}-cfg:/data/configdb`,
      image, '--bind_ip', '127.0.0.1', '--port', String(port));
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
