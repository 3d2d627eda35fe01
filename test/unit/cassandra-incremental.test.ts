// The cassandra plugin's incremental backups without a node: which files a backup ships
// given its base's index (file-index.ts), which backups a restore reads for which files,
// what an index read back from storage must look like; and the plugin's own shell
// scripts (scripts.ts: LIST, TAR, EXTRACT, SUMS) run by sh on a snapshot tree in a temp
// dir — a full, then an incremental after a flush and a compaction, staged back from
// both tars and checked file by file. The same scripts against real Cassandra:
// test/e2e/cassandra-incremental.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { IncrementalBase, Logger } from '../../agent/plugin/index.ts';
import { encodeIndex, type FileIndex, IndexError, memberOf, parseIndex, planBackup, planRestore, representedBytes, type SnapshotFile, usableBase } from '../../plugins/cassandra/file-index.ts';
import { EXTRACT, LIST, parseFiles, parseSums, SUMS, TAR } from '../../plugins/cassandra/scripts.ts';

const A = '20261201T020000Z-critical';
const B = '20261202T020000Z-critical';
const C = '20261203T020000Z-critical';
const hash = (s: string) => createHash('sha256').update(s).digest('hex');
const file = (table: string, name: string, content = `${table}/${name}`): SnapshotFile => ({ keyspace: 'shop', table, name, size: content.length, sha256: hash(content) });

function quietLog(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, log: { warn: (_o: unknown, m: string) => void warnings.push(m), info: () => undefined } as unknown as Logger };
}

const base = (index: FileIndex, dependsOn: string[] = []): IncrementalBase => ({ id: index.backup, dependsOn, index: encodeIndex(index), stats: {} });

describe('cassandra incremental: which files a backup ships', () => {
  const first = [file('orders', 'nb-1-big-Data.db'), file('orders', 'nb-1-big-Index.db'), file('orders', 'manifest.json', 'a'), file('customers', '.customers_name/nb-1-big-Data.db')];

  it('without a base: every file, held by the backup itself; depends on nothing', () => {
    const p = planBackup(A, first);
    assert.equal(p.ship.length, 4);
    assert.deepEqual(p.dependsOn, []);
    assert.ok(p.index.files.every((f) => f.backup === A));
    assert.deepEqual(p.reused, { files: 0, bytes: 0 });
    assert.equal(p.shipped.bytes, representedBytes(p.index));
  });

  it('with a base: equal SSTable files (table, name, size, sha256) stay where the base holds them; new and changed ones, and the snapshot\'s manifest.json and schema.cql, are shipped', () => {
    const a = planBackup(A, first);
    const next = [
      file('orders', 'nb-1-big-Data.db'),
      file('orders', 'nb-1-big-Index.db'),
      file('orders', 'manifest.json', 'a'), // the same bytes, but the snapshot's own
      file('orders', 'nb-2-big-Index.db', 'x'.repeat(first[1]!.size)), // the same size, other bytes
      file('orders', 'nb-2-big-Data.db'), // flushed since
      file('customers', '.customers_name/nb-1-big-Data.db'),
      { ...file('visits', 'nb-1-big-Data.db'), sha256: first[0]!.sha256, size: first[0]!.size }, // same bytes, other table
    ];
    const b = planBackup(B, next, usableBase(base(a.index), quietLog().log));
    assert.deepEqual(b.ship.map((f) => `${f.table}/${f.name}`).sort(), ['orders/manifest.json', 'orders/nb-2-big-Data.db', 'orders/nb-2-big-Index.db', 'visits/nb-1-big-Data.db']);
    assert.deepEqual(b.dependsOn, [A]);
    assert.equal(b.reused.files, 3);
    assert.equal(b.index.files.find((f) => f.name === 'nb-1-big-Data.db' && f.table === 'orders')!.backup, A);
    assert.equal(b.index.files.find((f) => f.name === 'nb-2-big-Data.db')!.backup, B);
    assert.equal(representedBytes(b.index), next.reduce((n, f) => n + f.size, 0));
    // a third: a file B reused from A still names A; one B shipped names B
    const c = planBackup(C, next, usableBase(base(b.index, [A]), quietLog().log));
    assert.deepEqual(c.ship.map((f) => f.name), ['manifest.json']);
    assert.deepEqual(c.dependsOn, [A, B], 'oldest first');
    assert.equal(c.index.files.find((f) => f.name === 'nb-1-big-Index.db')!.backup, A);
    assert.equal(c.index.files.find((f) => f.name === 'nb-2-big-Data.db')!.backup, B);
  });

  it('after a compaction replaced every file of the full, the next backup no longer depends on it', () => {
    const a = planBackup(A, first);
    const b = planBackup(B, [...first, file('orders', 'nb-2-big-Data.db')], usableBase(base(a.index), quietLog().log));
    const compacted = [file('orders', 'nb-3-big-Data.db'), file('customers', '.customers_name/nb-2-big-Data.db'), file('orders', 'nb-2-big-Data.db')];
    const c = planBackup(C, compacted, usableBase(base(b.index, [A]), quietLog().log));
    assert.deepEqual(c.dependsOn, [B]);
    const d = planBackup('20261204T020000Z-critical', [file('orders', 'nb-4-big-Data.db')], usableBase(base(c.index, [B]), quietLog().log));
    assert.deepEqual(d.dependsOn, [], 'nothing reused: a full');
  });

  it('a base index that cannot be built on gives a full, with a warning', () => {
    const a = planBackup(A, first);
    const cases: [string, IncrementalBase][] = [
      ['not JSON', { ...base(a.index), index: Buffer.from('{') }],
      ['another backup', { ...base(a.index), id: B }],
      ['a holder outside its chain', base({ ...a.index, files: a.index.files.map((f, i) => (i ? f : { ...f, backup: C })) })],
      ['an option-like file', base({ ...a.index, files: [{ ...a.index.files[0]!, name: '-rf' }] })],
      ['a path out of the table', base({ ...a.index, files: [{ ...a.index.files[0]!, name: '../../etc/passwd' }] })],
      ['a name holding a newline', base({ ...a.index, files: [{ ...a.index.files[0]!, name: 'nb-1-big-Data.db\nsnapagent-extracted' }] })],
      ['a keyspace of another shape', base({ ...a.index, files: [{ ...a.index.files[0]!, keyspace: 'shop;drop' }] })],
      ['a file twice', base({ ...a.index, files: [a.index.files[0]!, a.index.files[0]!] })],
      ['an unknown key', { ...base(a.index), index: Buffer.from(JSON.stringify({ ...a.index, extra: 1 })) }],
    ];
    for (const [what, b] of cases) {
      const q = quietLog();
      assert.equal(usableBase(b, q.log), undefined, what);
      assert.match(q.warnings.join(), /taking a full backup/, what);
    }
    assert.equal(usableBase(undefined, quietLog().log), undefined);
  });
});

describe('cassandra incremental: what a restore reads', () => {
  const a = planBackup(A, [file('orders', 'nb-1-big-Data.db'), file('orders', 'nb-1-big-Index.db'), file('spare', 'schema.cql', 'x')]);
  const b = planBackup(B, [file('orders', 'nb-1-big-Data.db'), file('orders', 'nb-1-big-Index.db'), file('orders', 'schema.cql'), file('spare', 'schema.cql', 'x')], usableBase(base(a.index), quietLog().log));
  const orders = { keyspace: 'shop', table: 'orders', files: 3, bytes: b.index.files.filter((f) => f.table === 'orders').reduce((n, f) => n + f.size, 0) };

  it('each file from the backup that holds it, the chain in its order, the chosen backup last', () => {
    const r = planRestore(parseIndex(encodeIndex(b.index), 'x'), B, [A], [orders, { keyspace: 'shop', table: 'spare', files: 1, bytes: 1 }]);
    assert.deepEqual(r.pieces.map((p) => [p.backup, p.files.map(memberOf)]), [
      [A, ['tables/shop/orders/nb-1-big-Data.db', 'tables/shop/orders/nb-1-big-Index.db']],
      [B, ['tables/shop/orders/schema.cql', 'tables/shop/spare/schema.cql']],
    ]);
  });

  it('one table: only the backups holding its files', () => {
    const r = planRestore(b.index, B, [A], [{ keyspace: 'shop', table: 'spare', files: 1, bytes: 1 }]);
    assert.deepEqual(r.pieces.map((p) => p.backup), [B]);
  });

  it('refuses a file held outside the chain, another backup\'s index, and files that do not add up to the manifest', () => {
    assert.throws(() => planRestore(b.index, B, [], [orders]), (e) => e instanceof IndexError && /not in its depends_on/.test(e.message));
    assert.throws(() => planRestore(b.index, C, [A, B], [orders]), /belongs to backup/);
    assert.throws(() => planRestore(b.index, B, [A], [{ ...orders, files: 4 }]), /lists 3 files .* its manifest records 4/);
    assert.throws(() => planRestore(b.index, B, [A], [{ ...orders, bytes: 1 }]), /its manifest records/);
  });
});

describe('cassandra incremental: the scripts\' output read back', () => {
  it('LIST: sizes and sums by dir; forged or foreign lines are ignored', () => {
    const out = [
      'snapagent-dir shop/orders-x/snapshots/T 2 10',
      'snapagent-size 1 4 nb-1-big-Data.db',
      'snapagent-size 1 6 .ix/nb-1-big-Data.db',
      `snapagent-sum 1 ${hash('a')}  ./nb-1-big-Data.db`,
      `snapagent-sum 1 ${hash('b')}  ./.ix/nb-1-big-Data.db`,
      `snapagent-sum 1 ${hash('c')}  nb-9-big-Data.db`, // not as sha256sum prints it
      'snapagent-odd 1 0',
      'snapagent-odd 2 3',
    ].join('\n');
    const l = parseFiles(out);
    assert.deepEqual([...l.get(1)!.sizes], [['nb-1-big-Data.db', 4], ['.ix/nb-1-big-Data.db', 6]]);
    assert.equal(l.get(1)!.sums.get('.ix/nb-1-big-Data.db'), hash('b'));
    assert.equal(l.get(1)!.sums.size, 2);
    assert.equal(l.get(2)!.odd, 3);
  });

  it('SUMS: a line it cannot read fails the check', () => {
    assert.deepEqual(parseSums(`${hash('a')}  tables/shop/t/x\nsnapagent-odd 0\n`), { sums: new Map([['tables/shop/t/x', hash('a')]]), odd: 0 });
    assert.equal(parseSums(`\\${hash('a')}  tables/shop/t/a\\nb\nsnapagent-odd 0\n`).odd, -1);
    assert.equal(parseSums(`${hash('a')}  tables/shop/t/x\n`).odd, -1, 'no count: cut short');
  });
});

describe('cassandra incremental: the scripts on a snapshot tree (sh, GNU tar, find)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-cass-incr-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const data = path.join(dir, 'data');
  const ORDERS = 'shop/orders-0123456789abcdef0123456789abcdef';
  const CUSTOMERS = 'shop/customers-fedcba9876543210fedcba9876543210';
  const tables = [
    { keyspace: 'shop', table: 'orders', dir: ORDERS },
    { keyspace: 'shop', table: 'customers', dir: CUSTOMERS },
  ];
  const sh = (script: string, args: string[], input?: Buffer) => {
    const r = spawnSync('sh', ['-c', script, 'snapagent', ...args], { input, maxBuffer: 1 << 26 });
    return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), raw: r.stdout };
  };
  const put = (rel: string, content: string) => {
    mkdirSync(path.dirname(path.join(data, rel)), { recursive: true });
    writeFileSync(path.join(data, rel), content);
  };
  // a "snapshot": what nodetool snapshot leaves (hard links in the real thing)
  const snapshot = (tag: string, files: Record<string, string>) => {
    for (const [rel, content] of Object.entries(files)) put(`${rel.startsWith('shop/customers') ? CUSTOMERS : ORDERS}/snapshots/${tag}/${rel.replace(/^shop\/(orders|customers)\//, '')}`, content);
  };
  const list = (tag: string): SnapshotFile[] => {
    const r = sh(LIST, [data, tag, ...tables.map((t) => t.dir)]);
    assert.equal(r.code, 0, r.stderr);
    const l = parseFiles(r.stdout);
    return tables.flatMap((t, i) => {
      const f = l.get(i + 1)!;
      assert.equal(f.odd, 0);
      return [...f.sizes].map(([name, size]) => ({ keyspace: t.keyspace, table: t.table, name, size, sha256: f.sums.get(name)! }));
    });
  };
  const tar = (tag: string, ship: SnapshotFile[]): Buffer => {
    const schema = path.join(dir, `snapagent-${tag}.cql`);
    writeFileSync(schema, `-- schema of ${tag}\n`);
    const listFile = path.join(dir, `${tag}.list`);
    writeFileSync(listFile, ship.map((f) => `${tables.find((t) => t.table === f.table)!.dir}/snapshots/${tag}/${f.name}\n`).join(''));
    const r = spawnSync('sh', ['-c', TAR, 'snapagent', data, schema, listFile], { maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr.toString());
    return r.stdout;
  };
  const stage = path.join(dir, 'stage');
  const extract = (mode: string, members: string[], archive: Buffer) => {
    const listFile = path.join(dir, 'members.list');
    writeFileSync(listFile, members.map((m) => `${m}\n`).join(''));
    return sh(EXTRACT, [stage, data, mode, listFile], archive);
  };

  it('a full, then an incremental: the second tar holds only the new files; both staged back match the index', () => {
    const sstable = (g: number, t: string) => ({ [`shop/${t}/nb-${g}-big-Data.db`]: `${t} data ${g} `.repeat(5000), [`shop/${t}/nb-${g}-big-Index.db`]: `${t} index ${g}`, [`shop/${t}/nb-${g}-big-TOC.txt`]: 'Data.db\nIndex.db\n' });
    snapshot(A, { ...sstable(1, 'orders'), ...sstable(1, 'customers'), 'shop/customers/.customers_name/nb-1-big-Data.db': 'idx 1', 'shop/orders/schema.cql': 'CREATE TABLE shop.orders (id int PRIMARY KEY);', 'shop/orders/manifest.json': '{"files":["nb-1-big-Data.db"]}' });
    const a = planBackup(A, list(A));
    assert.equal(a.index.files.length, 9);
    const fullTar = tar(A, a.ship);
    // a flush since (orders nb-2), the index of customers compacted (nb-2 replaces nb-1)
    snapshot(B, { ...sstable(1, 'orders'), ...sstable(2, 'orders'), ...sstable(1, 'customers'), 'shop/customers/.customers_name/nb-2-big-Data.db': 'idx 2', 'shop/orders/schema.cql': 'CREATE TABLE shop.orders (id int PRIMARY KEY);', 'shop/orders/manifest.json': '{"files":["nb-1-big-Data.db","nb-2-big-Data.db"]}' });
    const b = planBackup(B, list(B), usableBase(base(a.index), quietLog().log));
    assert.deepEqual(b.ship.map((f) => `${f.table}/${f.name}`).sort(), ['customers/.customers_name/nb-2-big-Data.db', 'orders/manifest.json', 'orders/nb-2-big-Data.db', 'orders/nb-2-big-Index.db', 'orders/nb-2-big-TOC.txt', 'orders/schema.cql']);
    assert.deepEqual(b.dependsOn, [A]);
    const incTar = tar(B, b.ship);
    assert.ok(incTar.length < fullTar.length * 0.7, `${incTar.length} vs ${fullTar.length}`);
    const members = spawnSync('tar', ['-t'], { input: incTar }).stdout.toString().trim().split('\n');
    assert.deepEqual(members.sort(), ['schema.cql', ...b.ship.map(memberOf)].sort());

    // the restore of B: A's files from A's tar, B's from B's, then every sha256 checked
    const plan = planRestore(b.index, B, [A], [{ keyspace: 'shop', table: 'orders' }, { keyspace: 'shop', table: 'customers' }]);
    assert.deepEqual(plan.pieces.map((p) => p.backup), [A, B]);
    let r = extract('fresh', plan.pieces[0]!.files.map(memberOf), fullTar);
    assert.equal(r.code, 0, r.stderr);
    r = extract('add', ['schema.cql', ...plan.pieces[1]!.files.map(memberOf)], incTar);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /snapagent-extracted/);
    const sums = parseSums(sh(SUMS, [stage]).stdout);
    assert.equal(sums.odd, 0);
    assert.deepEqual(new Map([...sums.sums].sort()), new Map(plan.files.map((f) => [memberOf(f), f.sha256] as const).sort()));
    assert.equal(readFileSync(path.join(stage, 'tables/shop/customers/.customers_name/nb-2-big-Data.db'), 'utf8'), 'idx 2');
    assert.ok(!existsSync(path.join(stage, 'tables/shop/customers/.customers_name/nb-1-big-Data.db')), 'the compacted-away file is not staged');

    // a file changed on the staging disk is seen by SUMS
    writeFileSync(path.join(stage, 'tables/shop/orders/nb-1-big-Index.db'), 'flipped');
    const changed = parseSums(sh(SUMS, [stage]).stdout).sums.get('tables/shop/orders/nb-1-big-Index.db');
    assert.notEqual(changed, plan.files.find((f) => f.name === 'nb-1-big-Index.db' && f.table === 'orders')!.sha256);
  });

  it('EXTRACT: a member missing from the tar fails; an empty list is refused (tar would take everything)', () => {
    const a = planBackup(A, list(A));
    const fullTar = tar(A, a.ship);
    assert.notEqual(extract('fresh', ['tables/shop/orders/nb-7-big-Data.db'], fullTar).code, 0);
    assert.equal(extract('fresh', [], fullTar).code, 64);
  });

  it('LIST: a file named unlike Cassandra\'s is counted, never printed', () => {
    put(`${ORDERS}/snapshots/${C}/nb-1-big-Data.db`, 'x');
    put(`${ORDERS}/snapshots/${C}/bad\nsnapagent-size 1 1 forged`, 'y');
    put(`${ORDERS}/snapshots/${C}/-rf`, 'z');
    put(`${ORDERS}/snapshots/${C}/.ix/deeper/nb-1-big-Data.db`, 'w');
    const r = sh(LIST, [data, C, ORDERS]);
    const l = parseFiles(r.stdout).get(1)!;
    assert.deepEqual([...l.sizes.keys()], ['nb-1-big-Data.db']);
    assert.equal(l.odd, 3);
    unlinkSync(path.join(data, `${ORDERS}/snapshots/${C}/-rf`));
  });
});
