// The storage contract (agent/targets/target.ts) as one suite that every target runs,
// after restic's internal/backend/test/suite.go: a backend's test file gives a factory
// of fresh, empty targets and declares what its storage cannot do; each case it cannot
// take is skipped with that reason printed, never left out silently.
//
// What the callers rely on, and so what is tested: the manifest is the commit point, so
// an artifact is never visible under its key before publish() (remotes without a
// server-side move: before put() resolved), a failed or aborted upload leaves nothing
// behind, a small file (manifest, signature, check record) is seen whole or not at all,
// a missing file is a TargetError naming the key (readCatalog and restore report it;
// open() reports it on the stream, which StoredInput reads), list() is recursive with
// the sizes verify compares, and removals cannot fail on what is already gone.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { TargetError } from '../../agent/errors.ts';
import { PARTIAL_SUFFIX, type StoredFile, type Target } from '../../agent/targets/target.ts';

/** The storage seen from behind the target (its directory on disk, the S3 server's). */
export interface Peek {
  /** Every file the storage holds below the target's root, whatever its name
   * ("/"-separated, relative to the root): what a target's own list() might hide. */
  files(): Promise<string[]>;
  /** Permission bits of the file or directory at `key`. */
  mode?(key: string): Promise<number>;
  /** Makes the storage refuse every write below the target's root; resolves to the undo. */
  readOnly?(): Promise<() => Promise<void>>;
}

export interface Instance {
  /** A target over fresh, empty storage. */
  target: Target;
  /** A second target over the same storage, sharing nothing in memory with `target`. */
  again(): Target;
  peek: Peek;
  /** Stores fixture files in one go (e.g. one `rclone copy`) rather than a writeFile each:
   * for cases about something else, to keep the suite fast. */
  seed?(files: Record<string, Buffer | string>): Promise<void>;
  cleanup(): Promise<void>;
}

/** What the backend cannot do, each with why. */
export interface Cannot {
  /** put() writes straight to the key (no server-side move), so the key is visible, whole,
   * once put() resolved; publish() has nothing to do. */
  publishByMove?: string;
  /** Files 0600 in directories 0700. */
  privateModes?: string;
  /** Peek.readOnly. */
  readOnly?: string;
  /** A writeFile() replaces the file in one step: a reader finds the old or the new one,
   * never neither. */
  atomicReplace?: string;
  /** Whatever the timing, a reader or a second writer of the key never sees or makes a
   * mix of two versions or a part of one. */
  wholeVersions?: string;
}

export interface TargetSuite {
  name: string;
  make(): Promise<Instance>;
  cannot?: Cannot;
}

const KEY = 'host/job/20250102T030405Z-daily/volume.tar.zst';
const DIR = 'host/job/20250102T030405Z-daily';

const bytes = (b: Buffer | string) => Readable.from([Buffer.from(b)]);
const signal = () => AbortSignal.timeout(60_000);
// keys and sizes (the `modified` stamps are compared by their own case)
const plain = (l: StoredFile[]) => l.map(({ key, size }) => ({ key, size }));
const sorted = (l: StoredFile[]) => plain([...l].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A TargetError that names the target and `key`: what callers print as is. */
function targetError(t: Target, key: string) {
  return (err: unknown) => {
    assert.ok(err instanceof TargetError, `a TargetError, not ${String(err)}`);
    assert.ok(err.message.includes(t.name), `the error names the target "${t.name}": ${err.message}`);
    assert.ok(err.message.includes(key), `the error names "${key}": ${err.message}`);
    return true;
  };
}

/** A TargetError saying that `key` is not there. */
function notFound(t: Target, key: string) {
  return (err: unknown) => {
    targetError(t, key)(err);
    assert.match((err as Error).message, /not found|no such file|does ?n[o']t exist/i, 'the error says the file is missing');
    return true;
  };
}

async function missing(t: Target, key: string): Promise<void> {
  await assert.rejects(t.readFile(key), notFound(t, key));
  const got: Buffer[] = [];
  await assert.rejects(async () => {
    for await (const c of t.open(key, signal())) got.push(c as Buffer);
  }, notFound(t, key));
  assert.equal(Buffer.concat(got).length, 0, `no byte of the missing ${key} was read`);
}

async function whole(t: Target, key: string, want: Buffer): Promise<void> {
  assert.ok((await t.readFile(key)).equals(want), `readFile(${key}) returns exactly what was stored`);
  assert.ok((await readAll(t.open(key, signal()))).equals(want), `open(${key}) streams exactly what was stored`);
}

async function readBack(t: Target, key: string, want: Buffer | string): Promise<void> {
  assert.ok((await t.readFile(key)).equals(Buffer.from(want)), `readFile(${key}) returns exactly what was stored`);
}

async function store(t: Target, key: string, data: Buffer | string): Promise<void> {
  await t.put(key, bytes(data), signal());
  await t.publish(key);
}

/**
 * A source that sends `before` bytes and then stops until released: `sent` resolves
 * once the target has asked for more after taking them (so they are on their way to
 * the storage, bar a pipe buffer or two). Then `finish()` ends it after `after` more
 * bytes, or `fail()` makes it error. Destroying it (an abort) takes effect at once.
 */
function heldSource(before: number, after = 0) {
  const chunk = randomBytes(64 * 1024);
  const hash = createHash('sha256');
  let pushed = 0;
  let held = false;
  let limit = before;
  let ending = false;
  let sent!: () => void;
  const reached = new Promise<void>((r) => (sent = r));
  // pushes while the consumer wants more; held at `limit` until finish()
  function pump(stream: Readable): void {
    while (pushed < limit) {
      hash.update(chunk);
      pushed += chunk.length;
      if (!stream.push(chunk)) return;
    }
    if (ending) stream.push(null);
    else if (!held) {
      held = true;
      sent();
    }
  }
  const stream = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      pump(this);
    },
  });
  return {
    stream,
    sent: reached,
    finish: () => {
      limit = before + after;
      ending = true;
      pump(stream); // read() was called and is waiting for a push
    },
    fail: (err: Error) => stream.destroy(err),
    sha256: () => hash.digest('hex'),
    size: before + after,
  };
}

/** `n` bytes that do not repeat in any short period, with their sha256. */
function* generated(n: number, hash: ReturnType<typeof createHash>) {
  const block = randomBytes(1 << 20);
  for (let i = 0; i * block.length < n; i++) {
    const c = Buffer.from(block.subarray(0, Math.min(block.length, n - i * block.length)));
    c.writeUInt32BE(i, 0);
    hash.update(c);
    yield c;
  }
}

/** A key written once and then rewritten 3 times (two versions in turn) while a
 * reader reads it in a loop: the reads that returned part of a version, and those that
 * failed after the first write. */
async function rewriteWhileReading(t: Target) {
  const key = `${DIR}/verify.json`;
  const versions = [Buffer.alloc(256 * 1024, 'a'), Buffer.alloc(200 * 1024, 'b')];
  const partial: string[] = [];
  const failed: string[] = [];
  let written = false;
  let writing = true;
  let reads = 0;
  const reader = (async () => {
    while (writing) {
      const after = written;
      const got = await t.readFile(key).catch((err: unknown) => {
        assert.ok(err instanceof TargetError, String(err));
        if (after) failed.push(err.message);
        return undefined;
      });
      if (got && !versions.some((v) => v.equals(got))) partial.push(`${got.length} bytes`);
      reads++;
    }
  })();
  try {
    for (let i = 0; i < 4; i++) {
      await t.writeFile(key, versions[i % 2]!);
      written = true;
    }
  } finally {
    writing = false;
    await reader;
  }
  assert.ok(reads > 1, 'the reader ran alongside the writer');
  await readBack(t, key, versions[1]!);
  return { key, partial, failed };
}

export function runTargetSuite(s: TargetSuite): void {
  const cannot = s.cannot ?? {};
  const moves = !cannot.publishByMove;
  const large = 64 << 20;
  // A case on a fresh target, cleaned up whatever happens.
  const on = (fn: (i: Instance & { seed(files: Record<string, Buffer | string>): Promise<void> }) => Promise<void>) => async () => {
    const i = await s.make();
    const seed = i.seed?.bind(i) ?? (async (files: Record<string, Buffer | string>) => {
      for (const [k, v] of Object.entries(files)) await i.target.writeFile(k, Buffer.from(v));
    });
    try {
      await fn({ ...i, seed });
    } finally {
      await i.cleanup();
    }
  };
  const needs = (what: keyof Cannot) => (cannot[what] ? { skip: `${s.name} cannot: ${cannot[what]}` } : {});

  describe(`target contract: ${s.name}`, { concurrency: 1 }, () => {
    describe('check', () => {
      it('passes on a fresh target and on one that exists; lists nothing before and after, and leaves no file behind', on(async ({ target, peek, again }) => {
        assert.deepEqual(plain(await target.list('')), [], 'before check() made the root');
        await target.check();
        await again().check();
        assert.deepEqual(await peek.files(), []);
        assert.deepEqual(plain(await target.list('')), []);
      }));

      it('the description names the kind of target', on(async ({ target }) => {
        assert.match(target.description, /^(local|rclone) \S/);
      }));
    });

    describe('put and publish', () => {
      it('nothing under the key until publish, then exactly the bytes; list shows the partial upload meanwhile', needs('publishByMove'), on(async ({ target, peek }) => {
        const data = randomBytes(300_000);
        assert.deepEqual(await target.put(KEY, bytes(data), signal()), { bytes: data.length });
        await missing(target, KEY);
        assert.deepEqual(plain(await target.list(DIR)), [{ key: KEY + PARTIAL_SUFFIX, size: data.length }], 'list includes the partial upload, by its .partial name');
        await target.publish(KEY);
        await whole(target, KEY, data);
        assert.deepEqual(await peek.files(), [KEY], 'nothing else is left in the storage');
      }));

      it('put writes straight to the key: visible whole once put resolved, publish does nothing', { skip: moves ? `${s.name} publishes by a server-side move (tested above)` : false }, on(async ({ target, peek }) => {
        const data = randomBytes(300_000);
        assert.deepEqual(await target.put(KEY, bytes(data), signal()), { bytes: data.length });
        await whole(target, KEY, data);
        await target.publish(KEY);
        assert.deepEqual(plain(await target.list(DIR)), [{ key: KEY, size: data.length }]);
        assert.deepEqual(await peek.files(), [KEY]);
      }));

      it('while an upload streams nothing is readable under its key', on(async ({ target, peek }) => {
        const src = heldSource(4 << 20, 1 << 20);
        const put = target.put(KEY, src.stream, signal());
        put.catch(() => undefined);
        await src.sent;
        await missing(target, KEY);
        assert.ok(!(await target.list(DIR)).some((f) => f.key === KEY), 'the key is not listed mid-upload');
        assert.ok(!(await peek.files()).includes(KEY), 'the storage holds nothing under the key mid-upload');
        src.finish();
        assert.deepEqual(await put, { bytes: src.size });
        await target.publish(KEY);
        const got = await readAll(target.open(KEY, signal()));
        assert.equal(got.length, src.size);
        assert.equal(sha256(got), src.sha256());
      }));

      it('an upload aborted through its signal rejects with the abort reason and leaves nothing', on(async ({ target, peek }) => {
        const src = heldSource(2 << 20);
        const ac = new AbortController();
        const put = target.put(KEY, src.stream, ac.signal);
        put.catch(() => undefined);
        await src.sent;
        const reason = new Error('the run was cancelled');
        ac.abort(reason);
        await assert.rejects(put, (err) => err === reason);
        assert.deepEqual(plain(await target.list('')), []);
        assert.deepEqual(await peek.files(), [], 'no partial upload is left in the storage');
        if (moves) await assert.rejects(target.publish(KEY), targetError(target, KEY), 'nothing is left to publish');
      }));

      it('an upload whose source fails rejects with a TargetError saying why and leaves nothing', on(async ({ target, peek }) => {
        const src = heldSource(2 << 20);
        const put = target.put(KEY, src.stream, signal());
        put.catch(() => undefined);
        await src.sent;
        src.fail(new Error('the producer broke'));
        await assert.rejects(put, (err) => targetError(target, KEY)(err) && /the producer broke/.test((err as Error).message));
        assert.deepEqual(plain(await target.list('')), []);
        assert.deepEqual(await peek.files(), [], 'no partial upload (and no truncated file) is left in the storage');
      }));

      it('an empty upload stores an empty file', on(async ({ target }) => {
        assert.deepEqual(await target.put(KEY, Readable.from([]), signal()), { bytes: 0 });
        await target.publish(KEY);
        await whole(target, KEY, Buffer.alloc(0));
        assert.deepEqual(plain(await target.list(DIR)), [{ key: KEY, size: 0 }]);
      }));

      it('publish of a key without a completed put fails, naming the key', needs('publishByMove'), on(async ({ target, peek }) => {
        await assert.rejects(target.publish(KEY), targetError(target, KEY));
        await store(target, `${DIR}/other`, 'x');
        await assert.rejects(target.publish(`${DIR}/other`), targetError(target, `${DIR}/other`), 'publishing twice fails');
        await assert.rejects(target.publish(KEY), targetError(target, KEY));
        assert.deepEqual(await peek.files(), [`${DIR}/other`]);
      }));

      it('two uploads of different keys at once both arrive whole', on(async ({ target, peek }) => {
        const a = randomBytes(3 << 20);
        const b = randomBytes(2 << 20);
        await Promise.all([store(target, `${DIR}/a.tar.zst`, a), store(target, `${DIR}/b.tar.zst`, b)]);
        await readBack(target, `${DIR}/a.tar.zst`, a);
        await readBack(target, `${DIR}/b.tar.zst`, b);
        assert.deepEqual(sorted(await target.list(DIR)), [{ key: `${DIR}/a.tar.zst`, size: a.length }, { key: `${DIR}/b.tar.zst`, size: b.length }]);
        assert.deepEqual((await peek.files()).sort(), [`${DIR}/a.tar.zst`, `${DIR}/b.tar.zst`]);
      }));

      it(`a large stream (${large >> 20} MiB) is stored and read back byte for byte`, on(async ({ target, again }) => {
        const h = createHash('sha256');
        assert.deepEqual(await target.put(KEY, Readable.from(generated(large, h)), signal()), { bytes: large });
        await target.publish(KEY);
        const want = h.digest('hex');
        assert.deepEqual(plain(await again().list(DIR)), [{ key: KEY, size: large }]);
        const r = createHash('sha256');
        let got = 0;
        for await (const c of again().open(KEY, signal())) {
          r.update(c as Buffer);
          got += (c as Buffer).length;
        }
        assert.equal(got, large);
        assert.equal(r.digest('hex'), want);
      }));
    });

    describe('writeFile', () => {
      it('stores a small file whole and overwrites it', on(async ({ target, peek, again }) => {
        const key = `${DIR}/manifest.json`;
        await target.writeFile(key, Buffer.from('{"v":1,"longer":true}'));
        await readBack(target, key, '{"v":1,"longer":true}');
        await target.writeFile(key, Buffer.from('{}'));
        await readBack(again(), key, '{}');
        assert.deepEqual(plain(await target.list(DIR)), [{ key, size: 2 }]);
        assert.deepEqual(await peek.files(), [key], 'no temporary file is left');
      }));

      // The catalog index trusts a listing whose sizes and stamps match what it recorded:
      // a rewrite of the same size must show in the stamp (here the second write is
      // at least 1.1 s later: SFTP keeps whole seconds).
      it('a file written again with the same size lists with a new modified stamp', on(async ({ target, again }) => {
        const key = `${DIR}/verify.json`;
        await target.writeFile(key, Buffer.from('{"status":"ok","at":1}'));
        const [first] = await target.list(DIR);
        assert.ok(first?.modified, 'the listing reports a modified stamp');
        assert.deepEqual(await again().list(DIR), [first], 'the same stamp on every listing');
        await new Promise((r) => setTimeout(r, 1100));
        await target.writeFile(key, Buffer.from('{"status":"ok","at":2}'));
        const [second] = await again().list(DIR);
        assert.equal(second?.size, first.size);
        assert.notEqual(second?.modified, first.modified);
      }));

      it('readers never see part of a version while it is written and rewritten', needs('wholeVersions'), on(async ({ target, peek }) => {
        const r = await rewriteWhileReading(target);
        assert.deepEqual(r.partial, [], 'every read returned a whole version');
        assert.deepEqual(await peek.files(), [r.key], 'no temporary file is left');
      }));

      it('a file being rewritten is never missing for a moment', needs('atomicReplace'), on(async ({ target }) => {
        const r = await rewriteWhileReading(target);
        assert.deepEqual(r.failed, [], 'no read after the first write failed (found the file missing)');
      }));

      it('two writers of the same key at once: one whole version wins (a loser fails with a TargetError)', needs('wholeVersions'), on(async ({ target, peek }) => {
        const key = `${DIR}/drill.json`;
        const a = Buffer.alloc(512 * 1024, 'a');
        const b = Buffer.alloc(300 * 1024, 'b');
        for (let round = 0; round < 2; round++) {
          // Either may lose with a TargetError (SFTP: a rename onto a name the other just
          // created fails); the file is then the other's, whole.
          const [ra, rb] = await Promise.allSettled([target.writeFile(key, a), target.writeFile(key, b)]);
          for (const r of [ra, rb]) if (r.status === 'rejected') assert.ok(r.reason instanceof TargetError, String(r.reason));
          const got = await target.readFile(key);
          const winners = [...(ra.status === 'fulfilled' ? [a] : []), ...(rb.status === 'fulfilled' ? [b] : [])];
          assert.ok(winners.some((w) => w.equals(got)), `round ${round}: ${got.length} bytes are no whole version of a writer that succeeded`);
          assert.deepEqual(await peek.files(), [key], `round ${round}: no temporary file is left`);
        }
      }));
    });

    describe('reading', () => {
      it('a missing key: readFile rejects and open fails on the stream, with a TargetError naming the key', on(async ({ target, seed }) => {
        let stream: Readable | undefined;
        assert.doesNotThrow(() => (stream = target.open(KEY, signal())), 'open() itself does not throw');
        await assert.rejects(readAll(stream!), notFound(target, KEY));
        await assert.rejects(target.readFile(KEY), notFound(target, KEY)); // no root yet
        await seed({ [`${DIR}/other`]: 'x' });
        await missing(target, `${DIR}/volume.tar`); // its directory exists
      }));

      it('open fails (never ends cleanly short) when its signal fires mid-stream', on(async ({ target, seed }) => {
        await seed({ [KEY]: randomBytes(8 << 20) });
        const ac = new AbortController();
        const s2 = target.open(KEY, ac.signal);
        let got = 0;
        await assert.rejects(async () => {
          for await (const c of s2) {
            got += (c as Buffer).length;
            if (!ac.signal.aborted) ac.abort(new Error('stop reading'));
          }
        });
        assert.ok(got < 8 << 20, 'the stream stopped before its end');
      }));

      it('a reader that stops early does not hold the file (it can be removed at once)', on(async ({ target, peek, seed }) => {
        await seed({ [KEY]: randomBytes(8 << 20) });
        for await (const _ of target.open(KEY, signal())) break;
        await target.removeDir(DIR);
        assert.deepEqual(plain(await target.list('')), []);
        assert.deepEqual(await peek.files(), []);
      }));
    });

    it('list is recursive, with sizes, and keeps to its prefix ("a/b" is not "a/bc" or "a/b.txt"); a missing prefix lists nothing', on(async ({ target, again, seed }) => {
      const layout: Record<string, string> = {
        'h/j/a/b/1': 'one',
        'h/j/a/b/c/2': 'two!!',
        'h/j/a/bc/3': 'three',
        'h/j/a/b.txt': 'not below a/b',
        'h/x/4': 'other job',
      };
      const expect = (...keys: string[]) => keys.map((key) => ({ key, size: Buffer.byteLength(layout[key]!) }));
      await seed(layout);
      assert.deepEqual(sorted(await target.list('h/j/a/b')), expect('h/j/a/b/1', 'h/j/a/b/c/2'));
      assert.deepEqual(sorted(await target.list('h/j/a/b/')), expect('h/j/a/b/1', 'h/j/a/b/c/2'), 'a trailing slash changes nothing');
      assert.deepEqual(sorted(await target.list('h/j/a/bc')), expect('h/j/a/bc/3'));
      assert.deepEqual(sorted(await target.list('h/j')), expect('h/j/a/b.txt', 'h/j/a/b/1', 'h/j/a/b/c/2', 'h/j/a/bc/3'));
      assert.deepEqual(sorted(await again().list('')), expect('h/j/a/b.txt', 'h/j/a/b/1', 'h/j/a/b/c/2', 'h/j/a/bc/3', 'h/x/4'));
      assert.deepEqual(plain(await target.list('nothing')), []);
      assert.deepEqual(plain(await target.list('h/j/a/b/nothing/deeper')), []);
    }));

    describe('removing', () => {
      it('removeFile removes one file, for every later reader, and is idempotent', on(async ({ target, again, peek, seed }) => {
        await seed({ [KEY]: 'artifact', [`${DIR}/manifest.json`]: '{}' });
        await target.removeFile(`${DIR}/manifest.json`);
        assert.deepEqual(plain(await again().list(DIR)), [{ key: KEY, size: 8 }]);
        await assert.rejects(again().readFile(`${DIR}/manifest.json`), notFound(target, `${DIR}/manifest.json`));
        await target.removeFile(`${DIR}/manifest.json`);
        await target.removeFile('never/was/here');
        await readBack(target, KEY, 'artifact');
        assert.deepEqual(await peek.files(), [KEY]);
      }));

      it('removeDir removes everything below the prefix (partial uploads too), leaves its siblings, and is idempotent', on(async ({ target, again, peek, seed }) => {
        await seed({ 'h/j/a/b/1': 'one', 'h/j/a/b/c/d/2': 'two', 'h/j/a/bc/4': 'sibling', 'h/j/a/b.txt': 'sibling file' });
        await target.put('h/j/a/b/3', bytes('interrupted'), signal());
        await target.removeDir('h/j/a/b');
        const left = [{ key: 'h/j/a/b.txt', size: 12 }, { key: 'h/j/a/bc/4', size: 7 }];
        assert.deepEqual(sorted(await again().list('')), left);
        assert.deepEqual((await peek.files()).sort(), ['h/j/a/b.txt', 'h/j/a/bc/4']);
        await target.removeDir('h/j/a/b');
        await target.removeDir('never/was/here');
        await target.removeDir('h');
        assert.deepEqual(plain(await again().list('')), []);
        assert.deepEqual(await peek.files(), []);
      }));
    });

    it('keys with spaces and unicode are stored, listed, read and removed as given', on(async ({ target, peek }) => {
      const dir = 'hôst ü/jöb 名前/20250102T030405Z-dai ly';
      const key = `${dir}/café ☕  two spaces.tar.zst`;
      const manifest = `${dir}/manifest (1).json`;
      const data = randomBytes(70_000);
      await store(target, key, data);
      await target.writeFile(manifest, Buffer.from('{"ü":"名"}'));
      await whole(target, key, data);
      await readBack(target, manifest, '{"ü":"名"}');
      assert.deepEqual(sorted(await target.list('hôst ü')), [{ key, size: data.length }, { key: manifest, size: Buffer.byteLength('{"ü":"名"}') }]);
      assert.deepEqual(plain(await target.list('hôst')), [], 'a prefix is whole names, not bytes');
      assert.deepEqual((await peek.files()).sort(), [key, manifest].sort());
      await target.removeFile(key);
      await target.removeDir('hôst ü');
      assert.deepEqual(plain(await target.list('')), []);
    }));

    describe('permissions', () => {
      it('stored files are 0600 and the directories made for them 0700', needs('privateModes'), on(async ({ target, peek }) => {
        await store(target, KEY, 'artifact');
        await target.writeFile(`${DIR}/manifest.json`, Buffer.from('{}'));
        for (const k of [KEY, `${DIR}/manifest.json`]) assert.equal((await peek.mode!(k)).toString(8), '600', k);
        for (const d of ['host', 'host/job', DIR]) assert.equal((await peek.mode!(d)).toString(8), '700', d);
      }));

      it('a read-only target: check and every write fail with a TargetError naming the target (and a hint), nothing is half-written, reads still work', needs('readOnly'), on(async ({ target, peek, seed }) => {
        await seed({ [`${DIR}/old`]: 'kept' });
        const undo = await peek.readOnly!();
        try {
          const named = (err: unknown) => err instanceof TargetError && err.message.includes(target.name) && Boolean(err.hint);
          await assert.rejects(target.check(), named);
          await assert.rejects(target.put('other/job/id/new', bytes(randomBytes(100_000)), signal()), named);
          await assert.rejects(target.writeFile(`${DIR}/manifest.json`, Buffer.from('{}')), named);
          await assert.rejects(target.writeFile(`${DIR}/old`, Buffer.from('replaced')), named);
          assert.deepEqual(await peek.files(), [`${DIR}/old`], 'nothing was half-written');
          await readBack(target, `${DIR}/old`, 'kept');
          assert.deepEqual(plain(await target.list('')), [{ key: `${DIR}/old`, size: 4 }]);
        } finally {
          await undo();
        }
      }));
    });
  });
}
