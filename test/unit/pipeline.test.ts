// Pure pieces of the data path: backup ids, Docker stream demuxing, hashing, stats parsing.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { DockerDemux } from '../../agent/docker/demux.ts';
import { backupId, manifestSchema } from '../../agent/catalog/manifest.ts';
import { HashCounter } from '../../agent/pipeline/hash.ts';
import { humanBytes } from '../../agent/pipeline/progress.ts';
import { parseStats } from '../../agent/plugin/index.ts';
import { rootMtimeFrom } from '../../plugins/volume/scripts.ts';

function frame(kind: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = kind;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}

describe('pipeline pieces', () => {
  it('backup ids sort by time and carry the tier', () => {
    assert.equal(backupId(new Date('2026-11-21T02:00:00.678Z'), 'critical'), '20261121T020000Z-critical');
    const ids = ['2026-01-02T00:00:00Z', '2025-12-31T23:59:59Z', '2026-01-01T10:00:00Z'].map((d) => backupId(new Date(d), 'x'));
    assert.deepEqual([...ids].sort(), [ids[1], ids[2], ids[0]]);
  });

  it('demuxes stdout and stderr frames split at any byte boundary', async () => {
    const out = Buffer.from('a'.repeat(70000) + 'END');
    const stream = Buffer.concat([frame(1, out.subarray(0, 5)), frame(2, Buffer.from('warn\n')), frame(1, out.subarray(5)), frame(2, Buffer.from('done\n'))]);
    for (const size of [1, 3, 7, 8, 9, 4096, stream.length]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
      const demux = new DockerDemux();
      const [got] = await Promise.all([buffer(demux), pipeline(Readable.from(chunks), demux)]);
      assert.ok(got.equals(out), `chunk size ${size}`);
      assert.equal(demux.stderr(), 'warn\ndone\n');
    }
  });

  it('hashes and counts what flows through', async () => {
    const data = Buffer.alloc(3_000_000, 7);
    const h = new HashCounter();
    await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), h, async function* (src) {
      for await (const _ of src);
    });
    assert.equal(h.bytes, data.length);
    assert.equal(h.sha256(), createHash('sha256').update(data).digest('hex'));
  });

  it('parses the helper stats line and root mtime', () => {
    const stderr = 'tar: ./x: file changed\nsnapagent-root-mtime 2020-02-02 02:02:02.000000000 +0000\nsnapagent-stats files=3 dirs=2 symlinks=1 other=0 bytes=12345678901\n';
    assert.deepEqual(parseStats(stderr), { files: 3, dirs: 2, symlinks: 1, other: 0, bytes: 12345678901 });
    assert.equal(rootMtimeFrom(stderr), '2020-02-02 02:02:02.000000000 +0000');
    assert.equal(parseStats('nothing'), undefined);
  });

  it('rejects foreign manifests', () => {
    assert.equal(manifestSchema.safeParse({ format: 'other/1' }).success, false);
  });

  it('formats sizes for people', () => {
    assert.equal(humanBytes(512), '512 B');
    assert.equal(humanBytes(1536), '1.5 KiB');
    assert.equal(humanBytes(5 * 1024 ** 3), '5.0 GiB');
  });
});
