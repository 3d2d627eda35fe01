// Small files into and out of helper containers through the Docker API (HelperSpec
// `files` and `collect`, agent/docker/transport.ts), against the real engine: what goes in
// is there before the command runs, what comes out is the file the command left, and
// anything but a regular file within the cap is refused; no helper is left behind.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectDocker, type DockerClient, type HelperSpec } from '../../agent/docker/client.ts';
import { runId } from '../../agent/log.ts';
import { docker, HELPER, removeVolume, requireDocker, uniq } from '../helpers/harness.ts';

describe('helper containers: files in, one file out', () => {
  const vol = uniq('sa-hfiles');
  let dir: string;
  let clients: [string, DockerClient][];

  before(async () => {
    await requireDocker();
    await docker('volume', 'create', vol);
    dir = mkdtempSync(path.join(tmpdir(), 'snapagent-hfiles-'));
    clients = (['attach', 'fifo'] as const).map((transfer) => [transfer, connectDocker({ transfer, pipeDir: path.join(dir, 'pipes') })]);
  });

  after(async () => {
    await removeVolume(vol);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function run(d: DockerClient, spec: Omit<HelperSpec, 'image' | 'purpose' | 'mounts'> & { mounts?: HelperSpec['mounts'] }) {
    const h = await d.runHelper({ image: HELPER, purpose: 'test-files', mounts: [], ...spec });
    const out: Buffer[] = [];
    h.stdout.on('data', (c: Buffer) => out.push(c));
    const res = await h.done;
    return { ...res, stdout: Buffer.concat(out).toString() };
  }

  it('puts files (with their directories) in before the command runs, and reads one back after it exited', async () => {
    for (const [transfer, d] of clients) {
      const big = Buffer.alloc(2 * 1024 * 1024 + 3, 0x61);
      const res = await run(d, {
        cmd: ['sh', '-c', 'stat -c "%a %u:%g" /snapagent/index; stat -c "%a %u:%g %s" /snapagent/index/in /snapagent/index/big; cat /snapagent/index/in; printf "%s" "$(cat /snapagent/index/in) back" > /snapagent/index/out'],
        mounts: [{ volume: vol, target: '/snapagent/volume', readOnly: false }],
        files: [
          { path: '/snapagent/index/in', content: Buffer.from('from the agent') },
          { path: '/snapagent/index/big', content: big, mode: 0o644 },
        ],
        collect: { path: '/snapagent/index/out', maxBytes: 1024 },
      });
      assert.equal(res.exitCode, 0, `${transfer}: ${res.stderr}`);
      assert.equal(res.stdout, `700 0:0\n600 0:0 14\n644 0:0 ${big.length}\nfrom the agent`, transfer);
      assert.equal(res.collected?.toString(), 'from the agent back', transfer);
    }
  });

  it('a path the command did not leave: nothing collected', async () => {
    const [, d] = clients[0]!;
    const res = await run(d, { cmd: ['true'], collect: { path: '/snapagent/index/none', maxBytes: 10 } });
    assert.equal(res.exitCode, 0);
    assert.equal(res.collected, undefined);
  });

  it('refuses a directory, a symlink and a file over the cap', async () => {
    const [, d] = clients[0]!;
    const cases: [string, string, RegExp][] = [
      ['a directory', 'mkdir -p /snapagent/index/out; echo x > /snapagent/index/out/f', /not a regular file \(directory\)/],
      ['a symlink', 'mkdir -p /snapagent/index; ln -s /etc/passwd /snapagent/index/out', /not a regular file \(symlink\)/],
      ['too large', 'mkdir -p /snapagent/index; head -c 4096 /dev/zero > /snapagent/index/out', /4096 bytes, more than 1000|more than 1000 bytes/],
    ];
    for (const [what, script, re] of cases) {
      await assert.rejects(run(d, { cmd: ['sh', '-c', script], collect: { path: '/snapagent/index/out', maxBytes: 1000 } }), re, what);
    }
  });

  it('refuses paths that are not plain and absolute before creating anything', async () => {
    const [, d] = clients[0]!;
    await assert.rejects(run(d, { cmd: ['true'], files: [{ path: '/snapagent/../etc/x', content: Buffer.from('x') }] }), /not a plain absolute path/);
    await assert.rejects(run(d, { cmd: ['true'], collect: { path: 'relative', maxBytes: 1 } }), /not a plain absolute path/);
  });

  it('leaves no helper container behind', async () => {
    assert.equal((await docker('ps', '-aq', '--filter', `label=snapagent.run=${runId}`)).trim(), '');
  });
});
