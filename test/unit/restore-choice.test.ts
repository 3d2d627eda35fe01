// Which backups a restore takes: --before parsing (zones, local time, bad input), the
// newest at or before a time, per job and for the whole host, and the whole-host order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Listed } from '../../agent/catalog/manifest.ts';
import type { Job } from '../../agent/plugin/contract.ts';
import { latestPerJob, parseBefore, pickOne, restoreOrder } from '../../agent/restore/restore-choice.ts';

function listed(job: string, startedAt: string, plugin = 'volume'): Listed {
  const id = `${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-critical`;
  return { target: { name: 'local' }, dir: `h/${job}/${id}`, checks: {}, manifest: { job, id, plugin, started_at: startedAt } } as unknown as Listed;
}

const ids = (l: Listed[]) => l.map((b) => `${b.manifest.job}@${b.manifest.started_at}`);

describe('restore choice', () => {
  it('parses --before with a zone exactly, and without one as local time', () => {
    assert.equal(parseBefore('2026-11-21T02:30:00Z').toISOString(), '2026-11-21T02:30:00.000Z');
    assert.equal(parseBefore('2026-11-21T03:30:00+01:00').toISOString(), '2026-11-21T02:30:00.000Z');
    assert.equal(parseBefore('2026-11-20T21:30-0500').toISOString(), '2026-11-21T02:30:00.000Z');
    assert.equal(parseBefore('2026-11-21T02:30:00.250Z').toISOString(), '2026-11-21T02:30:00.250Z');
    assert.equal(parseBefore('20261121T023000Z').toISOString(), '2026-11-21T02:30:00.000Z');
    assert.equal(parseBefore('2026-11-21 02:30').getTime(), new Date(2026, 10, 21, 2, 30).getTime());
    assert.equal(parseBefore('2026-11-21').getTime(), new Date(2026, 10, 21).getTime());
  });

  it('refuses what is not a time, naming the flag and the accepted forms', () => {
    for (const bad of ['yesterday', '2026-13-01', '2026-02-31T00:00Z', '2026-11-21T25:00Z', '2026-11-21T02:30+15:00', '1700000000', '']) {
      assert.throws(() => parseBefore(bad), (err: Error & { exitCode?: number }) => err.message.startsWith(`--before "${bad}": expected an ISO 8601 time`) && err.exitCode === 2, bad);
    }
  });

  const backups = [
    listed('db', '2026-11-19T02:00:00.100Z', 'mariadb'),
    listed('db', '2026-11-20T02:00:00.100Z', 'mariadb'),
    listed('db', '2026-11-21T02:00:00.100Z', 'mariadb'),
    listed('files', '2026-11-20T03:00:00.000Z'),
    listed('new', '2026-11-21T01:00:00.000Z'),
  ];

  it('picks the newest backup at or before the time, per job', () => {
    assert.deepEqual(ids([pickOne(backups, 'db')]), ['db@2026-11-21T02:00:00.100Z']);
    assert.deepEqual(ids([pickOne(backups, 'db', 'latest', new Date('2026-11-20T02:00:00.100Z'))]), ['db@2026-11-20T02:00:00.100Z'], 'at the very time counts');
    assert.deepEqual(ids([pickOne(backups, 'db', 'latest', new Date('2026-11-20T02:00:00.099Z'))]), ['db@2026-11-19T02:00:00.100Z']);
    assert.throws(() => pickOne(backups, 'db', 'latest', new Date('2026-11-01T00:00:00Z')), /job "db" has no committed backup at or before 2026-11-01T00:00:00.000Z/);
  });

  it('takes the newest of every job at or before the time and reports the jobs that had none', () => {
    const all = latestPerJob(backups);
    assert.deepEqual(ids(all.chosen), ['db@2026-11-21T02:00:00.100Z', 'files@2026-11-20T03:00:00.000Z', 'new@2026-11-21T01:00:00.000Z']);
    assert.deepEqual(all.skipped, []);
    const then = latestPerJob(backups, new Date('2026-11-20T12:00:00Z'));
    assert.deepEqual(ids(then.chosen), ['db@2026-11-20T02:00:00.100Z', 'files@2026-11-20T03:00:00.000Z']);
    assert.deepEqual(then.skipped, [{ job: 'new', plugin: 'volume', oldest: '20261121T010000Z-critical' }]);
  });

  it('restores volumes first, then datastores, each by order and name', () => {
    const chosen = [listed('search', '2026-11-21T00:00:00Z', 'elasticsearch'), listed('db', '2026-11-21T00:00:00Z', 'mariadb'), listed('uploads', '2026-11-21T00:00:00Z'), listed('config', '2026-11-21T00:00:00Z')];
    const planned = [{ name: 'config', order: 20 }, { name: 'search', order: -1 }] as Job[];
    assert.deepEqual(restoreOrder(chosen, planned).map((l) => l.manifest.job), ['uploads', 'config', 'search', 'db']);
  });
});
