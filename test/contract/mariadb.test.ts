// The mariadb plugin runs the plugin contract suite (test/contract/plugin-suite.ts)
// against a real MariaDB, zero configuration (the root password from the container's
// environment). A hot dump under writes, one database, --to-container, a wrong password
// and the dump tool killed: test/e2e/mariadb.test.ts.
import { mariadbFingerprint } from '../helpers/fingerprints.ts';
import { MARIADB_IMAGE, shopSchema, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';
import { runPluginSuite } from './plugin-suite.ts';

const SECRET = 'S3cret-pw-4-"contract"\\ü';
const TABLES = ['customers', 'orders', 'legacy', 'audit'];
let db: MariaDb;

const SCHEMA = shopSchema(200);

runPluginSuite({
  name: 'mariadb',
  images: [MARIADB_IMAGE],
  start: async () => void (db = await startMariaDb(SECRET)),
  job: () => ({ container: db.name }),
  container: () => db.name,
  seed: async () => {
    await db.sql(SCHEMA);
    return { customers: 3, orders: 200, legacy: 2, audit: 0 }; // the trigger came after the orders
  },
  manifestCounts: (m) => Object.fromEntries(TABLES.map((t) => [t, m.stats.databases.shop[t].rows])),
  liveCounts: async () => Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, Number(await db.sql(`SELECT COUNT(*) FROM shop.${t}`))]))),
  // tables, routines, triggers, events and the view, in a comparable form
  fingerprint: async () =>
    (await db.sql("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'")).trim() === '0'
      ? 'no database'
      : mariadbFingerprint(db.sql, TABLES.map((t) => `shop.${t}`), {
          schemas: ['shop'],
          queries: ['SELECT customer, spent FROM shop.big_spenders ORDER BY 1', 'SELECT name, HEX(photo) FROM shop.customers ORDER BY id'],
        }),
  drop: async () => void (await db.sql('DROP DATABASE shop')),
  inUse: { skip: 'a dump restore replaces the databases it holds: nothing is refused' },
  secrets: { 'root password': SECRET },
  stop: async () => db?.remove(),
});
