// The worker-thread byte path (pump.ts): what it copies is exactly what it hashed and
// counted, into every output; an output that fails is reported alone; with `drain` every
// input byte is still read and hashed after the consumer stopped. A local target's
// partial file is published only whole, and removed on discard. StoredInput's worker
// path keeps the checks of the stream path (digest, decompression bound).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Artifact } from '../../agent/catalog/manifest.ts';
import { IntegrityError } from '../../agent/errors.ts';
import { pipePair, pump } from '../../agent/pipeline/pump.ts';
import { RawSizeExceededError, StoredInput } from '../../agent/pipeline/stored-input.ts';
import { LocalTarget } from '../../agent/targets/local.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-pump-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const pipes = path.join(dir, 'pipes');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const data = randomBytes(5 * 1024 * 1024 + 123);
writeFileSync(path.join(dir, 'in'), data);

describe('pump', () => {
  it('copies a file into two files, hashing and counting what it read', async () => {
    const input = await open(path.join(dir, 'in'), 'r');
    const a = await open(path.join(dir, 'a'), 'w');
    const b = await open(path.join(dir, 'b'), 'w');
    const seen: number[] = [];
    const r = await pump({ input: input.fd, outputs: [a.fd, b.fd], drain: false }, (n) => seen.push(n));
    for (const f of [input, a, b]) await f.close();
    assert.deepEqual(r, { sha256: sha(data), bytes: data.length, errors: [null, null] });
    assert.deepEqual(readFileSync(path.join(dir, 'a')), data);
    assert.deepEqual(readFileSync(path.join(dir, 'b')), data);
    assert.equal(seen.at(-1), data.length);
  });

  it('through a named pipe from a process, as zstd writes into it', async () => {
    const pair = await pipePair(pipes, 'test');
    const child = spawn('cat', [path.join(dir, 'in')], { stdio: ['ignore', pair.write.fd, 'inherit'] });
    const closed = new Promise((ok) => child.on('close', ok));
    await pair.write.close();
    const out = await open(path.join(dir, 'c'), 'w');
    const r = await pump({ input: pair.read.fd, outputs: [out.fd], drain: false });
    await out.close();
    await pair.cleanup();
    await closed;
    assert.equal(r.sha256, sha(data));
    assert.deepEqual(readFileSync(path.join(dir, 'c')), data);
  });

  it('with drain, a consumer that stops early still leaves every byte hashed; its failure is reported', async () => {
    const pair = await pipePair(pipes, 'test');
    const child = spawn('head', ['-c', '1000'], { stdio: [pair.read.fd, 'ignore', 'inherit'] });
    const closed = new Promise((ok) => child.on('close', ok));
    await pair.read.close();
    const input = await open(path.join(dir, 'in'), 'r');
    const r = await pump({ input: input.fd, outputs: [pair.write.fd], drain: true });
    await input.close();
    await pair.cleanup();
    await closed;
    assert.equal(r.bytes, data.length);
    assert.equal(r.sha256, sha(data));
    assert.equal((r.errors[0] as NodeJS.ErrnoException).code, 'EPIPE');
  });
});

describe('local target partial files', () => {
  const target = new LocalTarget('t', path.join(dir, 'target'));
  it('finish checks the size and makes the file publishable; discard removes it', async () => {
    const p = await target.openPartial('h/j/1/x.zst');
    const input = await open(path.join(dir, 'in'), 'r');
    const r = await pump({ input: input.fd, outputs: [p.fd], drain: false });
    await input.close();
    await assert.rejects(p.finish(r.bytes + 1), /bytes on disk/);
    await p.discard();
    const q = await target.openPartial('h/j/2/x.zst');
    await q.finish(0);
    await target.publish('h/j/2/x.zst');
    assert.ok(existsSync(path.join(dir, 'target', 'h/j/2/x.zst')));
    const s = await target.openPartial('h/j/3/x.zst');
    await s.discard();
    assert.ok(!existsSync(path.join(dir, 'target', 'h/j/3/x.zst.partial')));
  });
});

describe('StoredInput through the worker', () => {
  const target = new LocalTarget('t', path.join(dir, 'stored'));
  const store = async (key: string, bytes: Buffer) => {
    const p = await target.openPartial(key);
    const f = path.join(dir, 'tmp-store');
    writeFileSync(f, bytes);
    const input = await open(f, 'r');
    const r = await pump({ input: input.fd, outputs: [p.fd], drain: false });
    await input.close();
    await p.finish(r.bytes);
    await target.publish(key);
  };
  const zst = execFileSync('zstd', ['-q', '-c'], { input: data, maxBuffer: 64 << 20 });
  const artifact = (over: Partial<Artifact> = {}): Artifact => ({ name: 'a', format: 'tar', compression: 'zstd', encryption: 'none', size: zst.length, sha256: sha(zst), raw_size: data.length, ...over });
  const restore = async (a: Artifact) => {
    const input = new StoredInput(target, 'h/j/1/a.tar.zst', a, new AbortController().signal, undefined, pipes);
    const out = path.join(dir, 'restored');
    await input.toHandle(await open(out, 'w'));
    return { input, out: readFileSync(out) };
  };

  it('restores what matches the manifest, counting every stored byte', async () => {
    await store('h/j/1/a.tar.zst', zst);
    const { input, out } = await restore(artifact());
    assert.deepEqual(out, data);
    assert.equal(input.bytes, zst.length);
  });

  it('refuses a digest that does not match, and a stream longer than raw_size', async () => {
    await assert.rejects(restore(artifact({ sha256: sha(Buffer.from('other')) })), (err: Error) => err instanceof IntegrityError && /does not match the manifest/.test(err.message));
    await assert.rejects(restore(artifact({ raw_size: 1000 })), RawSizeExceededError);
  });
});
