// Every target runs the one contract suite (test/contract/target-suite.ts): the local
// target, and the rclone target on a local-path remote, over SFTP (a real OpenSSH on
// 127.0.0.1) and over S3 (`rclone serve s3`, scripts/build-s3-server.sh). No Docker.
//
// The rclone remotes are defined as an operator would: the local one in an rclone.conf
// given as the target's `config`, SFTP and S3 by RCLONE_CONFIG_* variables, set in this
// test process's environment (which the rclone children inherit).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe } from 'node:test';
import { LocalTarget } from '../../agent/targets/local.ts';
import { RcloneTarget, type RcloneOptions } from '../../agent/targets/rclone.ts';
import type { Target } from '../../agent/targets/target.ts';
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

function instance(make: () => Target, dir: string, peek: Peek = onDisk(dir)): Instance {
  return { target: make(), again: make, peek, cleanup: async () => remove(dir) };
}

function rclone(name: string, remote: string, config?: string): () => Target {
  const o: RcloneOptions = { name, remote, config, flags: [], timeoutSeconds: 60, retries: 0 };
  return () => new RcloneTarget(o);
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
  await (await sftp)?.stop();
  await (await s3)?.stop();
  remove(base);
});

const rcloneCannot = {
  privateModes: 'rclone.ts leaves file and directory modes to the remote (rclone has no option for them)',
};

describe('targets', { concurrency: true }, () => {
  runTargetSuite({
    name: 'local',
    make: async () => {
      const dir = fresh();
      mkdirSync(dir);
      const root = path.join(dir, 'root');
      return instance(() => new LocalTarget('local-suite', root), dir, onDisk(root));
    },
  });

  const conf = path.join(base, 'rclone.conf');
  writeFileSync(conf, '[suitelocal]\ntype = local\n', { mode: 0o600 });
  runTargetSuite({
    name: 'rclone (local path)',
    cannot: rcloneCannot,
    make: async () => {
      const dir = fresh();
      return instance(rclone('rclone-local-suite', `suitelocal:${dir}`, conf), dir);
    },
  });

  runTargetSuite({
    name: 'rclone (SFTP, OpenSSH)',
    cannot: rcloneCannot,
    make: async () => {
      const dir = path.join((await sftpServer()).root, `t${++n}`);
      return instance(rclone('rclone-sftp-suite', `suitesftp:${dir}`), dir);
    },
  });

  runTargetSuite({
    name: 'rclone (S3, rclone serve s3)',
    cannot: {
      ...rcloneCannot,
      publishByMove: 'S3 has no server-side move: rclone.ts uploads straight to the key, which S3 shows only once the upload is complete',
      readOnly: 'an S3 bucket has no read-only directory; refused writes are refused credentials (test/e2e/faults-remote.test.ts)',
    },
    make: async () => {
      const id = `t${++n}`;
      const dir = path.join((await s3Server()).root, 'suite', id);
      const { files } = onDisk(dir);
      return { ...instance(rclone('rclone-s3-suite', `suites3:suite/${id}`), dir), peek: { files } };
    },
  });
});
