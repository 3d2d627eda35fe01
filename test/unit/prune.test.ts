// What retention decides for one job on one target (agent/catalog/prune.ts, no I/O): the
// policy is the job's own keep, else its tier's (the config job's tier, else the plan's,
// else the newest backup's); nothing goes when the newest backup failed its latest check
// or the tier is unknown; the newest backup always stays. Years of dates are retention.test.ts's.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckRecord, Listed } from '../../agent/catalog/manifest.ts';
import { decide } from '../../agent/catalog/prune.ts';
import { keepFor } from '../../agent/catalog/retention.ts';
import { parseConfigText } from '../../agent/config/load.ts';

process.env.TZ = 'UTC'; // days are the host's local days

const config = parseConfigText(
  'host: h\ntiers: { hourly: { schedule: "0 * * * *", keep: { last: 2 } } }\njobs:\n  - { name: own, plugin: volume, volume: v1, tier: hourly, keep: { last: 1 } }\n  - { name: cfg, plugin: volume, volume: v2, tier: hourly }\n',
  'test.yml',
);

function backup(job: string, startedAt: string, tier = 'hourly', checks: Listed['checks'] = {}): Listed {
  const id = `${startedAt.replace(/[-:]/g, '').replace(/\.\d+/, '')}-${tier}`;
  return { target: { name: 'local' }, dir: `h/${job}/${id}`, checks, signature: { state: 'signed' }, manifest: { job, id, tier, started_at: startedAt } } as unknown as Listed;
}
const days = (job: string, n: number, tier?: string) => Array.from({ length: n }, (_, i) => backup(job, `2026-11-${String(10 + i).padStart(2, '0')}T02:00:00Z`, tier));
const ids = (items: { id: string }[]) => items.map((i) => i.id.slice(0, 8));

describe('retention decisions', () => {
  it('keepFor: the job\'s own keep, else its tier\'s; a label job takes the tier it is given', () => {
    assert.deepEqual(keepFor(config, 'own', undefined), { keep: { last: 1 }, tier: 'hourly' });
    assert.deepEqual(keepFor(config, 'cfg', 'critical'), { keep: { last: 2 }, tier: 'hourly' }, 'the config job\'s tier wins');
    assert.deepEqual(keepFor(config, 'label-job', 'critical'), { keep: { daily: 30 }, tier: 'critical' });
    assert.deepEqual(keepFor(config, 'label-job', 'gone'), { keep: undefined, tier: 'gone' });
    assert.deepEqual(keepFor(config, 'label-job', undefined), { keep: undefined, tier: undefined });
  });

  it('keeps what the policy keeps, newest first, and removes the rest oldest first, with reasons', () => {
    const r = decide(config, 'cfg', 'local', days('cfg', 4));
    assert.equal(r.status, 'ok');
    assert.equal(r.policy, 'last 2');
    assert.deepEqual(ids(r.kept), ['20261113', '20261112']);
    assert.deepEqual(ids(r.removed), ['20261110', '20261111']);
    assert.ok(r.kept.every((k) => k.reasons.length > 0) && r.removed.every((k) => k.reasons.length > 0));
    assert.deepEqual(ids(decide(config, 'own', 'local', days('own', 3)).kept), ['20261112']);
  });

  it('the tier comes from the plan, else from the newest backup', () => {
    assert.equal(decide(config, 'lbl', 'local', days('lbl', 3, 'critical')).policy, 'daily 30');
    assert.equal(decide(config, 'lbl', 'local', days('lbl', 3, 'critical'), 'hourly').removed.length, 1);
  });

  it('removes nothing when the newest backup failed its latest check, or no policy applies', () => {
    const failed = { kind: 'verify', status: 'failed', at: '2026-11-14T00:00:00Z' } as CheckRecord;
    const list = [...days('cfg', 3), backup('cfg', '2026-11-20T02:00:00Z', 'hourly', { verify: failed })];
    const refused = decide(config, 'cfg', 'local', list);
    assert.equal(refused.status, 'refused');
    assert.deepEqual(refused.removed, []);
    assert.equal(refused.kept.length, 4);
    assert.match(refused.kept[0]!.reasons[0]!, /the newest backup 20261120T020000Z-hourly failed its verify check .*nothing is removed until a newer backup exists/);
    // an older backup's failed check does not hold retention back
    const older = [backup('cfg', '2026-11-01T02:00:00Z', 'hourly', { verify: failed }), ...days('cfg', 3)];
    assert.deepEqual(ids(decide(config, 'cfg', 'local', older).removed), ['20261101', '20261110']);
    const skipped = decide(config, 'lbl', 'local', days('lbl', 3, 'retired'));
    assert.equal(skipped.status, 'skipped');
    assert.equal(skipped.removed.length, 0);
    assert.match(skipped.kept[0]!.reasons[0]!, /tier "retired" is not in the config: no retention applies/);
  });

  it('no backups: an empty report', () => {
    assert.deepEqual(decide(config, 'cfg', 'local', []), { job: 'cfg', target: 'local', policy: 'last 2', status: 'ok', kept: [], removed: [], untrusted: [] });
  });
});
