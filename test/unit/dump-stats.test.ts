// The mariadb dump counter: rows and checksums from the dump text, whatever the
// INSERT layout, and the one-database filter.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { CHECKSUM_ALGORITHMS, compareStats, DumpCounter, type ChecksumAlgorithm } from '../../plugins/mariadb/dump-stats.ts';
import { DatabaseFilter } from '../../plugins/mariadb/filter.ts';
import { LoadMarkers } from '../../plugins/mariadb/markers.ts';

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

async function count(dump: string, chunk: number, algorithm: ChecksumAlgorithm = 'row64-sum') {
  const c = new DumpCounter(algorithm);
  const parts: Buffer[] = [];
  const b = Buffer.from(dump);
  for (let i = 0; i < b.length; i += chunk) parts.push(b.subarray(i, i + chunk));
  const out = await Promise.all([text(c), pipeline(Readable.from(parts), c)]);
  assert.equal(out[0], dump, 'the stream passes through unchanged');
  return c.stats();
}

const FIXED = ['90844cadca8b1808ef8d02ad3d52ebf6', '321b9899ed4aed91321b9899ed4aed91', '9b91a6fc0999250b515a66852427118c01afac61'];

describe('mariadb dump counter', () => {
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    it(`${algorithm}: counts rows and gives the same checksums for both INSERT layouts, any row order and any chunking`, async () => {
      const a = await count(ONE_LINE, 7, algorithm);
      const b = await count(PER_ROW, 3, algorithm);
      assert.equal(a.shop!.t!.rows, 3);
      assert.equal(a.shop!.empty!.rows, 0);
      assert.equal(a['we`ird']!.x!.rows, 1);
      assert.deepEqual(a, b);
      assert.deepEqual(a, await count(ONE_LINE, 1 << 20, algorithm));
      assert.deepEqual(compareStats(a, b), []);
      // One byte changed inside a string, or an escape moved, changes the checksum.
      const c = await count(ONE_LINE.replace("'a (b), c; d'", "'a (b), c; e'"), 5, algorithm);
      const d = await count(ONE_LINE.replace("'it\\'s", "'it'\\s"), 5, algorithm);
      assert.notEqual(c.shop!.t!.checksum, a.shop!.t!.checksum);
      assert.notEqual(d.shop!.t!.checksum, a.shop!.t!.checksum);
    });
  }

  it('keeps the checksums of manifests already written (fixed values)', async () => {
    // Changing either algorithm would make every earlier backup fail its verification.
    const a = await count(ONE_LINE, 64, 'row64-sum');
    const s = await count(ONE_LINE, 64, 'sha1-xor');
    assert.equal(a.shop!.t!.checksum.length, 32);
    assert.equal(s.shop!.t!.checksum.length, 40);
    assert.deepEqual([a.shop!.t!.checksum, a['we`ird']!.x!.checksum, s.shop!.t!.checksum], FIXED);
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

describe('mariadb load markers', () => {
  // The layout of mariadb-dump --databases --triggers --routines output, abridged.
  const DUMP = [
    '-- Current Database: `shop`',
    'CREATE DATABASE `shop`;',
    '-- Table structure for table `a`',
    'CREATE TABLE `a` (`id` int);',
    '-- Dumping data for table `a`',
    'LOCK TABLES `a` WRITE;',
    'INSERT INTO `a` VALUES (1);',
    'UNLOCK TABLES;',
    'DELIMITER ;;',
    '/*!50003 CREATE TRIGGER t1 BEFORE INSERT ON a FOR EACH ROW SET NEW.id = NEW.id */;;',
    'DELIMITER ;',
    '-- Table structure for table `b`',
    'CREATE TABLE `b` (`id` int);',
    '-- Dumping data for table `b`',
    'INSERT INTO `b` VALUES (2);',
    '-- Dumping routines for database \'shop\'',
    'DELIMITER ;;',
    'CREATE PROCEDURE p() BEGIN',
    '-- Dumping data for table `fake` (inside a routine body: no marker while ";;")',
    'END ;;',
    'DELIMITER ;',
    '-- Current Database: `we``ird`',
    '-- Dumping data for table `x`',
    "INSERT INTO `x` VALUES (1,'z');",
  ].join('\n');

  it('adds a marker statement after each table\'s data, never inside a ";;" block', async () => {
    const m = new LoadMarkers();
    const parts = [];
    const b = Buffer.from(DUMP);
    for (let i = 0; i < b.length; i += 5) parts.push(b.subarray(i, i + 5));
    const [out] = await Promise.all([text(m), pipeline(Readable.from(parts), m)]);
    const markers = out.split('\n').filter((l) => l.startsWith('SELECT'));
    assert.deepEqual(markers, [1, 2, 3].map((n) => `SELECT 'snapagent-loaded:${n}' AS snapagent_marker;`));
    assert.equal(out.replace(/^SELECT 'snapagent-loaded:\d' AS snapagent_marker;\n/gm, ''), DUMP + '\n', 'the dump passes through, the last line terminated');
    assert.ok(out.indexOf("'snapagent-loaded:1'") > out.indexOf('DELIMITER ;\n-- Table structure for table `b`') - 1);
    assert.deepEqual(m.loaded('snapagent-loaded:1'), { database: 'shop', table: 'a' });
    assert.deepEqual(m.loaded('snapagent-loaded:2'), { database: 'shop', table: 'b' });
    assert.deepEqual(m.loaded('snapagent-loaded:3 '), { database: 'we`ird', table: 'x' });
    assert.equal(m.loaded('snapagent_marker'), undefined);
    assert.ok(out.endsWith("INSERT INTO `x` VALUES (1,'z');\nSELECT 'snapagent-loaded:3' AS snapagent_marker;\n"));
  });
});
