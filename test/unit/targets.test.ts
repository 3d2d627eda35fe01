// Every target runs the one contract suite (test/contract/target-suite.ts). This file, in
// the fast tier: the local target and the rclone target on a local-path remote (defined as
// an operator would, in an rclone.conf given as the target's `config`). The remote
// backends (SFTP, S3) run in test/contract/targets-remote.test.ts, in `make test`. No Docker.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe } from 'node:test';
import { runTargetSuite } from '../contract/target-suite.ts';
import { base, fresh, local, moveReplaces, rclone, rcloneCannot, remove } from '../contract/target-instances.ts';

after(() => remove(base));

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
});
