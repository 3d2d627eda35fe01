// snapagent verify and verify --drill against the real engine: the latest, all or one
// backup checked and recorded next to its manifest; a flipped byte, a truncated or a
// missing artifact is caught (exit 3, a failed record that retention sees); drills record
// the RTO and the metrics, and leave nothing behind when they fail or are cancelled
// (volume, mariadb). Also the daemon's entry point, runDrills(). That every plugin's good
// backup passes verify and its drill: the plugin contract suite (test/contract/).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../agent/config/load.ts';
import { connectDocker } from '../../agent/docker/client.ts';
import { runDrills } from '../../agent/restore/drill.ts';
import { failedCheck } from '../../agent/catalog/manifest.ts';
import { readCatalog } from '../../agent/catalog/catalog.ts';
import { LocalTarget } from '../../agent/targets/local.ts';
import { catalogTrust } from '../../agent/catalog/trust.ts';
import { hostKey, signatureFile } from '../../agent/catalog/signing.ts';
import { plugins } from '../../plugins/index.ts';
import { backupIds, docker, flipByte, inVolume, jobWorkspace, removeVolume, requireDocker, ROOT, snapagent, uniq, type Workspace } from '../helpers/harness.ts';
import { drillLeftovers, exists } from '../helpers/leftovers.ts';
import { MARIADB_IMAGE, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';

function backupDirs(ws: Workspace, job: string): string[] {
  const host = readdirSync(ws.backups)[0]!;
  return backupIds(path.join(ws.backups, host, job)).map((id) => path.join(ws.backups, host, job, id));
}

function record(dir: string, kind: 'verify' | 'drill') {
  return JSON.parse(readFileSync(path.join(dir, `${kind}.json`), 'utf8'));
}

async function assertNothingLeft(job: string, details: { volume?: string; container?: string; volumes?: string[] }): Promise<void> {
  for (const name of [details.volume, details.container, ...(details.volumes ?? [])].filter(Boolean) as string[]) {
    assert.equal(await exists(name), false, `${name} was removed`);
  }
  assert.deepEqual(await drillLeftovers(job), []);
}

describe('verify and drills: volume plugin', () => {
  const vol = uniq('sa-ver');
  const job = uniq('ver');
  let ws: Workspace;
  let dirs: string[];

  before(async () => {
    await requireDocker();
    await docker('volume', 'create', vol);
    await inVolume(vol, 'head -c 6000000 /dev/urandom > /v/blob; seq 1 200000 > /v/numbers; mkdir /v/d; echo x > /v/d/f');
    ws = jobWorkspace(job, 'volume', vol);
    // three backups on one day: keep them all (the default daily: 30 keeps one a day)
    appendFileSync(ws.config, `metrics: { textfile_dir: ${path.join(ws.dir, 'metrics')} }\ntiers: { critical: { keep: { last: 10 } } }\n`);
    for (let i = 0; i < 3; i++) {
      const b = await snapagent(['backup', '--config', ws.config]);
      assert.equal(b.code, 0, b.stderr);
    }
    dirs = backupDirs(ws, job);
    assert.equal(dirs.length, 3);
  });

  after(async () => {
    await removeVolume(vol);
    ws?.cleanup();
  });

  it('checks the latest backup of each job by default and records verify.json next to its manifest', async () => {
    const r = await snapagent(['verify', '--config', ws.config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.ok, true);
    assert.equal(r.json.results.length, 1);
    assert.equal(r.json.results[0].id, path.basename(dirs[2]!));
    const rec = record(dirs[2]!, 'verify');
    assert.equal(rec.format, 'snapagent.check/1');
    assert.equal(rec.status, 'ok');
    assert.equal(rec.details.artifacts[0].checked, 'sha256+decode');
    assert.equal((statSync(path.join(dirs[2]!, 'verify.json')).mode & 0o777).toString(8), '600');
    const l = await snapagent(['list', '--config', ws.config, '--json']);
    assert.equal(l.json.backups.find((b: { id: string }) => b.id === rec.id).checks.verify.status, 'ok');
    const all = await snapagent(['verify', '--config', ws.config, '--id', 'all']);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.stdout.trim().split('\n').length, 4, 'a header and three backups');
  });

  it('verify --drill restores into a throwaway volume, compares, records the RTO and removes it', async () => {
    const r = await snapagent(['verify', '--drill', '--config', ws.config, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const res = r.json.results[0];
    assert.equal(res.kind, 'drill');
    assert.equal(res.status, 'ok');
    assert.match(res.details.volume, new RegExp(`^snapagent-drill-${job}-`));
    const rec = record(dirs[2]!, 'drill');
    assert.equal(rec.status, 'ok');
    assert.ok(rec.rto_seconds > 0 && rec.rto_seconds === rec.details.restore_seconds, JSON.stringify(rec));
    assert.equal(rec.details.startup_seconds, 0);
    await assertNothingLeft(job, res.details);
    // the drill's figures are in the metrics file as soon as the drill is recorded
    const prom = readFileSync(path.join(ws.dir, 'metrics', 'snapagent.prom'), 'utf8');
    const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*job="${job}"[^}]*\\} (\\S+)$`, 'm').exec(prom)?.[1]);
    assert.equal(value('snapagent_restore_drill_last_status'), 1, prom);
    assert.equal(value('snapagent_restore_drill_rto_seconds'), rec.rto_seconds);
    assert.equal(value('snapagent_restore_drill_last_timestamp_seconds'), Date.parse(rec.at) / 1000);
  });

  it('runDrills (the daemon\'s entry point) drills the latest backups of a tier', async () => {
    const config = loadConfig(ws.config);
    const results = await runDrills({ config, docker: connectDocker({ transfer: 'attach', pipeDir: path.join(ws.dir, 'pipes') }), registry: plugins }, { tier: 'critical' });
    assert.deepEqual(results.map((r) => [r.job, r.status, r.recorded]), [[job, 'ok', true]]);
    assert.deepEqual(await runDrills({ config, docker: connectDocker({ transfer: 'attach', pipeDir: ws.dir }), registry: plugins }, { tier: 'low' }), []);
  });

  it('a flipped byte: verify exits 3 and records it, the drill fails and leaves nothing, retention sees it', async () => {
    flipByte(path.join(dirs[2]!, 'volume.tar.zst'), 0x01);
    const v = await snapagent(['verify', '--config', ws.config, '--json']);
    assert.equal(v.code, 3, v.stdout + v.stderr);
    assert.match(v.json.results[0].errors[0], /sha256 [0-9a-f]+ does not match the manifest's/);
    assert.equal(record(dirs[2]!, 'verify').status, 'failed');
    const d = await snapagent(['verify', '--drill', '--config', ws.config, '--json']);
    assert.equal(d.code, 3, d.stdout + d.stderr);
    assert.match(d.json.results[0].errors[0], /does not match|damaged/);
    assert.equal(record(dirs[2]!, 'drill').status, 'failed');
    assert.equal(record(dirs[2]!, 'drill').rto_seconds, undefined);
    await assertNothingLeft(job, d.json.results[0].details);
    const host = path.basename(path.dirname(path.dirname(dirs[2]!)));
    const cat = await readCatalog(new LocalTarget('local', ws.backups), `${host}/${job}`, await catalogTrust({ config: loadConfig(ws.config), registry: plugins }));
    const newest = cat.backups[cat.backups.length - 1]!;
    assert.equal(failedCheck(newest)?.status, 'failed', 'retention must not prune this job');
  });

  it('a truncated artifact (--id) and a missing one: exit 3, each named', async () => {
    truncateSync(path.join(dirs[1]!, 'volume.tar.zst'), 1000);
    const t = await snapagent(['verify', '--config', ws.config, '--id', path.basename(dirs[1]!), '--json']);
    assert.equal(t.code, 3, t.stdout + t.stderr);
    assert.match(t.json.results[0].errors[0], /1000 bytes stored, the manifest says \d+; the archive is truncated or damaged/);
    rmSync(path.join(dirs[0]!, 'volume.tar.zst'));
    const m = await snapagent(['verify', '--config', ws.config, '--id', path.basename(dirs[0]!), '--json']);
    assert.equal(m.code, 3, m.stdout + m.stderr);
    assert.match(m.json.results[0].errors[0], /volume\.tar\.zst: missing from the target/);
    assert.equal(record(dirs[0]!, 'verify').status, 'failed');
  });

  it('an unknown id or job: exit 2 with what to do', async () => {
    const r = await snapagent(['verify', '--config', ws.config, '--id', '20200101T000000Z-critical']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no committed backup has id "20200101T000000Z-critical"/);
    const j = await snapagent(['verify', '--config', ws.config, '--job', 'nope']);
    assert.equal(j.code, 2);
    assert.match(j.stderr, /no committed backups of host .*, job nope/);
  });
});

describe('drills: mariadb plugin', () => {
  const SECRET = `Drill-pw-${uniq('x')}`;
  const job = uniq('drilldb');
  let db: MariaDb;
  let ws: Workspace;
  let dir: string;

  before(async () => {
    await requireDocker();
    await docker('image', 'inspect', MARIADB_IMAGE);
    db = await startMariaDb(SECRET);
    await db.sql('CREATE DATABASE shop; USE shop; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_20000; CREATE TABLE u (id INT PRIMARY KEY); INSERT INTO u VALUES (1), (2);');
    ws = jobWorkspace(job, 'mariadb', db.name);
    const b = await snapagent(['backup', '--config', ws.config]);
    assert.equal(b.code, 0, b.stderr);
    dir = backupDirs(ws, job)[0]!;
  });

  after(async () => {
    await db?.remove();
    ws?.cleanup();
  });

  it('cancelled (SIGINT) while its server starts: everything removed, nothing recorded', async () => {
    const before = existsSync(path.join(dir, 'drill.json'));
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'snapagent.js'), 'verify', '--drill', '--config', ws.config], { env: { ...process.env, SNAPAGENT_LOG_FORMAT: 'json' }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    while (!(await docker('ps', '-a', '--format', '{{.Names}}')).includes(`snapagent-drill-${job}-`)) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGINT');
    assert.equal(await exited, 1);
    assert.deepEqual(await drillLeftovers(job), []);
    assert.equal(existsSync(path.join(dir, 'drill.json')), before, 'a cancelled drill records nothing');
  });

  it('fails on a tampered backup (a row count in the manifest) with exit 3, and leaves nothing', async () => {
    const file = path.join(dir, 'manifest.json');
    const m = JSON.parse(readFileSync(file, 'utf8'));
    m.stats.databases.shop.u.rows = 3;
    writeFileSync(file, JSON.stringify(m));
    // edited by another hand, the manifest is refused before the drill starts (exit 3)
    const refused = await snapagent(['verify', '--drill', '--config', ws.config, '--json']);
    assert.equal(refused.code, 3, refused.stdout + refused.stderr);
    assert.match(refused.json.results[0].errors[0], /bad manifest signature: .*changed after it was signed/);
    // signed by the host itself (data that differs from what the host recorded), the drill's comparison catches it
    const key = path.relative(ws.backups, file);
    writeFileSync(`${file}.sig`, signatureFile(await hostKey(path.join(ws.dir, 'state')), key, readFileSync(file)));
    const r = await snapagent(['verify', '--drill', '--config', ws.config, '--json']);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.json.results[0].errors[0], /restored data differs from the backup: shop\.u: 2 rows, the backup had 3/);
    const rec = record(dir, 'drill');
    assert.equal(rec.status, 'failed');
    await assertNothingLeft(job, rec.details);
  });
});
