// What a restore takes from a manifest (the remote is data, not instructions): the job
// rebuilt for a backup not in the plan, the spec of a volume to recreate, a drill's image,
// and the Cassandra schema statements a restore may run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../agent/config/load.ts';
import type { Listed } from '../../agent/catalog/manifest.ts';
import type { Job } from '../../agent/plugin/contract.ts';
import { drillImage, globMatch, jobFromManifest, UntrustedManifestError, volumeSpec } from '../../agent/restore/restore-trust.ts';
import { plugins } from '../../plugins/index.ts';
import { checkKeyspaceCql, checkNames, checkTableCql, checkTypeCql, UnsafeSchemaError } from '../../plugins/cassandra/schema-check.ts';

const config = (restore = '') => parseConfigText(`host: h\n${restore}`, 'test.yml');
const ctx = (restore = '') => ({ config: config(restore), registry: plugins });

function listed(plugin: string, options: Record<string, unknown>, source: Record<string, unknown>): Listed {
  return {
    target: { name: 'local' },
    dir: 'h/j/20261121T020000Z-critical',
    checks: {},
    manifest: { job: 'j', id: '20261121T020000Z-critical', plugin, tier: 'critical', options, source, stats: {}, artifacts: [] },
  } as unknown as Listed;
}

const untrusted = (re: RegExp) => (err: Error & { exitCode?: number }) => err instanceof UntrustedManifestError && err.exitCode === 4 && re.test(err.message);

describe('a job rebuilt from a manifest', () => {
  const forged = { host: '127.0.0.1', port: 9, password_file: '/etc/shadow', password_env: 'AWS_SECRET_ACCESS_KEY', user: 'root', databases: ['shop'] };

  it('takes only what was backed up: no host, port, credentials, tool settings or accounts', () => {
    const job = jobFromManifest(ctx(), listed('mariadb', forged, { container: 'db' }), undefined, { toContainer: 'db2' });
    assert.deepEqual(job.options, { databases: ['shop'], non_transactional: 'warn' });
    const mongo = jobFromManifest(ctx(), listed('mongo', { ...forged, database: 'app', restore_users: true, auth_source: 'evil' }, {}), undefined, { toContainer: 'm' });
    assert.deepEqual(mongo.options, { database: 'app', auth_source: 'admin', oplog: 'auto', restore_users: false });
    const es = jobFromManifest(ctx(), listed('elasticsearch', { restore: { existing: 'delete' }, repository: 'x', location: '/etc', scheme: 'http', indices: ['a'] }, {}), undefined, { toContainer: 'e' });
    assert.equal((es.options as { restore: { existing: string } }).restore.existing, 'fail');
    assert.equal((es.options as { repository: string }).repository, 'snapagent');
    const cass = jobFromManifest(ctx(), listed('cassandra', { data_dir: '/etc', keyspaces: ['k'] }, {}), undefined, { toContainer: 'c' });
    assert.equal((cass.options as { data_dir: string }).data_dir, '/var/lib/cassandra/data');
  });

  it('uses the planned job whatever the manifest says, and refuses a plugin that differs', () => {
    const planned = { name: 'j', plugin: 'mariadb', container: 'mine', options: { host: 'db.local' } } as unknown as Job;
    assert.equal(jobFromManifest(ctx(), listed('mariadb', forged, { container: 'other' }), planned), planned);
    assert.throws(() => jobFromManifest(ctx(), listed('volume', {}, { volume: 'x' }), planned), untrusted(/says plugin volume, this host's job j is a mariadb job/));
    assert.throws(() => jobFromManifest(ctx(), listed('nosuch', {}, {}), planned), untrusted(/plugin "nosuch", which this agent does not have/));
  });

  it('restores into a recorded destination only when the config allows it or the command line names it', () => {
    const l = listed('volume', {}, { volume: 'victim' });
    assert.throws(() => jobFromManifest(ctx(), l, undefined), untrusted(/destination volume "victim" is not in restore.destinations/));
    assert.equal(jobFromManifest(ctx('restore: { destinations: ["vic*"] }'), l, undefined).volume, 'victim');
    assert.equal(jobFromManifest(ctx(), l, undefined, { toVolume: 'new' }).volume, undefined);
    assert.throws(() => jobFromManifest(ctx(), listed('mariadb', {}, { container: 'prod-db' }), undefined), untrusted(/destination container "prod-db"/));
    assert.equal(jobFromManifest(ctx(), l, undefined, { drill: true }).volume, undefined);
  });
});

describe('recreating a volume', () => {
  const src = (driver: string, driver_options: Record<string, string>) => ({ volume: 'v', driver, driver_options, labels: { keep: 'me' } });

  it('never as a bind mount of a host path, whatever the config allows', () => {
    const allowAll = config('restore: { volume_drivers: ["*"], driver_options: true }');
    for (const o of [{ type: 'none', o: 'bind', device: '/etc' }, { o: 'rbind', device: 'x' }, { type: 'ext4', device: '/dev/sda1' }] as Record<string, string>[]) {
      assert.throws(() => volumeSpec(allowAll, 'v', true, src('local', o), 'b'), untrusted(/as a bind mount of a host path/));
    }
  });

  it('with a recorded driver and options only as far as the config allows', () => {
    assert.deepEqual(volumeSpec(config(), 'v', true, src('local', {}), 'b'), { driver: 'local', options: {}, labels: { keep: 'me' } });
    assert.throws(() => volumeSpec(config(), 'v', true, src('evil/driver', {}), 'b'), untrusted(/driver "evil\/driver".*restore.volume_drivers/));
    const nfs = { type: 'nfs', o: 'addr=10.0.0.1,rw', device: ':/export' };
    assert.throws(() => volumeSpec(config(), 'v', true, src('local', nfs), 'b'), untrusted(/driver options type, o, device .*restore.driver_options/));
    assert.deepEqual(volumeSpec(config('restore: { driver_options: true }'), 'v', true, src('local', nfs), 'b').options, nfs);
    assert.throws(() => volumeSpec(config('restore: { driver_options: true }'), 'v', true, src('local', { type: 'cifs', password: '<redacted>' }), 'b'), untrusted(/password are not in the manifest/));
    const given = config('restore: { volumes: { v: { driver_options: { type: cifs, password: s3cret } } } }');
    assert.deepEqual(volumeSpec(given, 'v', true, src('evil', { type: 'none', o: 'bind' }), 'b'), { driver: 'local', options: { type: 'cifs', password: 's3cret' }, labels: { keep: 'me' } });
    // another volume than the backup's: a plain local one
    assert.deepEqual(volumeSpec(config(), 'other', false, src('evil', { type: 'none', o: 'bind', device: '/' }), 'b'), { driver: 'local', options: {}, labels: {} });
  });
});

describe('a drill image', () => {
  it('is the operator\'s, the job\'s own container\'s, or one the config allows', () => {
    assert.equal(drillImage(config(), 'evil:latest', undefined, 'mariadb:11', 'b'), 'mariadb:11');
    assert.equal(drillImage(config(), 'mariadb:11', 'mariadb:11', undefined, 'b'), 'mariadb:11');
    assert.equal(drillImage(config('restore: { drill_images: ["mariadb:*"] }'), 'mariadb:10.11', undefined, undefined, 'b'), 'mariadb:10.11');
    assert.throws(() => drillImage(config('restore: { drill_images: ["mariadb:*"] }'), 'evil/mariadb:1', 'mariadb:11', undefined, 'b'), untrusted(/image "evil\/mariadb:1".*restore.drill_images/));
    assert.ok(globMatch('snapagent-test/*', 'snapagent-test/mariadb:latest') && !globMatch('mariadb:*', 'xmariadb:1'));
  });
});

describe('the cassandra schema a restore runs', () => {
  const refused = (re: RegExp) => (err: Error & { exitCode?: number }) => err instanceof UnsafeSchemaError && err.exitCode === 4 && re.test(err.message);
  const TABLE = `CREATE TABLE IF NOT EXISTS shop.orders (
    id int PRIMARY KEY, v text, "Note" text)
    WITH ID = 5a1c395e-b41f-11e5-9f22-ba0be0483c18 AND comment = 'a; b -- c';
ALTER TABLE shop.orders DROP old USING TIMESTAMP 1700000000000000;
ALTER TABLE shop.orders ADD old int;
CREATE TYPE IF NOT EXISTS shop.addr (street text);
CREATE INDEX IF NOT EXISTS orders_v ON shop.orders (v);
CREATE CUSTOM INDEX ON shop.orders (v) USING 'StorageAttachedIndex';`;

  it('accepts the statements of a schema, for the keyspace and table restored', () => {
    assert.match(checkKeyspaceCql('shop', "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'} AND durable_writes = true;"), /^CREATE KEYSPACE shop/);
    assert.match(checkKeyspaceCql('Shop', 'CREATE KEYSPACE IF NOT EXISTS "Shop" WITH replication = {}'), /"Shop"/);
    checkTypeCql('shop', 'CREATE TYPE shop.addr (street text, city text);');
    assert.equal(checkTableCql('shop', 'orders', TABLE).length, 6);
  });

  it('refuses any other statement before one runs', () => {
    assert.throws(() => checkKeyspaceCql('shop', "CREATE KEYSPACE shop WITH replication = {}; DROP KEYSPACE system_auth"), refused(/holds 2 statements.*DROP KEYSPACE system_auth/));
    assert.throws(() => checkKeyspaceCql('shop', 'DROP KEYSPACE system_auth'), refused(/not a CREATE KEYSPACE shop/));
    assert.throws(() => checkKeyspaceCql('shop', 'CREATE KEYSPACE other WITH replication = {}'), refused(/not a CREATE KEYSPACE shop/));
    assert.throws(() => checkTypeCql('shop', "CREATE ROLE evil WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = 'x'"), refused(/CREATE ROLE evil/));
    assert.throws(() => checkTypeCql('shop', 'CREATE TYPE other.t (a int)'), refused(/type statement of keyspace shop/));
    for (const bad of ["CREATE ROLE evil WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = 'x'", 'GRANT ALL ON ALL KEYSPACES TO evil', 'DROP KEYSPACE system_auth', 'DROP TABLE shop.customers', 'TRUNCATE shop.customers', 'INSERT INTO shop.orders (id) VALUES (1)', "CREATE FUNCTION shop.f (a int) CALLED ON NULL INPUT RETURNS int LANGUAGE java AS $$ return a; $$"]) {
      assert.throws(() => checkTableCql('shop', 'orders', `${TABLE}\n${bad};`), refused(/holds a statement a restore never runs/), bad);
    }
    assert.throws(() => checkTableCql('shop', 'orders', 'CREATE TABLE shop.customers (id int PRIMARY KEY);'), refused(/creates another table/));
    assert.throws(() => checkTableCql('shop', 'orders', `${TABLE}\nALTER TABLE shop.customers DROP name;`), refused(/alters another table/));
    assert.throws(() => checkTableCql('shop', 'orders', `${TABLE}\nCREATE INDEX i ON system_auth.roles (x);`), refused(/alters another table/));
    assert.throws(() => checkTableCql('shop', 'orders', '-- nothing'), refused(/no CREATE TABLE/));
    assert.throws(() => checkNames({ system_auth: { tables: {} } }), refused(/keyspace "system_auth"/));
    assert.throws(() => checkNames({ shop: { tables: { 'a/../b': {} } } }), refused(/not a plain table name/));
  });
});
