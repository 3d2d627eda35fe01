// Every target runs the one contract suite (test/contract/target-suite.ts): the local
// target, and the rclone target on a local-path remote, over SFTP (a real OpenSSH on
// 127.0.0.1) and over S3 (`rclone serve s3`, scripts/build-s3-server.sh). No Docker.
//
// The rclone remotes are defined as an operator would: the local one in an rclone.conf
// given as the target's `config`, SFTP and S3 by RCLONE_CONFIG_* variables, set in this
// test process's environment (which the rclone children inherit).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe } from 'node:test';
import { promisify } from 'node:util';
import { LocalTarget } from '../../agent/targets/local.ts';
import { RcloneTarget, type RcloneOptions } from '../../agent/targets/rclone.ts';
import { runTargetSuite, type Instance, type Peek } from '../contract/target-suite.ts';
import { startS3Server, type S3Server } from '../helpers/s3-server.ts';
import { startSftpServer, type SftpServer } from '../helpers/sftp-server.ts';

const base = mkdtempSync(path.join(tmpdir(), 'snapagent-targets-'));
let n = 0;
const fresh = () => path.join(base, `t${++n}`);

// Root ignores permission bits: it is kept out by the immutable attribute instead.
const asRoot = process.getuid?.() === 0;
function setReadOnly(dir: string, on: boolean): void {
  if (asRoot) execFileSync('chattr', ['-R', on ? '+i' : '-i', dir]);
  else execFileSync('chmod', ['-R', on ? 'a-w' : 'u+w', dir]);
}

function remove(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    if (existsSync(dir)) setReadOnly(dir, false); // a case that failed before its undo
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The storage as a directory on this machine. */
function onDisk(dir: string): Peek {
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
function writeTree(dir: string, files: Record<string, Buffer | string>): void {
  for (const [key, data] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, key)), { recursive: true });
    writeFileSync(path.join(dir, key), data);
  }
}

function local(dir: string, root: string): Instance {
  const make = () => new LocalTarget('local-suite', root);
  return { target: make(), again: make, peek: onDisk(root), seed: async (files) => writeTree(root, files), cleanup: async () => remove(dir) };
}

// Fixtures go up in one `rclone copy` (each rclone call costs ~0.1 s of CPU).
function rclone(name: string, remote: string, dir: string, config?: string): Instance {
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

let sftp: Promise<SftpServer> | undefined;
let s3: Promise<S3Server> | undefined;
const sftpServer = () =>
  (sftp ??= startSftpServer().then((s) => {
    Object.assign(process.env, s.env('suitesftp'));
    return s;
  }));
const s3Server = () =>
  (s3 ??= startS3Server().then((s) => {
    Object.assign(process.env, s.env('suites3'));
    return s;
  }));

after(async () => {
  await (await sftp?.catch(() => undefined))?.stop();
  await (await s3?.catch(() => undefined))?.stop();
  remove(base);
});

// Not S3's limit but the test server's (real S3 replaces an object atomically).
const inPlace = 'the test server (rclone serve s3 over a directory) writes an object in place: a GET or a second PUT overlapping a PUT of the key fails or mixes';
const rcloneCannot = {
  privateModes: 'rclone.ts leaves file and directory modes to the remote (rclone has no option for them)',
};
// rclone's moveto (operations.Move) deletes an existing destination before it moves.
const moveReplaces = {
  atomicReplace: 'rclone moveto deletes the old file before it moves the new one in: a reader may find neither for a moment (never a part of one)',
};

describe('targets', { concurrency: true }, () => {
  runTargetSuite({
    name: 'local',
    make: async () => {
      const dir = fresh();
      mkdirSync(dir);
      return local(dir, path.join(dir, 'root'));
    },
  });

  const conf = path.join(base, 'rclone.conf');
  writeFileSync(conf, '[suitelocal]\ntype = local\n', { mode: 0o600 });
  runTargetSuite({
    name: 'rclone (local path)',
    cannot: { ...rcloneCannot, ...moveReplaces },
    make: async () => {
      const dir = fresh();
      return rclone('rclone-local-suite', `suitelocal:${dir}`, dir, conf);
    },
  });

  runTargetSuite({
    name: 'rclone (SFTP, OpenSSH)',
    cannot: { ...rcloneCannot, ...moveReplaces },
    make: async () => {
      const dir = path.join((await sftpServer()).root, `t${++n}`);
      return rclone('rclone-sftp-suite', `suitesftp:${dir}`, dir);
    },
  });

  runTargetSuite({
    name: 'rclone (S3, rclone serve s3)',
    cannot: {
      ...rcloneCannot,
      publishByMove: 'S3 has no server-side move: rclone.ts uploads straight to the key, which S3 shows only once the upload is complete',
      readOnly: 'an S3 bucket has no read-only directory; refused writes are refused credentials (test/e2e/faults-remote.test.ts)',
      wholeVersions: inPlace,
      atomicReplace: inPlace,
    },
    make: async () => {
      const id = `t${++n}`;
      const dir = path.join((await s3Server()).root, 'suite', id);
      const i = rclone('rclone-s3-suite', `suites3:suite/${id}`, dir);
      return { ...i, peek: { files: i.peek.files } };
    },
  });
});
