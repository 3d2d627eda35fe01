// The per-job catalog index (agent/catalog/catalog-index.ts, catalog.ts) on a real local
// target: the format round trip; a reader that finds no index or a stale one reads the
// manifests and writes it; one that finds it fresh reads one listing and the index only;
// changes behind the agent's back (a backup added, removed, a check record rewritten with
// the same size) are seen; and an index that is forged, moved or re-signed with a
// tampered entry is never believed over the files.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { readCatalog, refreshIndex } from '../../agent/catalog/catalog.ts';
import { decodeIndex, encodeIndex, INDEX_FILE, MAX_EMBEDDED, type IndexEntry } from '../../agent/catalog/catalog-index.ts';
import type { CatalogTrust, Manifest } from '../../agent/catalog/manifest.ts';
import { hostKey, makeKeyring, signatureFile, type HostKey } from '../../agent/catalog/signing.ts';
import { LocalTarget } from '../../agent/targets/local.ts';
import type { Target } from '../../agent/targets/target.ts';
import { writeFixtureBackup, writeFixtureCheck } from '../helpers/catalog-fixture.ts';

const HOST = 'h1';
const JOB = 'db';
const BASE = `${HOST}/${JOB}`;

// Counts the calls a reader makes to a real local target.
function counted(inner: Target): { target: Target; calls: Record<string, number>; reset(): void } {
  const calls: Record<string, number> = {};
  const target = new Proxy(inner, {
    get(t, prop, recv) {
      const v = Reflect.get(t, prop, recv) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1;
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
  return { target, calls, reset: () => Object.keys(calls).forEach((k) => delete calls[k]) };
}

describe('catalog index', () => {
  let dir: string;
  let root: string;
  let key: HostKey;
  let other: HostKey;
  let trust: CatalogTrust;
  let local: LocalTarget;
  let made: Manifest[];
  const at = (i: number) => new Date(Date.UTC(2026, 10, 1 + i, 2, 0, 0));
  const file = (...p: string[]) => path.join(root, ...p);
  const indexDoc = () => JSON.parse(readFileSync(file(HOST, JOB, INDEX_FILE), 'utf8'));

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'snapagent-catindex-'));
    key = await hostKey(path.join(dir, 'state'));
    other = await hostKey(path.join(dir, 'attacker'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    root = mkdtempSync(path.join(dir, 'target-'));
    local = new LocalTarget('local', root);
    trust = { keys: makeKeyring([], key), plugins: ['volume'], now: Date.UTC(2027, 0, 1), writer: { host: HOST, key } };
    made = [];
    for (let i = 0; i < 5; i++) made.push(await writeFixtureBackup(local, { host: HOST, job: JOB, at: at(i), dependsOn: i ? [made[0]!.id] : undefined }, key));
    await writeFixtureCheck(local, made[4]!, 'verify', 'ok', at(5), key);
  });

  it('round-trips entries: text, base64 for bytes that are not UTF-8, and files too big to embed', () => {
    const entries: IndexEntry[] = [
      { id: 'b', files: new Map([['manifest.json', { size: 3, modified: '1', bytes: Buffer.from('{}\n') }]]) },
      { id: 'a', files: new Map([['manifest.json', { size: 2, bytes: Buffer.from([0xff, 0xfe]) }], ['drill.json', { size: MAX_EMBEDDED + 1, modified: 'x' }]]) },
    ];
    const bytes = encodeIndex(HOST, JOB, entries, new Map());
    const doc = JSON.parse(bytes.toString());
    assert.deepEqual(doc.backups.map((b: { id: string }) => b.id), ['a', 'b'], 'sorted by id');
    assert.equal(doc.backups[1].files['manifest.json'].text, '{}\n');
    assert.equal(doc.backups[0].files['manifest.json'].base64, '//4=');
    assert.deepEqual(decodeIndex(bytes, HOST, JOB), new Map([entries[1]!, entries[0]!].map((e) => [e.id, e] as const)));
    assert.throws(() => decodeIndex(bytes, HOST, 'other'), /an index of h1\/db, not h1\/other/);
    const foreign = { ...doc, backups: [{ id: 'a', files: { 'volume.tar.zst': { size: 1, text: 'x' } } }] };
    assert.throws(() => decodeIndex(Buffer.from(JSON.stringify(foreign)), HOST, JOB), /volume\.tar\.zst is not a catalog file/);
    const twice = { ...doc, backups: [doc.backups[0], doc.backups[0]] };
    assert.throws(() => decodeIndex(Buffer.from(JSON.stringify(twice)), HOST, JOB), /listed twice/);
    assert.throws(() => decodeIndex(Buffer.from('{'), HOST, JOB), /not JSON/);
  });

  it('the first reader writes it; the next reads one listing and the index, and sees the same', async () => {
    const c = counted(local);
    const first = await readCatalog(c.target, `${HOST}/`, trust);
    assert.equal(first.backups.length, 5);
    assert.equal(c.calls.writeFile, 2, 'catalog.json.sig, then catalog.json');
    const doc = indexDoc();
    assert.equal(doc.format, 'snapagent.catalog/1');
    assert.deepEqual(doc.backups.map((b: { id: string }) => b.id), made.map((m) => m.id));
    assert.deepEqual(doc.backups[4].summary, { kind: 'incremental', tier: 'critical', started_at: made[4]!.started_at, size: made[4]!.artifacts.reduce((n, a) => n + a.size, 0), sha256: made[4]!.artifacts[0]!.sha256, depends_on: [made[0]!.id], verify: 'ok', signature: 'signed' });
    c.reset();
    const again = await readCatalog(c.target, `${HOST}/`, trust);
    assert.deepEqual(c.calls, { list: 1, readFile: 2 }, 'the listing, catalog.json and its signature');
    const plain = (cat: typeof first) => cat.backups.map((b) => ({ ...b, target: b.target.name }));
    assert.deepEqual(plain(again), plain(first));
    assert.equal(again.backups[4]!.checks.verify?.status, 'ok');
    // a reader without the host's key uses it too, and writes nothing
    c.reset();
    const { writer: _, ...reader } = trust;
    assert.equal((await readCatalog(c.target, BASE, reader)).backups.length, 5);
    assert.deepEqual(c.calls, { list: 1, readFile: 2 });
  });

  it('a backup added or removed behind its back: listed as it is, only the new files read, the index repaired', async () => {
    await readCatalog(local, BASE, trust);
    const added = await writeFixtureBackup(local, { host: HOST, job: JOB, at: at(6) }, key);
    rmSync(file(HOST, JOB, made[1]!.id), { recursive: true });
    const c = counted(local);
    const cat = await readCatalog(c.target, BASE, trust);
    assert.deepEqual(cat.backups.map((b) => b.manifest.id), [made[0]!.id, made[2]!.id, made[3]!.id, made[4]!.id, added.id]);
    assert.deepEqual(c.calls, { list: 1, readFile: 4, writeFile: 2 }, 'the index (2), the new manifest and its signature (2), then the index rewritten');
    assert.deepEqual(indexDoc().backups.map((b: { id: string }) => b.id), cat.backups.map((b) => b.manifest.id));
    c.reset();
    await readCatalog(c.target, BASE, trust);
    assert.deepEqual(c.calls, { list: 1, readFile: 2 }, 'fresh again');
  });

  it('a check record rewritten with the same size (a new modified stamp) is read again', async () => {
    await readCatalog(local, BASE, trust);
    const rec = file(HOST, JOB, made[4]!.id, 'verify.json');
    const before = readFileSync(rec);
    // the same length, another verdict: only the stamp tells
    const flipped = Buffer.from(before.toString().replace('"status": "ok"', '"status": "no"'));
    assert.equal(flipped.length, before.length);
    writeFileSync(rec, flipped);
    utimesSync(rec, new Date(), new Date(Date.now() + 5000));
    const cat = await readCatalog(local, BASE, trust);
    assert.equal(cat.backups[4]!.checks.verify?.status, 'failed', 'an unreadable record counts as failed, as without an index');
  });

  it('a writer that rewrote a record in the same stamp makes the index read it again (reread)', async () => {
    const rec = file(HOST, JOB, made[4]!.id, 'verify.json');
    const stamp = new Date(Date.UTC(2026, 10, 6, 3));
    const restamp = () => [rec, `${rec}.sig`].forEach((f) => utimesSync(f, stamp, stamp));
    restamp();
    await readCatalog(local, BASE, trust);
    await writeFixtureCheck(local, made[4]!, 'verify', 'ok', new Date(Date.UTC(2026, 10, 30)), key); // same size, another time
    restamp();
    // a reader cannot tell; the writer says which directory it wrote
    assert.equal((await readCatalog(local, BASE, trust)).backups[4]!.checks.verify?.at, at(5).toISOString());
    await refreshIndex(local, HOST, JOB, trust, new Set([`${BASE}/${made[4]!.id}`]));
    const { writer: _, ...reader } = trust;
    assert.equal((await readCatalog(local, BASE, reader)).backups[4]!.checks.verify?.at, '2026-11-30T00:00:00.000Z');
  });

  // The attacker can write anything to the target, but holds no trusted key.
  describe('an index that is not what this host wrote', () => {
    const forge = async (edit: (doc: any) => void, signer?: HostKey, asKey = `${BASE}/${INDEX_FILE}`) => {
      await readCatalog(local, BASE, trust);
      const doc = indexDoc();
      edit(doc);
      const bytes = Buffer.from(JSON.stringify(doc));
      writeFileSync(file(HOST, JOB, INDEX_FILE), bytes);
      if (signer) writeFileSync(file(HOST, JOB, `${INDEX_FILE}.sig`), signatureFile(signer, asKey, bytes));
    };
    // a genuine entry's manifest, with the data's sha256 replaced (same length)
    const tamper = (doc: any) => {
      const f = doc.backups[4].files['manifest.json'];
      f.text = f.text.replace(made[4]!.artifacts[0]!.sha256, 'f'.repeat(64));
    };
    const expectGenuine = async () => {
      const c = counted(local);
      const cat = await readCatalog(c.target, BASE, trust);
      assert.deepEqual(cat.backups.map((b) => [b.manifest.id, b.signature.state]), made.map((m) => [m.id, 'signed']));
      assert.equal(cat.backups[4]!.manifest.artifacts[0]!.sha256, made[4]!.artifacts[0]!.sha256, 'the stored manifest, not the planted one');
      return c.calls;
    };

    it('edited after signing: ignored, the manifests read, the index rewritten', async () => {
      await forge(tamper);
      const calls = await expectGenuine();
      assert.equal(calls.writeFile, 2, 'replaced by a genuine index');
      assert.ok(!indexDoc().backups[4].files['manifest.json'].text.includes('f'.repeat(64)));
    });

    it('re-signed by a key nobody trusts, or not signed at all: ignored', async () => {
      await forge(tamper, other);
      await expectGenuine();
      await forge(tamper);
      rmSync(file(HOST, JOB, `${INDEX_FILE}.sig`));
      await expectGenuine();
    });

    it("another job's genuine index moved here: its signature names the other job", async () => {
      await forge((doc) => void (doc.job = 'db'), key, `${HOST}/other-job/${INDEX_FILE}`);
      await expectGenuine();
    });

    it('signed by a trusted key but with a tampered entry: that manifest fails its own signature and is read from the target', async () => {
      await forge(tamper, key);
      const calls = await expectGenuine();
      assert.equal(calls.writeFile, 2, 'and the index is rewritten with the stored bytes');
      const { writer: _, ...reader } = trust;
      const c = counted(local);
      await readCatalog(c.target, BASE, reader);
      assert.deepEqual(c.calls, { list: 1, readFile: 2 });
    });

    it('an entry for a backup that is not on the target is not listed', async () => {
      await forge((doc) => {
        const ghost = structuredClone(doc.backups[4]);
        ghost.id = '20261201T020000Z-critical';
        doc.backups.push(ghost);
      }, key);
      const { writer: _, ...reader } = trust;
      assert.deepEqual((await readCatalog(local, BASE, reader)).backups.map((b) => b.manifest.id), made.map((m) => m.id));
    });
  });

  it('unsigned manifests are read from the target every time, and do not make the index rewritten every time', async () => {
    rmSync(file(HOST, JOB, made[2]!.id, 'manifest.json.sig'));
    await readCatalog(local, BASE, trust);
    const c = counted(local);
    const cat = await readCatalog(c.target, BASE, trust);
    assert.equal(cat.backups[2]!.signature.state, 'unsigned');
    assert.deepEqual(c.calls, { list: 1, readFile: 3 }, 'the index (2) and the unsigned manifest');
  });

  it("another host's jobs: read through their index, never rewritten by this host", async () => {
    const theirs = await writeFixtureBackup(local, { host: 'h2', job: JOB, at: at(1) }, key);
    const c = counted(local);
    const cat = await readCatalog(c.target, 'h2', trust);
    assert.deepEqual(cat.backups.map((b) => b.manifest.id), [theirs.id]);
    assert.equal(c.calls.writeFile, undefined);
  });
});
