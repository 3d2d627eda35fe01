// Decompression is bounded by the manifest's raw_size (+ 1 % + 64 KiB): a zstd bomb (a
// small artifact that decompresses to far more than its manifest says) ends at the bound
// with a named error, and not one byte beyond it reaches the consumer.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Artifact } from '../../agent/catalog/manifest.ts';
import { RawSizeExceededError, rawBound, StoredInput } from '../../agent/pipeline/stored-input.ts';
import type { Target } from '../../agent/targets/target.ts';

const RAW = 64 * 1024 * 1024;
const bomb = execFileSync('sh', ['-c', `head -c ${RAW} /dev/zero | zstd -q -19 -c`], { maxBuffer: 1 << 24 });
const target = { name: 't', open: () => Readable.from([bomb]) } as unknown as Target;
const artifact = (raw_size: number): Artifact => ({ name: 'a', format: 'tar', compression: 'zstd', encryption: 'none', size: bomb.length, sha256: createHash('sha256').update(bomb).digest('hex'), raw_size });

async function drain(r: Readable): Promise<number> {
  let n = 0;
  for await (const c of r) n += (c as Buffer).length;
  return n;
}

describe('raw_size bound', () => {
  it('a stream within raw_size passes whole', async () => {
    const input = new StoredInput(target, 'k', artifact(RAW), new AbortController().signal);
    assert.equal(await drain(input.stream()), RAW);
    await input.integrity;
  });

  it('a zstd bomb stops at the bound with RawSizeExceededError (stream and file handle)', async () => {
    assert.ok(bomb.length < 64 * 1024, `the bomb is small: ${bomb.length} bytes`);
    const input = new StoredInput(target, 'k', artifact(4096), new AbortController().signal);
    const got = await drain(input.stream());
    assert.equal(got, rawBound(4096));
    await assert.rejects(input.integrity, (err: Error) => err instanceof RawSizeExceededError && /decompresses to more than 69672 bytes, the manifest's raw_size 4096/.test(err.message) && (err as RawSizeExceededError).exitCode === 3);
    const viaHandle = new StoredInput(target, 'k', artifact(4096), new AbortController().signal);
    await assert.rejects(viaHandle.toHandle(await open('/dev/null', 'w')), RawSizeExceededError);
  });
});
