// The local target against someone who can write into the target directory (a shared
// NAS, a container that mounts the backups directory): whatever they plant — symlinks
// at the names the agent is about to create, symlinked host/job/id directories — the
// root agent never writes, reads or removes anything outside the target root. What every
// target must do (modes, atomic writes, listing, removal) is in test/contract/target-suite.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { TargetError } from '../../agent/errors.ts';
import { LocalTarget } from '../../agent/targets/local.ts';

const base = mkdtempSync(path.join(tmpdir(), 'snapagent-local-target-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

// A target root plus, outside it, a canary file and a canary directory the attacker aims at.
function setup() {
  const dir = path.join(base, `t${++n}`);
  const root = path.join(dir, 'root');
  const outside = path.join(dir, 'outside');
  mkdirSync(root, { recursive: true });
  mkdirSync(path.join(outside, 'id1'), { recursive: true });
  const canary = path.join(outside, 'canary');
  writeFileSync(canary, 'precious\n');
  writeFileSync(path.join(outside, 'id1', 'payload.tar.zst'), 'victim file\n');
  const snapshot = () => JSON.stringify(tree(outside));
  const before = snapshot();
  return {
    root,
    outside,
    canary,
    target: new LocalTarget('local', root),
    // Everything outside: names, sizes, modes, contents and mtimes are as they were.
    assertUntouched: () => assert.equal(snapshot(), before, 'nothing outside the target root changed'),
  };
}

function tree(dir: string): unknown[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((e) => {
      const p = path.join(e.parentPath, e.name);
      const st = lstatSync(p);
      return [path.relative(dir, p), st.mode, st.size, st.mtimeMs, e.isFile() ? readFileSync(p, 'utf8') : ''];
    })
    .sort();
}

const put = (t: LocalTarget, key: string, text: string) => t.put(key, Readable.from([Buffer.from(text)]), AbortSignal.timeout(10_000));
const refused = (what: RegExp) => (err: unknown) => err instanceof TargetError && what.test(err.message) && Boolean(err.hint);

describe('local target: files are created, never opened through a planted link', () => {
  it('put does not write through a symlink planted at the .partial name', async () => {
    const s = setup();
    mkdirSync(path.join(s.root, 'h/j/id1'), { recursive: true });
    symlinkSync(s.canary, path.join(s.root, 'h/j/id1/payload.tar.zst.partial'));
    const missing = path.join(s.outside, 'created-by-agent');
    symlinkSync(missing, path.join(s.root, 'h/j/id1/other.partial'));
    // Either outcome is safe; what matters is the canary. This implementation replaces the link.
    await put(s.target, 'h/j/id1/payload.tar.zst', 'backup bytes');
    await put(s.target, 'h/j/id1/other', 'more bytes');
    s.assertUntouched();
    assert.equal(existsSync(missing), false, 'no file created at the dangling link target');
    await s.target.publish('h/j/id1/payload.tar.zst');
    assert.equal(readFileSync(path.join(s.root, 'h/j/id1/payload.tar.zst'), 'utf8'), 'backup bytes');
    assert.ok(lstatSync(path.join(s.root, 'h/j/id1/payload.tar.zst')).isFile());
  });

  it('writeFile does not write through a symlink planted at manifest.json.partial', async () => {
    const s = setup();
    mkdirSync(path.join(s.root, 'h/j/id1'), { recursive: true });
    symlinkSync(s.canary, path.join(s.root, 'h/j/id1/manifest.json.partial'));
    await s.target.writeFile('h/j/id1/manifest.json', Buffer.from('{"ok":true}'));
    s.assertUntouched();
    assert.equal(readFileSync(path.join(s.root, 'h/j/id1/manifest.json'), 'utf8'), '{"ok":true}');
  });

  it('a stale regular .partial left by a killed run does not block a new put or manifest', async () => {
    const s = setup();
    mkdirSync(path.join(s.root, 'h/j/id1'), { recursive: true });
    writeFileSync(path.join(s.root, 'h/j/id1/payload.tar.zst.partial'), 'half of an old upload');
    writeFileSync(path.join(s.root, 'h/j/id1/manifest.json.partial'), '{"half');
    assert.deepEqual(await put(s.target, 'h/j/id1/payload.tar.zst', 'new'), { bytes: 3 });
    await s.target.publish('h/j/id1/payload.tar.zst');
    await s.target.writeFile('h/j/id1/manifest.json', Buffer.from('{}'));
    assert.equal(readFileSync(path.join(s.root, 'h/j/id1/payload.tar.zst'), 'utf8'), 'new');
    // writeFile uses a temporary name of its own (concurrent writers): the old leftover
    // stays, to go with its directory
    assert.deepEqual(readdirSync(path.join(s.root, 'h/j/id1')).sort(), ['manifest.json', 'manifest.json.partial', 'payload.tar.zst']);
  });

  it('check does not write through a symlink planted at the probe name', async () => {
    const s = setup();
    symlinkSync(s.canary, path.join(s.root, `.snapagent-probe-${process.pid}`));
    await s.target.check();
    s.assertUntouched();
  });

  it('reads refuse a symlinked manifest or artifact', async () => {
    const s = setup();
    mkdirSync(path.join(s.root, 'h/j/id1'), { recursive: true });
    symlinkSync(s.canary, path.join(s.root, 'h/j/id1/manifest.json'));
    symlinkSync(s.canary, path.join(s.root, 'h/j/id1/payload.tar.zst'));
    await assert.rejects(s.target.readFile('h/j/id1/manifest.json'), refused(/manifest\.json/));
    const chunks: Buffer[] = [];
    await assert.rejects(async () => {
      for await (const c of s.target.open('h/j/id1/payload.tar.zst', AbortSignal.timeout(10_000))) chunks.push(c as Buffer);
    }, TargetError);
    assert.equal(Buffer.concat(chunks).length, 0, 'not a byte of the canary was read');
  });

  it('a FIFO planted at a manifest name is refused, not waited on', async () => {
    const s = setup();
    mkdirSync(path.join(s.root, 'h/j/id1'), { recursive: true });
    execFileSync('mkfifo', [path.join(s.root, 'h/j/id1/manifest.json')]);
    await assert.rejects(s.target.readFile('h/j/id1/manifest.json'), refused(/not a regular file/));
  });
});

describe('local target: directories below the root are never followed', () => {
  for (const level of ['host', 'job', 'id'] as const) {
    it(`a symlinked ${level} directory is refused by put, writeFile, readFile, removeFile and removeDir`, async () => {
      const s = setup();
      const link = { host: 'h', job: 'h/j', id: 'h/j/id1' }[level];
      mkdirSync(path.dirname(path.join(s.root, link)), { recursive: true });
      symlinkSync(level === 'id' ? path.join(s.outside, 'id1') : s.outside, path.join(s.root, link));
      // Keys that, followed through the link, name the canary dir's files.
      const keys = { host: 'h/id1/payload.tar.zst', job: 'h/j/id1/payload.tar.zst', id: 'h/j/id1/payload.tar.zst' };
      const key = keys[level];
      const named = new RegExp(link.replaceAll('/', '\\/'));
      await assert.rejects(put(s.target, `${path.posix.dirname(key)}/new`, 'x'), refused(named));
      await assert.rejects(s.target.writeFile(`${path.posix.dirname(key)}/manifest.json`, Buffer.from('{}')), refused(named));
      await assert.rejects(s.target.readFile(key), refused(named));
      await assert.rejects(s.target.removeFile(key), refused(named));
      await assert.rejects(s.target.removeDir(path.posix.dirname(key)), refused(named));
      await assert.rejects(s.target.removeDir(link), refused(named));
      s.assertUntouched();
      assert.ok(lstatSync(path.join(s.root, link)).isSymbolicLink(), 'the planted link is left for the operator to see');
    });
  }

  it('list skips symlinked files and does not descend into symlinked directories', async () => {
    const s = setup();
    await put(s.target, 'h/j/id1/payload', 'abc');
    await s.target.publish('h/j/id1/payload');
    symlinkSync(s.canary, path.join(s.root, 'h/j/id1/manifest.json'));
    symlinkSync(s.outside, path.join(s.root, 'h/j/id2'));
    symlinkSync(s.outside, path.join(s.root, 'h2'));
    assert.deepEqual((await s.target.list('')).map(({ key, size }) => ({ key, size })), [{ key: 'h/j/id1/payload', size: 3 }]);
    assert.deepEqual((await s.target.list('h/j')).map(({ key, size }) => ({ key, size })), [{ key: 'h/j/id1/payload', size: 3 }]);
    await assert.rejects(s.target.list('h/j/id2'), refused(/h\/j\/id2/));
  });

  it('removeDir removes a real backup directory, and the links inside it without following them', async () => {
    const s = setup();
    await put(s.target, 'h/j/id1/payload', 'abc');
    mkdirSync(path.join(s.root, 'h/j/id1/sub'));
    symlinkSync(s.outside, path.join(s.root, 'h/j/id1/sub/escape'));
    symlinkSync(s.canary, path.join(s.root, 'h/j/id1/manifest.json'));
    await s.target.removeDir('h/j/id1');
    assert.deepEqual(readdirSync(path.join(s.root, 'h/j')), []);
    s.assertUntouched();
  });

  it('keys cannot climb out of the root or name the root itself', async () => {
    const s = setup();
    await assert.rejects(put(s.target, '../outside/canary', 'x'), (e: unknown) => e instanceof TargetError && /below the target root/.test(e.message));
    await assert.rejects(s.target.removeDir(''), TargetError);
    await assert.rejects(s.target.removeDir('h/../..'), TargetError);
    s.assertUntouched();
  });

  it('the root itself may be a symlink chosen by the operator', async () => {
    const s = setup();
    const real = path.join(path.dirname(s.root), 'real-root');
    mkdirSync(real);
    const link = path.join(path.dirname(s.root), 'root-link');
    symlinkSync(real, link);
    const t = new LocalTarget('local', link);
    await t.check();
    await put(t, 'h/j/id1/payload', 'abc');
    await t.publish('h/j/id1/payload');
    assert.deepEqual((await t.list('h')).map(({ key, size }) => ({ key, size })), [{ key: 'h/j/id1/payload', size: 3 }]);
    assert.equal((await t.readFile('h/j/id1/payload')).toString(), 'abc');
    assert.ok(existsSync(path.join(real, 'h/j/id1/payload')));
  });
});
