// `make demo`: puts a little data into each datastore of the example stack (a database
// plugin backs up data, not an empty server). Ports and passwords come from the stack's
// env file (its path is the only argument), never from the command line. A datastore
// that already holds the demo data is left alone.
import { readFileSync } from 'node:fs';
import { Client as EsClient } from '@elastic/elasticsearch';
import cassandra from 'cassandra-driver';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';

const env: Record<string, string> = Object.fromEntries(
  readFileSync(process.argv[2]!, 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const port = (name: string, dflt: number) => Number(env[name] ?? dflt);
const rows = Array.from({ length: 1000 }, (_, i) => ({ id: i, name: `item ${i}`, price: i / 4 }));

const db = await mysql.createConnection({ host: '127.0.0.1', port: port('DEMO_MARIADB_PORT', 3306), user: 'root', password: env.DEMO_MARIADB_ROOT_PASSWORD });
await db.query('CREATE DATABASE IF NOT EXISTS shop');
await db.query('CREATE TABLE IF NOT EXISTS shop.items (id INT PRIMARY KEY, name VARCHAR(60), price DECIMAL(10,2))');
await db.query('INSERT IGNORE INTO shop.items VALUES ?', [rows.map((r) => [r.id, r.name, r.price])]);
await db.end();

const mongo = new MongoClient(`mongodb://127.0.0.1:${port('DEMO_MONGO_PORT', 27017)}/`, { directConnection: true, auth: { username: 'root', password: env.DEMO_MONGO_ROOT_PASSWORD }, authSource: 'admin' });
const items = mongo.db('catalog').collection<{ _id: number }>('items');
if ((await items.countDocuments()) === 0) await items.insertMany(rows.map(({ id, ...r }) => ({ _id: id, ...r })));
await mongo.close();

const es = new EsClient({ node: `http://127.0.0.1:${port('DEMO_ES_PORT', 9200)}` });
if (!(await es.indices.exists({ index: 'items' }))) {
  await es.bulk({ refresh: true, operations: rows.flatMap((r) => [{ index: { _index: 'items', _id: String(r.id) } }, r]) });
}
await es.close();

const cql = new cassandra.Client({ contactPoints: [`127.0.0.1:${port('DEMO_CASSANDRA_PORT', 9042)}`], localDataCenter: 'datacenter1' });
await cql.execute("CREATE KEYSPACE IF NOT EXISTS shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
await cql.execute('CREATE TABLE IF NOT EXISTS shop.items (id int PRIMARY KEY, name text, price double)');
await cassandra.concurrent.executeConcurrent(cql, 'INSERT INTO shop.items (id, name, price) VALUES (?, ?, ?)', rows.map((r) => [r.id, r.name, r.price]));
await cql.shutdown();
console.log('demo data: 1000 items in MariaDB shop.items, Mongo catalog.items, Elasticsearch items, Cassandra shop.items');
