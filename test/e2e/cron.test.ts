// `make install-cron` / `make uninstall-cron`: one line per tier of the config, logging to
// a file; a line run the way cron runs it (sh, a bare PATH) backs up that tier's jobs
// under the slot's id, and the backup restores identical. Files snapagent did not write
// are never replaced or removed; a schedule cron cannot express is refused.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { backupId } from '../../agent/catalog/manifest.ts';
import { slotAt } from '../../agent/plan/schedule.ts';
import { config, volumeJob, type ConfigWorkspace, type TestConfig } from '../helpers/config.ts';
import { logLines, make, removeVolume, requireDocker, ROOT, uniq } from '../helpers/harness.ts';
import { restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, type Snapshot } from '../helpers/tree.ts';

const pexec = promisify(execFile);

describe('make install-cron / uninstall-cron', () => {
  const vol = uniq('sa-cron');
  const restored = uniq('sa-cron-restored');
  let ws: ConfigWorkspace;
  let spec: TestConfig;
  let cronFile: string;
  let cronLog: string;
  let original: Snapshot;

  before(async () => {
    await requireDocker();
    original = await filledVolume(vol, 'mkdir -p /v/d && seq 1 3000 > /v/d/n');
    spec = { host: 'sa-cron', tiers: { hourly: { schedule: '5 * * * *', keep: { last: 24 } } }, jobs: [volumeJob('data', vol, { tier: 'hourly' })] };
    ws = config(spec);
    cronFile = path.join(ws.dir, 'snapagent');
    cronLog = path.join(ws.dir, 'snapagent.log');
  });

  after(async () => {
    await removeVolume(vol);
    await removeVolume(restored);
    ws?.cleanup();
  });

  it('writes one line per tier, honouring the config path', async () => {
    const r = await make(['install-cron', `CONFIG=${ws.config}`, `CRON_FILE=${cronFile}`, `CRON_LOG=${cronLog}`]);
    assert.equal(r.code, 0, r.out);
    assert.equal(statSync(cronFile).mode & 0o777, 0o644, 'cron ignores group/other-writable files');
    const lines = readFileSync(cronFile, 'utf8').split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith('SHELL='));
    const node = path.join(ROOT, '.tools', 'node_modules', 'node', 'bin', 'node');
    const line = (sched: string, tier: string) => `${sched} root cd '${ROOT}' && '${node}' '${ROOT}/bin/snapagent.js' backup --config '${ws.config}' --tier '${tier}' >> '${cronLog}' 2>&1`;
    assert.deepEqual(lines, [line('0 2 * * *', 'critical'), line('0 3 * * 0', 'medium'), line('0 4 1 * *', 'low'), line('5 * * * *', 'hourly')]);
  });

  it('a line run as cron runs it backs up the tier under the slot id, and it restores identical', async () => {
    const hourly = readFileSync(cronFile, 'utf8').split('\n').find((l) => l.startsWith('5 * * * * root '))!;
    const command = hourly.replace(/^(\S+\s+){5}root\s+/, '');
    const before = Date.now();
    await pexec('/bin/sh', ['-c', command], { env: { PATH: '/usr/bin:/bin', HOME: '/root' } });
    const logs = logLines(readFileSync(cronLog, 'utf8'));
    const ok = logs.find((l) => l.msg === 'backup ok');
    assert.ok(ok, readFileSync(cronLog, 'utf8'));
    // the slot of the run (the clock may cross a slot while it runs: either side is fine)
    const slots = [before, Date.now()].map((t) => backupId(slotAt('5 * * * *', new Date(t)), 'hourly'));
    assert.ok(slots.includes(ok.id), `${ok.id} is one of ${slots.join(', ')}`);
    await restoresIdentical(ws.config, 'data', restored, original);
  });

  it('uninstall removes only its own file; install never overwrites a foreign one', async () => {
    let r = await make(['uninstall-cron', `CRON_FILE=${cronFile}`]);
    assert.equal(r.code, 0, r.out);
    assert.equal(existsSync(cronFile), false);
    r = await make(['uninstall-cron', `CRON_FILE=${cronFile}`]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /not installed/);

    writeFileSync(cronFile, '0 1 * * * root /usr/local/bin/someone-elses-job\n');
    r = await make(['install-cron', `CONFIG=${ws.config}`, `CRON_FILE=${cronFile}`, `CRON_LOG=${cronLog}`]);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /was not written by snapagent: left alone/);
    r = await make(['uninstall-cron', `CRON_FILE=${cronFile}`]);
    assert.notEqual(r.code, 0);
    assert.equal(readFileSync(cronFile, 'utf8'), '0 1 * * * root /usr/local/bin/someone-elses-job\n');
  });

  it('refuses a schedule with seconds, naming the key', async () => {
    const cfg = ws.variant('seconds.yml', { ...spec, tiers: { hourly: { schedule: '30 5 * * * *', keep: { last: 24 } } } });
    const r = await make(['install-cron', `CONFIG=${cfg}`, `CRON_FILE=${cronFile}.2`, `CRON_LOG=${cronLog}`]);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /seconds\.yml: tiers\.hourly\.schedule: "30 5 \* \* \* \*" has a seconds field, which cron cannot run/);
    assert.equal(existsSync(`${cronFile}.2`), false);
  });
});
