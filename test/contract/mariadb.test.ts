// The mariadb plugin runs the plugin contract suite (test/contract/plugin-suite.ts)
// against a real MariaDB, zero configuration (the root password from the container's
// environment). A hot dump under writes, one database, --to-container, a wrong password
// and the dump tool killed: test/e2e/mariadb.test.ts.
import { mariadbFingerprint } from '../helpers/fingerprints.ts';
import { MARIADB_IMAGE, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';
import { runPluginSuite } from './plugin-suite.ts';

const SECRET = 'S3cret-pw-4-"contract"\\ü';
const TABLES = ['customers', 'orders', 'legacy', 'audit'];
let db: MariaDb;

const SCHEMA = String.raw`
CREATE DATABASE shop CHARACTER SET utf8mb4;
USE shop;
CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, note TEXT NULL, photo BLOB NULL) ENGINE=InnoDB;
INSERT INTO customers (name, note, photo) VALUES ('Zoë 😀', 'quote '' and backslash \\ and (parens), comma', UNHEX('00FF10275C28')), ('Bob', NULL, NULL), ('日本語', 'line\nbreak', '');
CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer INT, total DECIMAL(10,2), FOREIGN KEY (customer) REFERENCES customers(id)) ENGINE=InnoDB;
INSERT INTO orders (customer, total) SELECT 1 + seq % 3, seq / 7 FROM seq_1_to_200;
CREATE TABLE legacy (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM;
INSERT INTO legacy VALUES (1, 'old'), (2, 'older');
CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, msg VARCHAR(100)) ENGINE=InnoDB;
CREATE VIEW big_spenders AS SELECT customer, SUM(total) AS spent FROM orders GROUP BY customer;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (msg) VALUES (CONCAT('order ', NEW.id));
CREATE PROCEDURE add_order(c INT, t DECIMAL(10,2)) INSERT INTO orders (customer, total) VALUES (c, t);
CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE id < 0;
`;

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
