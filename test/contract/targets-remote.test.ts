// The target contract suite (target-suite.ts) for the rclone target over real remote
// protocols: SFTP (a real OpenSSH on 127.0.0.1, test/helpers/sftp-server.ts) and S3
// (`rclone serve s3`, scripts/build-s3-server.sh). The remotes are defined by
// RCLONE_CONFIG_* variables set in this test process's environment, which the rclone
// children inherit. No Docker; slower than the fast tier (a network round trip per call).
import path from 'node:path';
import { after, describe } from 'node:test';
import { startS3Server, type S3Server } from '../helpers/s3-server.ts';
import { startSftpServer, type SftpServer } from '../helpers/sftp-server.ts';
import { runTargetSuite } from './target-suite.ts';
import { base, moveReplaces, rclone, rcloneCannot, remove } from './target-instances.ts';

let n = 0;
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
describe('targets over remote protocols', { concurrency: true }, () => {
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
