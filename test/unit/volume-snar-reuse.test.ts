// GNU tar (this machine's, as in the helper image) and a directory inode used again: a
// deleted directory's inode taken by a new directory under another name passes for a
// rename when the base's snapshot file is read as tar wrote it, and extracting the chain
// then fails. The plugin feeds tar the base with every device number 0 (withoutDevices):
// the new directory is stored whole and the chain extracts to exactly the new state. The
// reuse is made here by writing the new directory's inode into the deleted one's record
// (ext4 does it by itself: the volume e2e test met it).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { checkSnar, withoutDevices } from '../../plugins/volume/snar.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-snar-reuse-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// The record of directory `name` with its inode replaced (fields as checkSnar reads them).
function withInode(buf: Buffer, name: string, inode: number): Buffer {
  const fields = buf.toString('latin1').split('\0');
  const i = fields.indexOf(name);
  assert.ok(i > 0, `${name} is recorded`);
  fields[i - 1] = String(inode);
  return Buffer.from(fields.join('\0'), 'latin1');
}

const listing = (root: string) => execFileSync('sh', ['-c', 'cd "$1" && find . -printf "%y %p -> %l\\n" | LC_ALL=C sort', 'sh', root]).toString();

function chainInto(name: string, base: Buffer): { status: number | null; stderr: string; listing?: string } {
  const v = path.join(dir, 'v');
  writeFileSync(path.join(dir, `${name}.snar`), base);
  execFileSync('tar', ['-c', '-f', path.join(dir, `${name}.tar`), `--listed-incremental=${path.join(dir, `${name}.snar`)}`, '--no-check-device', '.'], { cwd: v });
  const out = path.join(dir, `out-${name}`);
  mkdirSync(out);
  for (const t of ['l0.tar', `${name}.tar`]) {
    const r = spawnSync('tar', ['-x', '-f', path.join(dir, t), '--listed-incremental=/dev/null'], { cwd: out, encoding: 'utf8' });
    if (r.status !== 0) return { status: r.status, stderr: r.stderr };
  }
  return { status: 0, stderr: '', listing: listing(out) };
}

it('a new directory on a deleted directory\'s inode: the chain extracts to the new state', () => {
  const v = path.join(dir, 'v');
  mkdirSync(path.join(v, 'keep'), { recursive: true });
  mkdirSync(path.join(v, 'a/sub'), { recursive: true });
  writeFileSync(path.join(v, 'keep/f'), 'x');
  writeFileSync(path.join(v, 'a/sub/n'), 'y');
  symlinkSync('keep', path.join(v, 'dirlink'));
  execFileSync('tar', ['-c', '-f', path.join(dir, 'l0.tar'), `--listed-incremental=${path.join(dir, 's0')}`, '--no-check-device', '.'], { cwd: v });
  const s0 = readFileSync(path.join(dir, 's0'));
  // the change: a/ (with a/sub) deleted, the symlink replaced by a directory
  rmSync(path.join(v, 'a'), { recursive: true });
  rmSync(path.join(v, 'dirlink'));
  mkdirSync(path.join(v, 'dirlink'));
  writeFileSync(path.join(v, 'dirlink/real'), 'z');
  const reused = withInode(s0, './a/sub', statSync(path.join(v, 'dirlink')).ino);
  checkSnar(reused);

  const asWritten = chainInto('raw', reused);
  assert.notEqual(asWritten.status, 0, 'tar takes it for a rename and fails');
  assert.match(asWritten.stderr, /Cannot rename/);

  const fixed = chainInto('fixed', withoutDevices(reused));
  assert.equal(fixed.status, 0, fixed.stderr);
  assert.equal(fixed.listing, listing(v));
  // nothing but the device numbers changed
  assert.deepEqual(checkSnar(withoutDevices(reused)), checkSnar(reused));
});
