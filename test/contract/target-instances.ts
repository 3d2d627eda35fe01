// The target instances the target contract suite (target-suite.ts) runs against: the local
// target and the rclone target over a storage that is a directory on this machine (a local
// path, an SFTP server's root, an S3 test server's bucket directory), with the fixtures'
// seeding, a peek at the storage, and cleanup. Used by test/unit/targets.test.ts (local,
// rclone on a local path: the fast tier) and test/contract/targets-remote.test.ts (SFTP, S3).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { LocalTarget } from '../../agent/targets/local.ts';
import { RcloneTarget, type RcloneOptions } from '../../agent/targets/rclone.ts';
import type { Instance, Peek } from './target-suite.ts';

export const base = mkdtempSync(path.join(tmpdir(), 'snapagent-targets-'));
let n = 0;
export const fresh = () => path.join(base, `t${++n}`);

// Root ignores permission bits: it is kept out by the immutable attribute instead.
const asRoot = process.getuid?.() === 0;
function setReadOnly(dir: string, on: boolean): void {
  if (asRoot) execFileSync('chattr', ['-R', on ? '+i' : '-i', dir]);
  else execFileSync('chmod', ['-R', on ? 'a-w' : 'u+w', dir]);
}

export function remove(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    if (existsSync(dir)) setReadOnly(dir, false); // a case that failed before its undo
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The storage as a directory on this machine. */
export function onDisk(dir: string): Peek {
  return {
    files: async () =>
      existsSync(dir)
        ? readdirSync(dir, { recursive: true, withFileTypes: true })
            .filter((e) => !e.isDirectory())
            .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
            .sort()
        : [],
    mode: async (key) => statSync(path.join(dir, key)).mode & 0o777,
    readOnly: async () => {
      setReadOnly(dir, true);
      return async () => setReadOnly(dir, false);
    },
  };
}

/** Writes `files` below `dir` on this machine. */
export function writeTree(dir: string, files: Record<string, Buffer | string>): void {
  for (const [key, data] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, key)), { recursive: true });
    writeFileSync(path.join(dir, key), data);
  }
}

export function local(dir: string, root: string): Instance {
  const make = () => new LocalTarget('local-suite', root);
  return { target: make(), again: make, peek: onDisk(root), seed: async (files) => writeTree(root, files), cleanup: async () => remove(dir) };
}

// Fixtures go up in one `rclone copy` (each rclone call costs ~0.1 s of CPU).
export function rclone(name: string, remote: string, dir: string, config?: string): Instance {
  const o: RcloneOptions = { name, remote, config, flags: [], timeoutSeconds: 60, retries: 0 };
  const make = () => new RcloneTarget(o);
  const seed = async (files: Record<string, Buffer | string>) => {
    const from = fresh();
    writeTree(from, files);
    await promisify(execFile)('rclone', [...(config ? ['--config', config] : []), 'copy', from, remote]);
    remove(from);
  };
  return { target: make(), again: make, peek: onDisk(dir), seed, cleanup: async () => remove(dir) };
}

export const rcloneCannot = {
  privateModes: 'rclone.ts leaves file and directory modes to the remote (rclone has no option for them)',
};
// rclone's moveto (operations.Move) deletes an existing destination before it moves.
export const moveReplaces = {
  atomicReplace: 'rclone moveto deletes the old file before it moves the new one in: a reader may find neither for a moment (never a part of one)',
};

