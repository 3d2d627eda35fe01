// The in-memory tars that carry small files into and out of helper containers through
// the Docker API (agent/docker/archive.ts): what is packed, and what is refused when read
// back (anything but the one regular file asked for, or too many bytes).
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import tar from 'tar-stream';
import { containerPath, packFiles, singleFile } from '../../agent/docker/archive.ts';

async function entries(buf: Buffer): Promise<{ name: string; type: string; mode: number; body: string }[]> {
  const out: { name: string; type: string; mode: number; body: string }[] = [];
  const ex = tar.extract();
  ex.on('entry', (h: tar.Headers, s: Readable, next: () => void) => {
    const parts: Buffer[] = [];
    s.on('data', (c: Buffer) => parts.push(c));
    s.on('end', () => {
      out.push({ name: h.name, type: String(h.type), mode: h.mode ?? -1, body: Buffer.concat(parts).toString() });
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
    ex.end(buf);
  });
  return out;
}

/** A tar stream as dockerd's archive endpoint would answer, made of `items`. */
async function archiveOf(items: { header: tar.Headers; body?: Buffer }[], chunk = 1 << 20): Promise<Readable> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  pack.on('data', (c: Buffer) => parts.push(c));
  const ended = new Promise((r) => pack.on('end', r));
  for (const i of items) await new Promise<void>((r, j) => pack.entry(i.header, i.body ?? Buffer.alloc(0), (e) => (e ? j(e) : r())));
  pack.finalize();
  await ended;
  const all = Buffer.concat(parts);
  const chunks: Buffer[] = [];
  for (let o = 0; o < all.length; o += chunk) chunks.push(all.subarray(o, o + chunk));
  return Readable.from(chunks);
}

describe('helper files (archive.ts)', () => {
  it('packs each file with its parent directories, root-owned, private by default', async () => {
    const buf = await packFiles([
      { path: '/snapagent/index/snar', content: Buffer.from('GNU tar-1.34-2\n') },
      { path: '/snapagent/index/other', content: Buffer.from('x'), mode: 0o644 },
      { path: '/top', content: Buffer.alloc(0) },
    ]);
    assert.deepEqual(
      (await entries(buf)).map((e) => [e.name, e.type, e.mode.toString(8), e.body]),
      [
        ['snapagent/', 'directory', '700', ''],
        ['snapagent/index/', 'directory', '700', ''],
        ['snapagent/index/snar', 'file', '600', 'GNU tar-1.34-2\n'],
        ['snapagent/index/other', 'file', '644', 'x'],
        ['top', 'file', '600', ''],
      ],
    );
  });

  it('refuses paths that are not plain and absolute', async () => {
    for (const p of ['relative', '/a/../b', '/a//b', '/a/./b', '/a/', '/a\0b', '']) {
      assert.throws(() => containerPath(p), /not a plain absolute path/, p);
      await assert.rejects(packFiles([{ path: p, content: Buffer.alloc(1) }]), /not a plain absolute path/);
    }
    assert.equal(containerPath('/snapagent/index/snar'), '/snapagent/index/snar');
  });

  it('reads back the one regular file asked for', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const got = await singleFile(await archiveOf([{ header: { name: 'snar', type: 'file', size: big.length }, body: big }], 65536), 'snar', big.length);
    assert.ok(got.equals(big));
    const empty = await singleFile(await archiveOf([{ header: { name: 'snar', type: 'file', size: 0 } }]), 'snar', 10);
    assert.equal(empty.length, 0);
  });

  it('refuses a directory, a symlink, another name, more entries, and too many bytes', async () => {
    const cases: [string, { header: tar.Headers; body?: Buffer }[], RegExp][] = [
      ['a directory', [{ header: { name: 'snar/', type: 'directory' } }, { header: { name: 'snar/x', type: 'file', size: 1 }, body: Buffer.from('x') }], /not a regular file \(directory\)/],
      ['a symlink', [{ header: { name: 'snar', type: 'symlink', linkname: '/etc/shadow' } }], /not a regular file \(symlink\)/],
      ['a hard link', [{ header: { name: 'snar', type: 'link', linkname: 'other' } }], /not a regular file \(link\)/],
      ['another name', [{ header: { name: 'other', type: 'file', size: 1 }, body: Buffer.from('x') }], /unexpected entry "other"/],
      ['two entries', [{ header: { name: 'snar', type: 'file', size: 1 }, body: Buffer.from('x') }, { header: { name: 'snar', type: 'file', size: 1 }, body: Buffer.from('y') }], /unexpected entry/],
      ['too large (header)', [{ header: { name: 'snar', type: 'file', size: 101 }, body: Buffer.alloc(101) }], /101 bytes, more than 100/],
      ['nothing', [], /not in the archive/],
    ];
    for (const [what, items, re] of cases) await assert.rejects(singleFile(await archiveOf(items), 'snar', 100), re, what);
  });

  it('stops reading a stream that goes past the cap, whatever its headers say', async () => {
    // a pax header ('x') that claims a gigabyte and never ends: tar-stream would buffer it
    const header = Buffer.alloc(512);
    const field = (off: number, len: number, v: string) => header.write(v.padEnd(len, '\0').slice(0, len), off, 'latin1');
    field(0, 100, 'PaxHeader/snar');
    field(100, 8, '0000644');
    field(108, 8, '0000000');
    field(116, 8, '0000000');
    field(124, 12, (1e9).toString(8).padStart(11, '0'));
    field(136, 12, '00000000000');
    field(156, 1, 'x');
    field(257, 8, 'ustar\x0000');
    header.fill(0x20, 148, 156);
    field(148, 8, `${header.reduce((a, b) => a + b, 0).toString(8).padStart(6, '0')}\0 `);
    let served = 0;
    const pack = new Readable({
      read() {
        this.push(served === 0 ? header : Buffer.alloc(65536, 0x31));
        served += served === 0 ? 512 : 65536;
      },
    });
    await assert.rejects(singleFile(pack, 'snar', 100_000), /more than 100000 bytes/);
    assert.ok(served < 2 * 1024 * 1024, `read ${served} bytes`);
  });
});
