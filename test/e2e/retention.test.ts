// Retention end to end with the clock moved (libfaketime): every tier's scheduled run
// (`backup --tier T`, what the cron lines run) on simulated days, in Europe/Paris across
// the March DST change, through the real CLI and Docker. 40 daily critical runs leave
// exactly 30, 6 weekly runs 4, 5 monthly runs 3; ids are the schedule slots; files and
// backups snapagent did not write survive; nothing goes while the newest backup failed
// its verification; prune --dry-run shows and changes nothing. Then restores compare.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, volumeJob, type ConfigWorkspace, type Job, type TestConfig } from '../helpers/config.ts';
import { fakeClock, removeVolume, requireDocker, snapagent, uniq } from '../helpers/harness.ts';
import { restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, type Snapshot } from '../helpers/tree.ts';

const TZ = 'Europe/Paris'; // DST begins 2026-03-29 at 02:00
const HOST = 'sa-retention';

const day = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

describe('retention with a moved clock (local targets, volume plugin)', () => {
  const vols = { crit: uniq('sa-ret-crit'), med: uniq('sa-ret-med'), low: uniq('sa-ret-low') };
  const restored = [uniq('sa-ret-r1'), uniq('sa-ret-r2')];
  let ws: ConfigWorkspace;
  let strict: string;
  const originals: Record<string, Snapshot> = {};
  // fulls only: the calendar is under test here; a kept increment also keeps the backups it
  // depends on (test/unit/incremental.test.ts), which would blur the exact counts
  const spec = (crit: Partial<Job> = {}): TestConfig => ({
    host: HOST,
    jobs: [
      volumeJob('crit', vols.crit, { tier: 'critical', incremental: false, ...crit }),
      volumeJob('med', vols.med, { tier: 'medium', incremental: false }),
      volumeJob('low', vols.low, { tier: 'low', incremental: false }),
    ],
  });
  const jobDir = (job: string) => path.join(ws.backups, HOST, job);
  const ids = (job: string) => readdirSync(jobDir(job)).filter((n) => /^\d{8}T\d{6}Z-(critical|medium|low)$/.test(n)).sort();
  const run = async (at: string, tier: string) => {
    const r = await snapagent(['backup', '--config', ws.config, '--tier', tier, '--json'], fakeClock(at, TZ));
    assert.equal(r.code, 0, `${at} ${tier}: ${r.stderr}`);
    assert.equal(r.json.results.length, 1);
    return r.json.results[0];
  };

  before(async () => {
    await requireDocker();
    for (const [name, v] of Object.entries(vols)) originals[name] = await filledVolume(v, `mkdir -p /v/d && seq 1 5000 > /v/d/n && echo ${name} > /v/name`);
    ws = config(spec());
    strict = ws.variant('strict.yml', spec({ keep: { daily: 5 } }));
    // what snapagent did not write: a note, a foreign directory and a foreign manifest in
    // the job's directory, a file at the root
    mkdirSync(path.join(ws.backups, HOST, 'crit', 'manual-copy'), { recursive: true });
    writeFileSync(path.join(ws.backups, HOST, 'crit', 'NOTES.txt'), 'keep me\n');
    writeFileSync(path.join(ws.backups, HOST, 'crit', 'manual-copy', 'volume.tar.zst'), 'not ours\n');
    mkdirSync(path.join(ws.backups, HOST, 'crit', '20250101T000000Z-manual'), { recursive: true });
    writeFileSync(path.join(ws.backups, HOST, 'crit', '20250101T000000Z-manual', 'manifest.json'), '{"made_by":"someone else"}\n');
    writeFileSync(path.join(ws.backups, 'README.txt'), 'keep me too\n');
  });

  after(async () => {
    for (const v of [...Object.values(vols), ...restored]) await removeVolume(v);
    ws?.cleanup();
  });

  it('40 daily critical runs across the DST change leave exactly the 30 newest, with slot ids', async () => {
    let last;
    for (let i = 0; i < 40; i++) {
      const d = new Date(2026, 2, 1 + i); // 2026-03-01 .. 2026-04-09
      last = await run(`${day(d)} 02:00:05`, 'critical');
      if (i === 0) {
        // another host's backup in the same target: never this host's business
        const other = path.join(ws.backups, 'other-host', 'crit', last.id);
        cpSync(path.join(jobDir('crit'), last.id), other, { recursive: true });
        const m = JSON.parse(readFileSync(path.join(other, 'manifest.json'), 'utf8'));
        writeFileSync(path.join(other, 'manifest.json'), JSON.stringify({ ...m, host: 'other-host' }));
      }
    }
    assert.deepEqual(last.retention, [{ target: 'local', status: 'ok', removed: ['20260310T010000Z-critical'] }], 'the 40th run removed the 10th day');
    const kept = ids('crit');
    assert.equal(kept.length, 30, kept.join(' '));
    assert.equal(kept[0], '20260311T010000Z-critical', '02:00 in Paris is 01:00Z before the change');
    assert.ok(kept.includes('20260330T000000Z-critical'), '... and 00:00Z after it');
    // 02:00 does not exist on 2026-03-29: the run at 03:00 belongs to the 28th's slot, which
    // that day's backup already has, so it falls back to a start-time id
    assert.ok(kept.some((id) => /^20260329T0100\d\dZ-critical$/.test(id)), kept.join(' '));
    assert.equal(kept.at(-1), '20260409T000000Z-critical');
    const l = await snapagent(['list', '--config', ws.config, '--job', 'crit', '--json']);
    assert.equal(l.json.backups.length, 30);
    const days = new Set(l.json.backups.map((b: { id: string }) => b.id.slice(0, 8)));
    assert.equal(days.size, 30, 'one backup per day');
  });

  it('weekly and monthly tiers keep 4 Sundays and 3 months', async () => {
    for (const d of ['2026-03-01', '2026-03-08', '2026-03-15', '2026-03-22', '2026-03-29', '2026-04-05']) await run(`${d} 03:00:05`, 'medium');
    assert.deepEqual(ids('med'), ['20260315T020000Z-medium', '20260322T020000Z-medium', '20260329T010000Z-medium', '20260405T010000Z-medium']);
    for (const d of ['2026-01-01', '2026-02-01', '2026-03-01', '2026-04-01', '2026-05-01']) await run(`${d} 04:00:05`, 'low');
    assert.deepEqual(ids('low'), ['20260301T030000Z-low', '20260401T020000Z-low', '20260501T020000Z-low']);
  });

  it('left alone everything snapagent did not write', () => {
    assert.equal(readFileSync(path.join(ws.backups, HOST, 'crit', 'NOTES.txt'), 'utf8'), 'keep me\n');
    assert.ok(existsSync(path.join(ws.backups, HOST, 'crit', 'manual-copy', 'volume.tar.zst')));
    assert.ok(existsSync(path.join(ws.backups, HOST, 'crit', '20250101T000000Z-manual', 'manifest.json')));
    assert.ok(existsSync(path.join(ws.backups, 'README.txt')));
    assert.equal(readdirSync(path.join(ws.backups, 'other-host', 'crit')).length, 1);
  });

  it('removes nothing while the newest backup failed verification', async () => {
    const newest = ids('crit').at(-1)!;
    const record = { format: 'snapagent.check/1', kind: 'verify', id: newest, at: '2026-04-09T05:00:00.000Z', status: 'failed', duration_seconds: 1, errors: ['sha256 mismatch'], details: {} };
    writeFileSync(path.join(jobDir('crit'), newest, 'verify.json'), JSON.stringify(record));
    const p = await snapagent(['prune', '--config', strict, '--job', 'crit', '--json'], fakeClock('2026-04-09 12:00:00', TZ));
    assert.equal(p.code, 4, p.stderr);
    assert.equal(p.json.jobs[0].status, 'refused');
    assert.match(p.json.jobs[0].kept[0].reasons[0], /newest backup 20260409T000000Z-critical failed its verify check/);
    assert.equal(ids('crit').length, 30, 'nothing removed');
    writeFileSync(path.join(jobDir('crit'), newest, 'verify.json'), JSON.stringify({ ...record, status: 'ok', errors: [] }));
  });

  it('prune --dry-run says what would go and what stays, and why, and removes nothing; prune applies jobs[].keep', async () => {
    const dry = await snapagent(['prune', '--config', strict, '--dry-run', '--json'], fakeClock('2026-04-09 12:00:00', TZ));
    assert.equal(dry.code, 0, dry.stderr);
    const crit = dry.json.jobs.find((j: { job: string }) => j.job === 'crit');
    assert.equal(crit.policy, 'daily 5');
    assert.equal(crit.removed.length, 25);
    assert.deepEqual(crit.removed[0], { id: '20260311T010000Z-critical', started_at: crit.removed[0].started_at, reasons: ['kept by no rule (daily 5)'] });
    assert.deepEqual(crit.kept.map((k: { reasons: string[] }) => k.reasons.at(-1)), ['daily 2026-04-09', 'daily 2026-04-08', 'daily 2026-04-07', 'daily 2026-04-06', 'daily 2026-04-05']);
    assert.equal(dry.json.jobs.find((j: { job: string }) => j.job === 'med').removed.length, 0, 'the medium tier already fits its policy');
    assert.equal(ids('crit').length, 30, 'a dry run removes nothing');
    const human = await snapagent(['prune', '--config', strict, '--job', 'crit', '--dry-run']);
    assert.match(human.stdout, /local\s+crit\s+20260311T010000Z-critical\s+would remove\s+kept by no rule \(daily 5\)/);
    assert.match(human.stdout, /dry run: 25 backup\(s\) would be removed/);

    const p = await snapagent(['prune', '--config', strict, '--json'], fakeClock('2026-04-09 12:00:00', TZ));
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(ids('crit'), ['20260405T000000Z-critical', '20260406T000000Z-critical', '20260407T000000Z-critical', '20260408T000000Z-critical', '20260409T000000Z-critical']);
    assert.equal(readdirSync(jobDir('crit')).filter((n) => !ids('crit').includes(n)).sort().join(' '), '20250101T000000Z-manual NOTES.txt catalog.json catalog.json.sig manual-copy');
  });

  it('restores the newest daily and the oldest monthly backup, identical to the data', async () => {
    await restoresIdentical(ws.config, 'crit', restored[0]!, originals.crit!);
    await restoresIdentical(ws.config, 'low', restored[1]!, originals.low!, { id: '20260301T030000Z-low' });
  });
});
