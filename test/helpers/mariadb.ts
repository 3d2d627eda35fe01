// A real MariaDB server in a container (snapagent-test/mariadb, official-image
// conventions) on 127.0.0.1 with a port of its own, and a SQL helper that passes the
// password through the environment, never on a command line.
import { docker, removeContainer, removeVolume, uniq } from './harness.ts';
import { waitForServer } from './wait.ts';

export const MARIADB_IMAGE = 'snapagent-test/mariadb:latest';

export interface MariaDb {
  name: string;
  volume: string;
  port: number;
  password: string;
  sql(query: string, db?: string): Promise<string>;
  remove(): Promise<void>;
}

export async function startMariaDb(password: string, env: string[] = [], image = MARIADB_IMAGE): Promise<MariaDb> {
  const name = uniq('sa-mdb');
  const volume = `${name}-data`;
  const port = 33000 + Math.floor(Math.random() * 2000);
  await docker('run', '-d', '--name', name, '--network', 'host', '-e', `MARIADB_ROOT_PASSWORD=${password}`, ...env.flatMap((e) => ['-e', e]), '-v', `${volume}:/var/lib/mysql`, image, `--port=${port}`, '--bind-address=127.0.0.1');
  const sql = sqlIn(docker, name, password);
  await waitForServer(name, 'MariaDB', () => sql('SELECT 1'), { timeoutMs: 90_000 });
  return {
    name,
    volume,
    port,
    password,
    sql,
    remove: async () => {
      await removeContainer(name);
      await removeVolume(volume);
    },
  };
}

/** SQL as root in a MariaDB container of engine `d` (mariadb -N -B: tab-separated rows);
 * the password goes through the environment, never a command line. */
export function sqlIn(d: (...args: string[]) => Promise<string>, container: string, password: string): (query: string, db?: string) => Promise<string> {
  return (query, db) => d('exec', '-e', `MYSQL_PWD=${password}`, container, 'mariadb', '-uroot', '-N', '-B', ...(db ? [db] : []), '-e', query);
}

/** The "shop" database both MariaDB test files seed: every kind of object a dump must carry
 * (InnoDB and MyISAM tables, awkward values, a view, a trigger, a procedure, a function,
 * an event) with `orders` rows in shop.orders; `extra` SQL runs after it. */
export function shopSchema(orders: number, extra = ''): string {
  return String.raw`
CREATE DATABASE shop CHARACTER SET utf8mb4;
USE shop;
CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, note TEXT NULL, photo BLOB NULL) ENGINE=InnoDB;
INSERT INTO customers (name, note, photo) VALUES ('Zoë 😀', 'quote '' and backslash \\ and (parens), comma', UNHEX('00FF10275C28')), ('Bob', NULL, NULL), ('日本語', 'line\nbreak', '');
CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer INT, total DECIMAL(10,2), FOREIGN KEY (customer) REFERENCES customers(id)) ENGINE=InnoDB;
INSERT INTO orders (customer, total) SELECT 1 + seq % 3, seq / 7 FROM seq_1_to_${orders};
CREATE TABLE legacy (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM;
INSERT INTO legacy VALUES (1, 'old'), (2, 'older');
CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, msg VARCHAR(100)) ENGINE=InnoDB;
CREATE VIEW big_spenders AS SELECT customer, SUM(total) AS spent FROM orders GROUP BY customer;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (msg) VALUES (CONCAT('order ', NEW.id));
CREATE PROCEDURE add_order(c INT, t DECIMAL(10,2)) INSERT INTO orders (customer, total) VALUES (c, t);
CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE id < 0;
${extra}`;
}
