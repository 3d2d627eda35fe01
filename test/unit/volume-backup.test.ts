// What the volume plugin asks of its backup helper and hands the core, for each kind of
// run: a full that starts a chain, an increment on a base (its snapshot file put into the
// helper, the chain in dependsOn), a base whose index fails the check (a full instead),
// incremental backups off (no snapshot file at all), and a helper that left none. The
// Docker client is a FAKE that records the helper's spec and answers with canned results;
// the helper's real work is in test/e2e/volume-incremental.test.ts.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { DockerClient, HelperResult, HelperRun, HelperSpec } from '../../agent/docker/client.ts';
import type { Logger } from '../../agent/log.ts';
import type { IncrementalBase, Job, PluginContext } from '../../agent/plugin/contract.ts';
import { withoutDevices } from '../../plugins/volume/snar.ts';
import { backupVolume } from '../../plugins/volume/backup.ts';
import type { VolumeOptions } from '../../plugins/volume/options.ts';
import { MOUNT, SNAR } from '../../plugins/volume/scripts.ts';

const SNAR_BYTES = Buffer.from('GNU tar-1.34-2\n1796293416\u0000992672560\u00000\u00001796293416\u0000984245702\u000065024\u000010004146\u0000.\u0000Ya\u0000Nb\u0000Nc\u0000\u0000\u0000', 'latin1');
const STATS_LINE = 'Total bytes written: 10240 (10KiB)\nsnapagent-stats files=3 dirs=1 symlinks=0 other=0 bytes=42\n';

/** A FAKE Docker client: one volume, and helpers that exit with `result`. */
function fakeDocker(result: HelperResult): { docker: DockerClient; specs: HelperSpec[] } {
  const specs: HelperSpec[] = [];
  const docker = {
    inspectVolume: async () => ({ name: 'v', driver: 'local', labels: {}, options: {} }),
    runHelper: async (spec: HelperSpec): Promise<HelperRun> => {
      specs.push(spec);
      const out = new PassThrough();
      out.end();
      return { id: 'fake', stdout: out, done: Promise.resolve(result), kill: async () => undefined };
    },
  } as unknown as DockerClient;
  return { docker, specs };
}

function context(docker: DockerClient, base?: IncrementalBase): { ctx: PluginContext; warnings: string[] } {
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, msg: string) => void warnings.push(msg), info: () => undefined, debug: () => undefined } as unknown as Logger;
  return { ctx: { docker, log, signal: new AbortController().signal, helperImage: 'helper', host: 'h', backupId: 'id', ...(base ? { base } : {}) }, warnings };
}

const job = (fullEvery?: string): Job<VolumeOptions> => ({ name: 'j', plugin: 'volume', tier: 'critical', origin: 'config', reason: '', volume: 'v', stop: false, order: 0, targets: ['local'], options: { exclude: [], stop_timeout: 30 }, fullEvery });

describe('volume backup: full, increment, index', () => {
  it('without a base: a level-0 full whose snapshot file is its index', async () => {
    const { docker, specs } = fakeDocker({ exitCode: 0, stderr: STATS_LINE, collected: SNAR_BYTES });
    const s = await backupVolume(context(docker).ctx, job('7d'));
    assert.equal(specs[0]!.files, undefined, 'no base: an empty snapshot file');
    assert.deepEqual(specs[0]!.collect, { path: SNAR, maxBytes: 256 * 1024 * 1024 });
    assert.equal(specs[0]!.cmd[4], MOUNT);
    assert.equal(specs[0]!.cmd[5], SNAR);
    const stats = await s.done;
    assert.deepEqual(stats, { stream_bytes: 10240, files: 3, dirs: 1, symlinks: 0, other: 0, bytes: 42, files_shipped: 1, files_reused: 2 });
    assert.deepEqual(await s.index, { format: 'snar', bytes: SNAR_BYTES, dependsOn: [], representedBytes: 42 });
  });

  it('on a base: its snapshot file goes into the helper (device numbers 0, see withoutDevices), and the increment depends on the whole chain', async () => {
    const { docker, specs } = fakeDocker({ exitCode: 0, stderr: STATS_LINE, collected: SNAR_BYTES });
    const base: IncrementalBase = { id: 'b2', dependsOn: ['b0', 'b1'], index: SNAR_BYTES, stats: {} };
    const s = await backupVolume(context(docker, base).ctx, job('7d'));
    assert.deepEqual(specs[0]!.files, [{ path: SNAR, content: withoutDevices(SNAR_BYTES) }]);
    await s.done;
    assert.deepEqual((await s.index!).dependsOn, ['b0', 'b1', 'b2']);
  });

  it('a base whose index is not a snapshot file: a full, and the log says why', async () => {
    const { docker, specs } = fakeDocker({ exitCode: 0, stderr: STATS_LINE, collected: SNAR_BYTES });
    const { ctx, warnings } = context(docker, { id: 'b2', dependsOn: [], index: Buffer.from('#!/bin/sh\n'), stats: {} });
    const s = await backupVolume(ctx, job('7d'));
    assert.equal(specs[0]!.files, undefined);
    await s.done;
    assert.deepEqual((await s.index!).dependsOn, []);
    assert.match(warnings.join('\n'), /index of b2 is not a usable GNU tar snapshot file.*taking a full backup/);
  });

  it('incremental backups off: a plain tar, no snapshot file, no index', async () => {
    const { docker, specs } = fakeDocker({ exitCode: 0, stderr: STATS_LINE });
    const s = await backupVolume(context(docker).ctx, job(undefined));
    assert.equal(specs[0]!.cmd[5], '');
    assert.equal(specs[0]!.collect, undefined);
    assert.equal(s.index, undefined);
    assert.deepEqual(await s.done, { stream_bytes: 10240, files: 3, dirs: 1, symlinks: 0, other: 0, bytes: 42 });
  });

  it('a helper that left no snapshot file, or a damaged one: the backup fails', async () => {
    for (const [collected, re] of [
      [undefined, /left no snapshot file/],
      [SNAR_BYTES.subarray(0, 40), /snapshot file is unusable: truncated/],
    ] as const) {
      const { docker } = fakeDocker({ exitCode: 0, stderr: STATS_LINE, ...(collected ? { collected } : {}) });
      const s = await backupVolume(context(docker).ctx, job('7d'));
      await assert.rejects(s.done, re);
      await assert.rejects(s.index!, re);
    }
  });
});


