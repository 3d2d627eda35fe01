// Disaster recovery onto a fresh host. The example stack (compose/docker-compose.yml:
// an app on two labelled volumes, MariaDB, Mongo, Elasticsearch, Cassandra) runs on the
// first Docker Engine, is filled with data and backed up to an S3 server (`rclone serve
// s3`); then that host is gone (`docker-compose down -v`). A second Docker Engine with
// its own data root and socket plays the fresh host: it has only the images, this
// repo, the config and the bucket's credentials. The steps of
// docs/restore-and-disaster-recovery.md are followed exactly: `make restore CONFIG=...`
// brings the volumes back, starts the stack, restores every datastore into its empty
// server, and prints each job's recovery time. The data is compared with the originals.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Client as EsClient } from '@elastic/elasticsearch';
import cassandra from 'cassandra-driver';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { config, containerJob, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { cassandraFingerprint, esFingerprint, mariadbFingerprint, mongoFingerprint } from '../helpers/fingerprints.ts';
import { docker, HELPER, make, requireDocker, ROOT, snapagent, uniq } from '../helpers/harness.ts';
import { leaksIn } from '../helpers/leak-scan.ts';
import { sqlIn } from '../helpers/mariadb.ts';
import { startS3Server, type S3Server } from '../helpers/s3-server.ts';
import { startSecondEngine, type SecondEngine } from '../helpers/second-engine.ts';
import { until } from '../helpers/wait.ts';

const pexec = promisify(execFile);
const IMAGES = ['snapagent/debian:bookworm', 'snapagent/helper:latest', 'snapagent-test/mariadb:latest', 'snapagent-test/mongo:latest', 'snapagent-test/elasticsearch:latest', 'snapagent-test/cassandra:latest'];
const DATASTORES = ['mariadb', 'mongo', 'elasticsearch', 'cassandra'];
const JOBS = ['app-config', 'app-data', ...DATASTORES];
const base = 40000 + Math.floor(Math.random() * 500) * 10;
const PORTS = { mariadb: base + 1, mongo: base + 2, es: base + 3, esTransport: base + 4, cassandra: base + 5, cassandraStorage: base + 6, cassandraJmx: base + 7 };
const MARIADB_PW = `maria-${uniq('pw')}`;
const MONGO_PW = `mongo-${uniq('pw')}`;

function compose(project: string, envFile: string, dockerHost: string | undefined, ...args: string[]): Promise<string> {
  return pexec('docker-compose', ['-f', path.join(ROOT, 'compose', 'docker-compose.yml'), '-p', project, '--env-file', envFile, ...args], {
    env: dockerHost ? { ...process.env, DOCKER_HOST: dockerHost } : process.env,
    maxBuffer: 16 * 1024 * 1024,
  }).then((r) => r.stdout + r.stderr);
}

type Engine = (...a: string[]) => Promise<string>;

async function waitHealthy(d: Engine, project: string): Promise<void> {
  let seen: string[] = [];
  await until('the datastores to be healthy', async () => {
    seen = (await d('ps', '-a', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Label "com.docker.compose.service"}} {{.Status}}')).trim().split('\n');
    return DATASTORES.every((s) => seen.some((l) => l.startsWith(`${s} `) && l.includes('(healthy)')));
  }, { timeoutMs: 600_000, intervalMs: 2000 }).catch((err: Error) => assert.fail(`${err.message}\n${seen.join('\n')}`));
}

/** The container of a compose service of the stack on engine `d`. */
async function containerOf(d: Engine, project: string, service: string): Promise<string> {
  return (await d('ps', '--filter', `label=com.docker.compose.project=${project}`, '--filter', `label=com.docker.compose.service=${service}`, '--format', '{{.Names}}')).trim();
}

// --- the data, and a digest of it that must survive the trip ------------------------

async function fillMariaDb(): Promise<void> {
  const c = await mysql.createConnection({ host: '127.0.0.1', port: PORTS.mariadb, user: 'root', password: MARIADB_PW });
  await c.query('CREATE DATABASE shop');
  await c.query('CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(60), city VARCHAR(40)) ENGINE=InnoDB');
  await c.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, customer INT, amount DECIMAL(10,2), note TEXT, at DATETIME(3), KEY (customer)) ENGINE=InnoDB');
  await c.query('INSERT INTO shop.customers VALUES ?', [Array.from({ length: 500 }, (_, i) => [i, `customer ${i} ünïcødé`, `city-${i % 17}`])]);
  for (let b = 0; b < 4; b++) {
    await c.query('INSERT INTO shop.orders VALUES ?', [Array.from({ length: 1000 }, (_, j) => { const i = b * 1000 + j; return [i, i % 500, (i * 7.31) % 1000, `order ${i}\nline 2 'quoted'`, new Date(Date.UTC(2026, 0, 1) + i * 60_000)]; })]);
  }
  await c.end();
}

const mongoClient = () => new MongoClient(`mongodb://127.0.0.1:${PORTS.mongo}/`, { directConnection: true, auth: { username: 'root', password: MONGO_PW }, authSource: 'admin', serverSelectionTimeoutMS: 5000 });

async function fillMongo(): Promise<void> {
  const c = mongoClient();
  try {
    const products = c.db('catalog').collection<{ _id: number }>('products');
    await products.insertMany(Array.from({ length: 3000 }, (_, i) => ({ _id: i, sku: `sku-${i}`, price: i / 4, tags: [`t${i % 5}`, `u${i % 3}`], dims: { w: i % 40, h: i % 9 } })));
    await products.createIndex({ sku: 1 }, { unique: true });
    await c.db('catalog').collection<{ _id: string }>('reviews').insertMany(Array.from({ length: 800 }, (_, i) => ({ _id: `r${i}`, product: i % 3000, stars: i % 5 })));
  } finally {
    await c.close();
  }
}

const esClient = () => new EsClient({ node: `http://127.0.0.1:${PORTS.es}`, requestTimeout: 120_000 });

async function fillEs(): Promise<void> {
  const es = esClient();
  try {
    await es.indices.create({ index: 'logs', mappings: { properties: { n: { type: 'integer' }, level: { type: 'keyword' }, msg: { type: 'text' } } } });
    const ops = Array.from({ length: 2000 }, (_, n) => [{ index: { _index: 'logs', _id: String(n) } }, { n, level: ['info', 'warn', 'error'][n % 3], msg: `event ${n} from the old host` }]).flat();
    const res = await es.bulk({ operations: ops, refresh: true });
    assert.equal(res.errors, false, 'bulk load');
  } finally {
    await es.close();
  }
}

const cassandraClient = () => new cassandra.Client({ contactPoints: [`127.0.0.1:${PORTS.cassandra}`], localDataCenter: 'datacenter1', socketOptions: { readTimeout: 120_000 } });

async function fillCassandra(): Promise<void> {
  const c = cassandraClient();
  try {
    await c.execute("CREATE KEYSPACE metrics WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    await c.execute('CREATE TABLE metrics.readings (sensor int, ts timestamp, value double, note text, PRIMARY KEY ((sensor), ts))');
    const rows = Array.from({ length: 5000 }, (_, i) => [i % 50, new Date(Date.UTC(2026, 0, 1) + i * 1000), i / 7, `r${i}`]);
    await cassandra.concurrent.executeConcurrent(c, 'INSERT INTO metrics.readings (sensor, ts, value, note) VALUES (?, ?, ?, ?)', rows, { concurrencyLevel: 32 });
  } finally {
    await c.shutdown();
  }
}

const FILL_VOLUMES = String.raw`set -e
mkdir -p /c/conf.d /d/fixture/deep/er
printf 'greeting: hello\nport: 8080\n' > /c/app.yml
printf 'debug: false\n' > /c/conf.d/extra.yml
chmod 0640 /c/app.yml
seq 1 20000 > /d/fixture/numbers.txt
head -c 300000 /dev/urandom > /d/fixture/deep/er/blob.bin
ln -s numbers.txt /d/fixture/link
chown 1001:1002 /d/fixture/numbers.txt
`;

// Between the first backup and the second (an incremental of the volumes): a rename, a
// deletion, a type change and a new file, which the fresh host must replay.
const CHANGE_VOLUMES = String.raw`set -e
mv /d/fixture/numbers.txt /d/fixture/renamed.txt
rm /d/fixture/link
ln -s renamed.txt /d/fixture/deep/link
head -c 50000 /dev/urandom > /d/fixture/new.bin
printf 'greeting: changed\n' > /c/app.yml
`;

// Everything but the app's log, which the restarted app appends to; of the log, the
// part that was backed up must come back as its beginning.
const VOLUME_DIGEST = String.raw`set -e
cd /d
find . -path ./log/app.log -prune -o -printf '%y %m %U %G %T@ %p -> %l\n' | LC_ALL=C sort
find . -type f ! -path ./log/app.log -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
echo "log: $(head -c "$1" log/app.log | sha256sum)"
cd /c
find . -printf '%y %m %U %G %T@ %s %p\n' | LC_ALL=C sort
find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
`;

/** Everything that must survive the trip, read from the stack on engine `d`: the
 * datastores through their clients (on the same ports on either engine), the volumes
 * through a helper container. */
async function fingerprints(d: Engine, project: string, logBytes: number): Promise<Record<string, unknown>> {
  const mongo = mongoClient();
  const es = esClient();
  const cql = cassandraClient();
  try {
    return {
      mariadb: await mariadbFingerprint(sqlIn(d, await containerOf(d, project, 'mariadb'), MARIADB_PW), ['shop.customers', 'shop.orders']),
      mongo: await mongoFingerprint(mongo, ['catalog.products', 'catalog.reviews']),
      elasticsearch: await esFingerprint(es, ['logs']),
      cassandra: await cassandraFingerprint(cql, ['metrics.readings']),
      volumes: await d('run', '--rm', '--network', 'none', '-v', `${project}_app-data:/d:ro`, '-v', `${project}_app-config:/c:ro`, HELPER, 'bash', '-c', VOLUME_DIGEST, 'digest', String(logBytes)),
    };
  } finally {
    await mongo.close();
    await es.close();
    await cql.shutdown();
  }
}

describe('disaster recovery onto a fresh host (a second Docker Engine)', () => {
  const project = uniq('sa-dr');
  let s3: S3Server;
  let fresh: SecondEngine | undefined;
  let ws: ConfigWorkspace;
  let envFile: string;
  let s3env: Record<string, string>;
  let originalUp = false;

  before(async () => {
    await requireDocker(...IMAGES);
    s3 = await startS3Server();
    s3env = s3.env('drs3');
    ws = config();
    envFile = path.join(ws.dir, 'stack.env');
    writeFileSync(
      envFile,
      [
        `DEMO_MARIADB_ROOT_PASSWORD=${MARIADB_PW}`,
        `DEMO_MONGO_ROOT_PASSWORD=${MONGO_PW}`,
        `DEMO_MARIADB_PORT=${PORTS.mariadb}`,
        `DEMO_MONGO_PORT=${PORTS.mongo}`,
        `DEMO_ES_PORT=${PORTS.es}`,
        `DEMO_ES_TRANSPORT_PORT=${PORTS.esTransport}`,
        `DEMO_CASSANDRA_PORT=${PORTS.cassandra}`,
        `DEMO_CASSANDRA_STORAGE_PORT=${PORTS.cassandraStorage}`,
        `DEMO_CASSANDRA_JMX_PORT=${PORTS.cassandraJmx}`,
      ].join('\n') + '\n',
      { mode: 0o600 },
    );
  });

  after(async () => {
    if (originalUp) await compose(project, envFile, undefined, 'down', '-v', '--remove-orphans').catch((err: unknown) => console.error(String(err)));
    await fresh?.stop().catch((err: unknown) => console.error(String(err)));
    await s3?.stop();
    ws?.cleanup();
  });

  it('backs the stack up to S3, then `make restore` on a fresh engine brings every job back', async (t) => {
    // --- the original host
    originalUp = true;
    await compose(project, envFile, undefined, 'up', '-d');
    await waitHealthy(docker, project);
    // The operator's config: explicit jobs (the first engine is shared with other
    // tests, so no label discovery), the S3 bucket, and the stack to start on recovery.
    const datastoreJobs = await Promise.all(DATASTORES.map(async (s) => containerJob(s, s, await containerOf(docker, project, s))));
    ws.rewrite({
      host: 'dr-origin',
      targets: [{ name: 'offsite', type: 'rclone', remote: 'drs3:snapagent-dr' }],
      compose: { file: path.join(ROOT, 'compose', 'docker-compose.yml'), project, env_file: 'stack.env' },
      jobs: [
        volumeJob('app-data', `${project}_app-data`, { stop: true, order: 10 }),
        volumeJob('app-config', `${project}_app-config`, { tier: 'medium' }),
        ...datastoreJobs,
      ],
      state_dir: 'state',
    });

    await fillMariaDb();
    await fillMongo();
    await fillEs();
    await fillCassandra();
    await docker('run', '--rm', '--network', 'none', '-v', `${project}_app-data:/d`, '-v', `${project}_app-config:/c`, HELPER, 'bash', '-c', FILL_VOLUMES);
    // the app stops for good, so that what it wrote is exactly what is backed up
    await docker('stop', await containerOf(docker, project, 'app'));
    // a first backup (fulls), then changes, then the backup the fresh host restores:
    // incrementals on the first one wherever the plugin takes them
    const first = await snapagent(['backup', '--config', ws.config, '--json'], s3env);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    await docker('run', '--rm', '--network', 'none', '-v', `${project}_app-data:/d`, '-v', `${project}_app-config:/c`, HELPER, 'bash', '-c', CHANGE_VOLUMES);
    const logBytes = Number((await docker('run', '--rm', '--network', 'none', '-v', `${project}_app-data:/d:ro`, HELPER, 'stat', '-c', '%s', '/d/log/app.log')).trim());
    assert.ok(logBytes > 0, 'the app wrote its log');
    const original = await fingerprints(docker, project, logBytes);
    assert.match((original.cassandra as Record<string, string>)['metrics.readings']!, /^5000 /);

    const b = await snapagent(['backup', '--config', ws.config, '--json'], s3env);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    const secrets = { 'MariaDB password': MARIADB_PW, 'MongoDB password': MONGO_PW, 'S3 secret key': s3env.RCLONE_CONFIG_DRS3_SECRET_ACCESS_KEY! };
    assert.deepEqual(b.json.results.map((r: { job: string; status: string }) => `${r.job} ${r.status}`).sort(), JOBS.map((j) => `${j} ok`).sort());
    const kinds = Object.fromEntries(b.json.results.map((r: { job: string; kind?: string }) => [r.job, r.kind ?? 'full']));
    assert.deepEqual(kinds, { 'app-data': 'incremental', 'app-config': 'incremental', cassandra: 'incremental', elasticsearch: 'incremental', mariadb: 'full', mongo: 'full' });

    // the DR copy of the config lists the old host's public signing key
    // (docs/restore-and-disaster-recovery.md "Disaster recovery"): the fresh host trusts
    // its manifests without any private key
    const key = await snapagent(['key', '--config', ws.config, '--json']);
    assert.equal(key.code, 0, key.stderr);
    appendFileSync(ws.config, `trusted_keys: ["${key.json.public_key}"]\n`);

    // --- the disaster: the host, its containers, volumes and agent state are gone
    await compose(project, envFile, undefined, 'down', '-v');
    originalUp = false;
    rmSync(path.join(ws.dir, 'state'), { recursive: true, force: true });

    // --- the fresh host: images (as from a registry), the repo, the config, the credentials
    fresh = await startSecondEngine();
    await fresh.load(IMAGES);
    assert.equal((await fresh.docker('ps', '-aq')).trim(), '', 'the fresh engine runs nothing');
    assert.equal((await fresh.docker('volume', 'ls', '-q')).trim(), '', 'the fresh engine has no volume');

    const r = await make(['restore', `CONFIG=${ws.config}`], { ...s3env, DOCKER_HOST: fresh.host });
    for (const line of r.stdout.trimEnd().split('\n')) t.diagnostic(line);
    assert.equal(r.code, 0, r.stdout + r.stderr.split('\n').slice(-40).join('\n'));
    const lines = r.stdout.split('\n').map((l) => l.split(/\s+/));
    const jobs = lines.filter((x) => JOBS.includes(x[0]!));
    // volumes first (by order: app-config 0, app-data 10), then the datastores
    assert.deepEqual(jobs.map((x) => `${x[0]} ${x[3]}`), ['app-config ok', 'app-data ok', 'cassandra ok', 'elasticsearch ok', 'mariadb ok', 'mongo ok']);
    const total = lines.find((x) => x[0] === 'TOTAL');
    assert.ok(total && total[1] === 'ok' && Number(total[2]) > 0, r.stdout);
    t.diagnostic(`measured RTO of the whole host: ${total[2]} s`);
    assert.deepEqual(leaksIn({ 'first backup stdout': first.stdout, 'first backup stderr': first.stderr, 'backup stdout': b.stdout, 'backup stderr': b.stderr, 'make restore stdout': r.stdout, 'make restore stderr': r.stderr }, secrets), [], 'no secret in any output');

    // the stack runs on the fresh engine, on the restored volumes
    const running = (await fresh.docker('ps', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Label "com.docker.compose.service"}}')).trim().split('\n').sort();
    assert.deepEqual(running, ['app', ...DATASTORES].sort());
    assert.deepEqual(await fingerprints(fresh.docker, project, logBytes), original);
  });
});
