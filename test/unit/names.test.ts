// The name validator every datastore plugin runs on names read from a server, a
// container's files or a manifest: the shared rule (no leading "-", no control
// characters, not empty), each datastore's stricter rule, and the refusal's wording.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkName, maxLength, sharedRule } from '../../agent/plugin/names.ts';
import { ExitCode, RefusedError } from '../../agent/errors.ts';
import { checkTables } from '../../plugins/cassandra/names.ts';
import { checkIndexNames } from '../../plugins/elasticsearch/names.ts';
import { checkDumpNames } from '../../plugins/mariadb/names.ts';
import { checkArchiveNames } from '../../plugins/mongo/names.ts';

function refusal(fn: () => unknown): RefusedError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof RefusedError, `expected a RefusedError, got ${String(err)}`);
    return err;
  }
  assert.fail('the name was accepted');
}

describe('datastore names', () => {
  it('accepts ordinary names, dots, spaces, unicode and inner dashes', () => {
    for (const n of ['shop', 'a-b', 'x.y', 'Zoë 😀', 'db$1', '`q`', 'a/b', '-'.padStart(5, 'x')]) assert.equal(sharedRule(n), undefined, n);
  });

  it('refuses option-like, control-character and empty names', () => {
    for (const n of ['--host=127.0.0.9', '-x', '-', '', 'a\nb', 'a\0b', 'tab\there', 'del\u007f', 'c1\u0085']) assert.notEqual(sharedRule(n), undefined, JSON.stringify(n));
  });

  it('names the kind, the name, the source and the reason, with a hint, and exits "refused"', () => {
    const e = refusal(() => checkName('database', '--host=127.0.0.9', 'container db-1', { hint: 'leave it out with options.databases' }));
    assert.equal(e.exitCode, ExitCode.refused);
    assert.match(e.message, /^database "--host=127\.0\.0\.9" in container db-1 is refused: it starts with "-"/);
    assert.equal(e.hint, 'leave it out with options.databases');
  });

  it('shows control characters escaped, so a name cannot forge a log line', () => {
    const e = refusal(() => checkName('table', 'x\nlevel=info msg=ok', 'container c'));
    assert.ok(!e.message.includes('\n'));
    assert.match(e.message, /"x\\nlevel=info msg=ok"/);
  });

  it('counts length in characters, not UTF-16 units', () => {
    assert.equal(maxLength(3)('😀😀😀'), undefined);
    assert.notEqual(maxLength(3)('abcd'), undefined);
  });

  it('mariadb: 64 characters at most; every database and table of the figures checked', () => {
    checkDumpNames({ shop: { customers: {}, 'a b': {} }, ['x'.repeat(64)]: {} }, 'container c');
    assert.match(refusal(() => checkDumpNames({ shop: { '-t': {} } }, 'container c')).message, /^table "-t" in database "shop" in container c is refused/);
    assert.match(refusal(() => checkDumpNames({ ['x'.repeat(65)]: {} }, 'container c')).message, /longer than 64/);
    assert.match(refusal(() => checkDumpNames({ '--all-databases': {} }, "the backup's manifest", true)).hint!, /restore another backup/);
  });

  it('mongo: the server\'s rules for databases and collections', () => {
    checkArchiveNames({ admin: { 'system.version': {} }, shop: { 'orders-2026': {}, 'a/b': {} } }, 'container c');
    for (const db of ['-x', 'a.b', 'a b', 'a$', 'a/b', 'x'.repeat(64)]) refusal(() => checkArchiveNames({ [db]: {} }, 'container c'));
    for (const coll of ['-x', 'a$b', 'a\0b']) refusal(() => checkArchiveNames({ shop: { [coll]: {} } }, 'container c'));
  });

  it('cassandra: \\w names, keyspaces up to 48, tables up to 222, ids as UUIDs', () => {
    const id = '5a1c3e40-0c1d-11f0-8de9-0242ac120002';
    checkTables([{ keyspace: 'shop', table: 'orders_2026', id }, { keyspace: 'k'.repeat(48), table: 't'.repeat(222), id }], ['shop'], 'container c');
    refusal(() => checkTables([], ['--help'], 'container c'));
    refusal(() => checkTables([], ['k'.repeat(49)], 'container c'));
    refusal(() => checkTables([{ keyspace: 'shop', table: 'a-b', id }], [], 'container c'));
    refusal(() => checkTables([{ keyspace: 'shop', table: 't'.repeat(223), id }], [], 'container c'));
    refusal(() => checkTables([{ keyspace: 'shop', table: 'orders', id: '../../etc' }], [], "the backup's manifest", true));
  });

  it('elasticsearch: nothing a multi-target expression would read as syntax', () => {
    checkIndexNames(['logs-2026.11', '.ds-logs-app-2026.11.21-000001', '.kibana_1'], 'container c');
    for (const n of ['a,b', '*', 'logs-*', '-logs', '_all', '+x', 'a b', 'a#b', 'a:b', '.', '..']) refusal(() => checkIndexNames([n], 'container c'));
  });
});
