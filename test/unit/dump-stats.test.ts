// The mariadb dump counter: rows and checksums from the dump text, whatever the
// INSERT layout, and the one-database filter.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { compareStats, DumpCounter } from '../../plugins/mariadb/dump-stats.ts';
import { DatabaseFilter } from '../../plugins/mariadb/filter.ts';

const ONE_LINE = [
  '-- Current Database: `shop`',
  '-- Dumping data for table `t`',
  "INSERT INTO `t` VALUES (1,'a (b), c; d',NULL),(2,'it\\'s \\\\ (',0x00FF),(3,'',1.5);",
  '-- Dumping data for table `empty`',
  '-- Current Database: `we``ird`',
  '-- Dumping data for table `x`',
  "INSERT INTO `x` VALUES (1,'z');",
  '',
].join('\n');

const PER_ROW = [
  '-- Current Database: `shop`',
  '-- Dumping data for table `t`',
  'INSERT INTO `t` VALUES',
  "(3,'',1.5),",
  "(1,'a (b), c; d',NULL),",
  "(2,'it\\'s \\\\ (',0x00FF);",
  '-- Dumping data for table `empty`',
  '-- Current Database: `we``ird`',
  '-- Dumping data for table `x`',
  'INSERT INTO `x` VALUES',
  "(1,'z');",
  '',
].join('\n');

async function count(dump: string, chunk: number) {
  const c = new DumpCounter();
  const parts: Buffer[] = [];
  const b = Buffer.from(dump);
  for (let i = 0; i < b.length; i += chunk) parts.push(b.subarray(i, i + chunk));
  const out = await Promise.all([text(c), pipeline(Readable.from(parts), c)]);
  assert.equal(out[0], dump, 'the stream passes through unchanged');
  return c.stats();
}

describe('mariadb dump counter', () => {
  it('counts rows and gives the same checksums for both INSERT layouts and any chunking', async () => {
    const a = await count(ONE_LINE, 7);
    const b = await count(PER_ROW, 3);
    assert.equal(a.shop!.t!.rows, 3);
    assert.equal(a.shop!.empty!.rows, 0);
    assert.equal(a['we`ird']!.x!.rows, 1);
    assert.deepEqual(a, b);
    assert.deepEqual(a, await count(ONE_LINE, 1 << 20));
    assert.deepEqual(compareStats(a, b), []);
  });

  it('reports missing tables, row counts and content differences', async () => {
    const a = await count(ONE_LINE, 64);
    const changed = await count(ONE_LINE.replace("'z'", "'y'").replace(',(3,\'\',1.5)', ''), 64);
    assert.deepEqual(compareStats(a, changed), ['shop.t: 2 rows, the backup had 3', 'we`ird.x: content differs from the backup (checksum)']);
    assert.deepEqual(compareStats(a, {}, ['shop']), ['database shop is missing']);
  });

  it('filters one database out of a multi-database dump', async () => {
    const dump = 'SET NAMES utf8mb4;\n' + ONE_LINE;
    const out = await Promise.all([text(Readable.from([dump]).pipe(new DatabaseFilter('we`ird')))]);
    assert.equal(out[0], 'SET NAMES utf8mb4;\n-- Current Database: `we``ird`\n-- Dumping data for table `x`\nINSERT INTO `x` VALUES (1,\'z\');\n');
  });
});
