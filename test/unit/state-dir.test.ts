// The state dir holds locks, named pipes, process records and run state that the root
// agent trusts: it is never a predictable shared path, and an existing one that another
// user could have prepared (a link, someone else's, writable by others, below a directory
// others can rename entries in) is refused with a hint naming it and the fix.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfigText } from '../../agent/config/load.ts';
import { defaultStateDir, prepareStateDir } from '../../agent/config/state-dir.ts';
import { ConfigError } from '../../agent/errors.ts';

const base = mkdtempSync(path.join(tmpdir(), 'snapagent-state-dir-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const TARGETS = 'targets: [{ name: l, type: local, path: /b }]\n';
const fresh = () => path.join(base, `s${++n}`);
const uid = process.getuid!();
const refused = (what: RegExp, fix: RegExp) => (err: unknown) => err instanceof ConfigError && what.test(err.message) && fix.test(err.hint ?? '');

describe('state dir: the default', () => {
  it('is /var/lib/snapagent for root, whatever the environment', () => {
    assert.equal(defaultStateDir({ HOME: '/root' }, 0), '/var/lib/snapagent');
    assert.equal(defaultStateDir({}, 0), '/var/lib/snapagent');
  });

  it('is under $XDG_STATE_HOME, else $HOME/.local/state, for another user', () => {
    assert.equal(defaultStateDir({ XDG_STATE_HOME: '/home/u/.st', HOME: '/home/u' }, 1000), '/home/u/.st/snapagent');
    assert.equal(defaultStateDir({ HOME: '/home/u' }, 1000), '/home/u/.local/state/snapagent');
    assert.equal(defaultStateDir({ XDG_STATE_HOME: 'relative', HOME: '/home/u' }, 1000), '/home/u/.local/state/snapagent', 'a relative XDG path is ignored (XDG spec)');
  });

  it('does not exist for a non-root agent without HOME: no /tmp fallback, the loader says what to set', () => {
    assert.equal(defaultStateDir({}, 1000), undefined);
    assert.equal(defaultStateDir({ HOME: '' }, 1000), undefined);
    assert.equal(defaultStateDir({ HOME: 'rel' }, 1000), undefined);
    assert.throws(() => parseConfigText(TARGETS, 'f.yml', base, {}, 1000), refused(/f\.yml: state_dir/, /state_dir|HOME/));
    assert.equal(parseConfigText(TARGETS + 'state_dir: st\n', 'f.yml', base, {}, 1000).stateDir, path.join(base, 'st'));
  });
});

describe('state dir: an existing directory is checked before use', () => {
  it('a missing one is created 0700 and owned by the agent', () => {
    const dir = path.join(fresh(), 'a/b');
    const old = process.umask(0);
    try {
      prepareStateDir(dir, uid);
    } finally {
      process.umask(old);
    }
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(dir).uid, uid);
  });

  it('one of the agent, 0700, is accepted as it is', () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(path.join(dir, 'keep'), '');
    prepareStateDir(dir, uid);
    assert.deepEqual(readdirSync(dir), ['keep']);
  });

  it('one others may only read (e.g. a fresh Docker volume, 0755) is narrowed to 0700', () => {
    const dir = fresh();
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    prepareStateDir(dir, uid);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });

  for (const mode of [0o777, 0o770, 0o702]) {
    it(`one writable by others (${mode.toString(8)}) is refused, and left as it is`, () => {
      const dir = fresh();
      mkdirSync(dir);
      chmodSync(dir, mode);
      assert.throws(() => prepareStateDir(dir, uid), refused(new RegExp(`${dir}.*writable`), new RegExp(`chmod 700 ${dir}`)));
      assert.equal(statSync(dir).mode & 0o777, mode);
    });
  }

  it("one owned by another user is refused (as root: the attacker's dir is not adopted)", () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, 65534, 65534);
    assert.throws(() => prepareStateDir(dir, uid), refused(new RegExp(`${dir}.*owned by uid 65534`), new RegExp(`chown ${uid} ${dir}`)));
  });

  it('a symlink is refused, even to a good directory, and its target is not touched', () => {
    const real = fresh();
    mkdirSync(real);
    chmodSync(real, 0o755);
    const link = fresh();
    symlinkSync(real, link);
    assert.throws(() => prepareStateDir(link, uid), refused(new RegExp(`${link}.*symbolic link`), /state_dir/));
    assert.equal(statSync(real).mode & 0o777, 0o755);
    assert.ok(lstatSync(link).isSymbolicLink());
  });

  it('a file is refused', () => {
    const file = fresh();
    writeFileSync(file, '');
    assert.throws(() => prepareStateDir(file, uid), refused(/not a directory/, /state_dir/));
  });

  it('one inside a directory where others may rename entries (0777, no sticky bit) is refused', () => {
    const shared = fresh();
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    assert.throws(() => prepareStateDir(path.join(shared, 'state'), uid), refused(new RegExp(`${shared}.*writable`), /state_dir/));
    const sticky = fresh();
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    prepareStateDir(path.join(sticky, 'state'), uid); // like /tmp: others cannot rename our entries
  });
});
