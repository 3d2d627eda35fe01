// A MongoDB-compatible server in a container (snapagent-test/mongo: FerretDB with the
// official mongo image's conventions, mongodump/mongorestore inside) on 127.0.0.1 with a
// port of its own, and a driver client for the test's own checks. The root password
// reaches the container through an env file, never a command line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
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
