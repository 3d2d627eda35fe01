// The elasticsearch plugin's file lists (plugins/elasticsearch/files.ts): what the
// listing helper prints, which files a backup ships against its base, the stored list
// read back (a list written by an earlier backup is input: checked), and the restore's
// assembly plan from the chain. The helpers running these lists against a real
// repository: test/e2e/elasticsearch-incremental.test.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { assemble, asFull, baseList, diff, encodeList, isRepoPath, parseList, parseListing, type Listed } from '../../plugins/elasticsearch/files.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const A = '20260101T000000Z-daily';
const B = '20260102T000000Z-daily';
const C = '20260103T000000Z-daily';

/** What LIST prints for these files (state digests equal unless told). */
function listing(files: Listed[], states = [sha('s'), sha('s')]): string {
  const recs = [`state ${states[0]}`, ...files.map((f) => `s ${f.size} ${f.path}`), ...[...files].reverse().map((f) => `${f.sha256}  ${f.path}`), `state ${states[1]}`];
  return recs.map((r) => `${r}\0`).join('');
}

const repoAtA: Listed[] = [
  { path: 'index-0', size: 10, sha256: sha('index-0') },
  { path: 'index.latest', size: 8, sha256: sha('gen0') },
  { path: 'snap-aaa.dat', size: 100, sha256: sha('snap-aaa') },
  { path: 'indices/Xq1-_Z/0/__blob1', size: 5000, sha256: sha('blob1') },
  { path: 'indices/Xq1-_Z/0/__-blob2', size: 7000, sha256: sha('blob2') },
];
const repoAtB: Listed[] = [
  ...repoAtA.filter((f) => f.path !== 'index.latest' && f.path !== 'index-0'),
  { path: 'index-1', size: 12, sha256: sha('index-1') },
  { path: 'index.latest', size: 8, sha256: sha('gen1') },
  { path: 'snap-bbb.dat', size: 100, sha256: sha('snap-bbb') },
  { path: 'indices/Xq1-_Z/0/__blob3', size: 300, sha256: sha('blob3') },
];

describe('elasticsearch file lists', () => {
  it('parses the listing helper\'s output: sizes and digests joined by name, sorted', () => {
    const { files, state } = parseListing(listing(repoAtA), 'repo');
    assert.equal(state, sha('s'));
    assert.deepEqual(files.map((f) => f.path), [...repoAtA].map((f) => f.path).sort());
    assert.deepEqual(files.find((f) => f.path === 'indices/Xq1-_Z/0/__-blob2'), repoAtA[4]);
  });

  it('refuses a listing whose repository changed while read, or with a file missing a digest', () => {
    assert.throws(() => parseListing(listing(repoAtA, [sha('s'), sha('t')]), 'repo'), /files changed while they were read/);
    const cut = listing(repoAtA).replace(`${repoAtA[0]!.sha256}  index-0\0`, '');
    assert.throws(() => parseListing(cut, 'repo'), /files changed while they were read/);
    assert.throws(() => parseListing(listing([]), 'repo'), /holds no files/);
    assert.throws(() => parseListing('garbage\0', 'repo'), /unexpected output/);
  });

  it('refuses file names Elasticsearch does not write (spaces, dot files, .., control characters)', () => {
    for (const bad of ['has space', '.snapagent/plan', 'indices/../../etc', 'a\nb', '/abs', 'x//y', '']) {
      assert.equal(isRepoPath(bad), false, bad);
    }
    for (const good of ['index-12', 'index.latest', 'snap-Ab_-c.dat', 'indices/-Xq/0/__-x', 'indices/a/12/index-Q']) assert.equal(isRepoPath(good), true, good);
    assert.throws(() => parseListing(listing([{ path: 'my notes.txt', size: 1, sha256: sha('x') }]), 'repo'), /not a name Elasticsearch writes/);
  });

  it('without a base every file is shipped (a full); with one only new or changed files', () => {
    const full = diff(repoAtA, A);
    assert.equal(full.ship.length, repoAtA.length);
    assert.deepEqual(full.dependsOn, []);
    const stored = baseList({ id: A, dependsOn: [], index: encodeList({ id: A, snapshot: 'job-a', files: full.files }) });
    assert.ok(typeof stored !== 'string');
    const inc = diff(repoAtB, B, stored);
    assert.deepEqual(inc.ship.map((f) => f.path).sort(), ['index-1', 'index.latest', 'indices/Xq1-_Z/0/__blob3', 'snap-bbb.dat']);
    assert.deepEqual(inc.dependsOn, [A]);
    assert.equal(inc.files.find((f) => f.path === 'indices/Xq1-_Z/0/__blob1')!.in, A);
    // a file of the same name and size but other bytes is shipped again
    const changed = repoAtB.map((f) => (f.path === 'snap-aaa.dat' ? { ...f, sha256: sha('other') } : f));
    assert.equal(diff(changed, B, stored).files.find((f) => f.path === 'snap-aaa.dat')!.in, B);
    // everything shipped: a full, whatever the base
    const all = asFull(inc, B);
    assert.equal(all.ship.length, repoAtB.length);
    assert.deepEqual(all.dependsOn, []);
  });

  it('a third backup refers to the backup that holds each file, oldest first', () => {
    const a = diff(repoAtA, A);
    const b = diff(repoAtB, B, baseList({ id: A, dependsOn: [], index: encodeList({ id: A, snapshot: 's', files: a.files }) }) as never);
    const repoAtC = [...repoAtB.filter((f) => f.path !== 'index.latest'), { path: 'index.latest', size: 8, sha256: sha('gen2') }];
    const c = diff(repoAtC, C, baseList({ id: B, dependsOn: [A], index: encodeList({ id: B, snapshot: 's', files: b.files }) }) as never);
    assert.deepEqual(c.dependsOn, [A, B]);
    assert.deepEqual(c.ship.map((f) => f.path), ['index.latest']);
    // only B's files still needed: A drops out of depends_on
    const repoAtC2 = repoAtC.filter((f) => !a.files.some((x) => x.path === f.path && x.sha256 === f.sha256));
    const c2 = diff(repoAtC2, C, baseList({ id: B, dependsOn: [A], index: encodeList({ id: B, snapshot: 's', files: b.files }) }) as never);
    assert.deepEqual(c2.dependsOn, [B]);
  });

  it('a stored list is checked: JSON, its schema, its own id, names, one entry per path, holders in the chain', () => {
    const files = diff(repoAtA, A).files;
    const good = encodeList({ id: A, snapshot: 'job-a', files });
    assert.equal(parseList(good, 'list').files.length, files.length);
    assert.throws(() => parseList(Buffer.from('{'), 'list'), /not JSON/);
    assert.throws(() => parseList(Buffer.from('{"version":"x"}'), 'list'), /not a file list/);
    const evil = encodeList({ id: A, snapshot: 'job-a', files: [...files, { path: '../../etc/passwd', size: 1, sha256: sha('x'), in: A }] });
    assert.throws(() => parseList(evil, 'list'), /files\.\d+\.path/);
    const twice = encodeList({ id: A, snapshot: 'job-a', files: [...files, files[0]!] });
    assert.throws(() => parseList(twice, 'list'), /listed twice/);
    assert.match(baseList({ id: B, dependsOn: [], index: good }) as string, /describes backup 20260101T000000Z-daily/);
    const stray = encodeList({ id: B, snapshot: 'job-b', files: files.map((f) => ({ ...f, in: C })) });
    assert.match(baseList({ id: B, dependsOn: [A], index: stray }) as string, /not a backup it depends on/);
  });

  it('the restore plan takes each file from the piece that holds it, and checks every file', () => {
    const a = diff(repoAtA, A);
    const b = diff(repoAtB, B, baseList({ id: A, dependsOn: [], index: encodeList({ id: A, snapshot: 's', files: a.files }) }) as never);
    const list = parseList(encodeList({ id: B, snapshot: 's', files: b.files }), 'list');
    const plan = assemble(list, B, [A]);
    assert.deepEqual(plan.pieces.map((p) => [p.id, p.paths.length]), [[A, 3], [B, 4]]);
    const lines = plan.plan.toString().trim().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('piece 0 ')).length, 3);
    assert.ok(lines.includes(`check ${sha('blob1')} indices/Xq1-_Z/0/__blob1`));
    assert.equal(lines.filter((l) => l.startsWith('check ')).length, repoAtB.length);
    // a holder that is not in the chain handed over: refused
    assert.throws(() => assemble(list, B, []), /not in its depends_on/);
    assert.throws(() => assemble(list, C, [A]), /describes backup/);
    // a chain piece holding none of the files is not read
    assert.deepEqual(assemble(list, B, ['20251231T000000Z-daily', A]).pieces[0]!.paths, []);
  });
});
