// Named pipes whose directory someone else can write (a helper's bind mount, a
// container's /tmp): the agent's opens and removals never land outside it, whatever
// entries are swapped for symlinks. Pure filesystem: the attacker is this test.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { containerTmp, makeFifo, openDir, removeFifoDirs } from '../../agent/docker/fifo.ts';

let work: string;
let canaryDir: string;
let canary: string;
before(() => {
  work = mkdtempSync(path.join(tmpdir(), 'snapagent-fifo-'));
  canaryDir = mkdtempSync(path.join(tmpdir(), 'snapagent-canary-'));
  canary = path.join(canaryDir, 'canary');
  writeFileSync(canary, 'host secret\n');
});
after(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(canaryDir, { recursive: true, force: true });
});

function canaryIntact(): void {
  assert.equal(readFileSync(canary, 'utf8'), 'host secret\n');
  assert.deepEqual(readdirSync(canaryDir).sort(), ['canary']);
}
async function roundTrip(fifo: Awaited<ReturnType<typeof makeFifo>>, text: string): Promise<string> {
  const [r, w] = await Promise.all([fifo.open('r'), fifo.open('w')]);
  await w.write(text);
  await w.close();
  const got = (await r.readFile()).toString('utf8');
  await r.close();
  return got;
}

describe('named pipes in a directory someone else writes', () => {
  it('carries bytes through the pipe it made', async () => {
    const base = await openDir(work);
    const fifo = await makeFifo(base, 'snapagent-t1');
    assert.match(fifo.dirName, /^snapagent-t1-[0-9a-f]{12}$/);
    assert.equal(await roundTrip(fifo, 'hello'), 'hello');
    await fifo.cleanup();
    assert.equal(existsSync(path.join(work, fifo.dirName)), false);
    await base.close();
  });

  it('keeps using its own pipe when the entry is swapped for a symlink to a host file', async () => {
    const base = await openDir(work);
    const fifo = await makeFifo(base, 'snapagent-t2');
    const entry = path.join(work, fifo.dirName, 'data');
    unlinkSync(entry);
    symlinkSync(canary, entry);
    assert.equal(await roundTrip(fifo, 'payload'), 'payload');
    canaryIntact();
    await fifo.cleanup();
    canaryIntact();
    await base.close();
  });

  it('keeps using its own pipe when the directory is swapped for a symlink to a host directory', async () => {
    const base = await openDir(work);
    const fifo = await makeFifo(base, 'snapagent-t3');
    const dir = path.join(work, fifo.dirName);
    renameSync(dir, `${dir}.moved`);
    symlinkSync(canaryDir, dir);
    writeFileSync(path.join(canaryDir, 'data'), 'decoy');
    assert.equal(await roundTrip(fifo, 'payload'), 'payload');
    await fifo.cleanup();
    assert.equal(readFileSync(path.join(canaryDir, 'data'), 'utf8'), 'decoy', 'cleanup removed a file through the symlink');
    unlinkSync(path.join(canaryDir, 'data'));
    canaryIntact();
    rmSync(`${dir}.moved`, { recursive: true, force: true });
    rmSync(dir, { force: true });
    await base.close();
  });

  it('removes leftovers name by name, never through a symlink', async () => {
    const base = await openDir(work);
    const left = await makeFifo(base, 'snapagent-dead');
    await left.release();
    // what a killed run leaves, plus what an attacker plants beside it
    mkdirSync(path.join(canaryDir, 'sub'));
    writeFileSync(path.join(canaryDir, 'sub', 'data'), 'keep');
    symlinkSync(path.join(canaryDir, 'sub'), path.join(work, 'snapagent-dead-link'));
    symlinkSync(path.join(canaryDir, 'sub'), path.join(work, left.dirName, 'more'));
    await removeFifoDirs(base, (n) => n.startsWith('snapagent-dead'));
    assert.equal(readFileSync(path.join(canaryDir, 'sub', 'data'), 'utf8'), 'keep');
    assert.equal(existsSync(path.join(work, left.dirName)), false);
    assert.equal(existsSync(path.join(work, 'snapagent-dead-link')), false);
    rmSync(path.join(canaryDir, 'sub'), { recursive: true });
    canaryIntact();
    await left.cleanup();
    await base.close();
  });

  it('refuses a symlinked directory as the base', async () => {
    const link = path.join(work, 'base-link');
    symlinkSync(canaryDir, link);
    await assert.rejects(openDir(link), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR' || e.code === 'ELOOP');
  });

  it('never takes the host root for a container root (a reused pid)', async () => {
    assert.equal(await containerTmp(process.pid), undefined);
  });
});
