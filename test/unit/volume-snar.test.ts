// The volume plugin's index is GNU tar's snapshot file: a base's comes back from a target
// and is checked before the helper's tar reads it (plugins/volume/snar.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSnar, SNAR_MAX_BYTES } from '../../plugins/volume/snar.ts';

// Written by GNU tar 1.34 (a second level: "new" added; names with a space, a newline and
// UTF-8 bytes), kept as its bytes.
const REAL = Buffer.from(
  'GNU tar-1.34-2\n1796293416\u0000992672560\u00000\u00001796293415\u0000972245713\u000065024\u000010004211\u0000./e\u0000\u0000\u00000\u00001796293415\u0000972245713\u000065024\u000010004196\u0000./sp ace/sub\u0000\u0000\u00000\u00001796293415\u0000972245713\u000065024\u000010004179\u0000./sp ace\u0000Nf\u0000Dsub\u0000\u0000\u00000\u00001796293416\u0000984245702\u000065024\u000010004146\u0000.\u0000De\u0000Nl\u0000Ynew\u0000Dsp ace\u0000N\u00c3\u00bc\nnl\u0000\u0000\u0000',
  'latin1',
);

/** A snapshot file with these directory records (name, entries). */
function snar(records: [string, string[]][], head = 'GNU tar-1.34-2'): Buffer {
  // every field and entry ends in NUL, and a record in two more
  const body = records.map(([dir, entries]) => `${['0', '1796293415', '972245713', '65024', '10004146', dir, ...entries].map((f) => `${f}\0`).join('')}\0\0`).join('');
  return Buffer.from(`${head}\n1796293416\u0000992672560\u0000${body}`, 'latin1');
}

describe('volume snapshot files (snar.ts)', () => {
  it('reads what GNU tar wrote, counting stored and unchanged entries', () => {
    assert.deepEqual(checkSnar(REAL), { dirs: 4, shipped: 1, reused: 3 });
    assert.deepEqual(checkSnar(snar([['.', []]])), { dirs: 1, shipped: 0, reused: 0 });
    assert.deepEqual(checkSnar(snar([['.', ['Ya', 'Yb', 'Dd']], ['./d', ['Nc']]], 'GNU tar-1.35-2')), { dirs: 2, shipped: 2, reused: 1 });
  });

  it('refuses anything else', () => {
    const cases: [string, Buffer, RegExp][] = [
      ['empty', Buffer.alloc(0), /not a GNU tar snapshot file/],
      ['format 1', snar([['.', []]], 'GNU tar-1.34-1'), /not a GNU tar snapshot file/],
      ['another file', Buffer.from('#!/bin/sh\nrm -rf /\n'), /not a GNU tar snapshot file|is not a number/],
      ['truncated', REAL.subarray(0, REAL.length - 2), /truncated|missing record terminator/],
      ['cut in a record', REAL.subarray(0, 120), /truncated/],
      ['a parent directory', snar([['./a/../../etc', []]]), /not below "."/],
      ['an absolute directory', snar([['/etc', []]]), /not below "."/],
      ['an empty component', snar([['./a//b', []]]), /not below "."/],
      ['a name with a slash', snar([['.', ['Ya/b']]]), /not a plain name/],
      ['a dot-dot name', snar([['.', ['D..']]]), /not a plain name/],
      ['an unknown mark', snar([['.', ['Rold', 'Tnew']]]), /unknown mark/],
      ['a directory twice', snar([['.', []], ['.', []]]), /recorded twice/],
      ['a bad number', Buffer.from(REAL.toString('latin1').replace('65024', '6502x'), 'latin1'), /device .* is not a number/],
      ['a bad nfs flag', Buffer.from(REAL.toString('latin1').replace('\u00000\u00001796293415', '\u00002\u00001796293415'), 'latin1'), /nfs flag/],
      ['bytes after the last record', Buffer.concat([REAL, Buffer.from('x')]), /truncated/],
    ];
    for (const [what, buf, re] of cases) assert.throws(() => checkSnar(buf), re, what);
  });

  it('refuses one larger than the cap before reading it', () => {
    const big = Buffer.alloc(SNAR_MAX_BYTES + 1);
    assert.throws(() => checkSnar(big), /more than/);
  });
});
