// The remote is data, not instructions: manifests forged by whoever can write the target
// (written here by the test into a local target, from genuine backups) ask restore and
// drills for what only the operator may decide. Each is refused by name and nothing on
// the host changes; no byte goes to a foreign address (a listener counts connections).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, containerJob, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { backupIds, docker, inVolume, removeVolume, requireDocker, snapagent, uniq } from '../helpers/harness.ts';
import { leaksIn } from '../helpers/leak-scan.ts';
import { drillLeftovers } from '../helpers/leftovers.ts';
import { MARIADB_IMAGE, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';
import { expectRun } from '../helpers/runs.ts';
import { filledVolume, snapshot } from '../helpers/tree.ts';
import { hostKey, signatureFile } from '../../agent/catalog/signing.ts';

const HOST = 'forgehost';

// Each forged manifest is signed again with this host's own key: an attacker cannot do
// that (the signature alone refuses their manifests, signed-manifests.test.ts), but a
// trusted key can sign hostile content (another host of the fleet taken over, or the
// operator passing --insecure-unsigned for old backups), and these checks stand behind
// the signature.
async function writeSignedManifest(ws: ConfigWorkspace, file: string, m: unknown): Promise<void> {
  const bytes = Buffer.from(JSON.stringify(m, null, 2));
  writeFileSync(file, bytes);
  writeFileSync(`${file}.sig`, signatureFile(await hostKey(ws.state), path.relative(ws.backups, file), bytes));
}

/** Copies a genuine backup of `job` to `as`, with its manifest changed by `edit`. */
async function forge(ws: ConfigWorkspace, job: string, as: string, edit: (m: any, dir: string) => void): Promise<string> {
  const src = path.join(ws.backups, HOST, job);
  const id = backupIds(src).at(-1)!;
  const dir = path.join(ws.backups, HOST, as, id);
  rmSync(path.join(ws.backups, HOST, as), { recursive: true, force: true });
  mkdirSync(path.dirname(dir), { recursive: true });
  cpSync(path.join(src, id), dir, { recursive: true });
  for (const f of ['verify.json', 'drill.json']) rmSync(path.join(dir, f), { force: true });
  const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  m.job = as;
  edit(m, dir);
  await writeSignedManifest(ws, path.join(dir, 'manifest.json'), m);
  return dir;
}

describe('forged manifests: volume plugin', () => {
  const live = uniq('sa-forge-live');
  const victim = uniq('sa-forge-victim');
  const gone = uniq('sa-forge-gone');
  const fresh = uniq('sa-forge-new');
  let ws: ConfigWorkspace;
  let canary: string;

  before(async () => {
    await requireDocker();
    canary = mkdtempSync(path.join(tmpdir(), 'snapagent-canary-'));
    writeFileSync(path.join(canary, 'keep'), 'host file\n');
    await filledVolume(live, 'echo live > /v/state && seq 1 2000 > /v/n');
    await filledVolume(victim, 'echo victim > /v/mine');
    ws = config({ host: HOST, jobs: [volumeJob('vol', live), volumeJob('gone', gone)] });
    await expectRun(['backup', '--config', ws.config, '--job', 'vol', '--json']);
  });

  after(async () => {
    for (const v of [live, victim, gone, fresh]) await removeVolume(v);
    rmSync(canary, { recursive: true, force: true });
    ws?.cleanup();
  });

  it('bind-mount driver options: refused by name, the host dir untouched, no volume created', async () => {
    await forge(ws, 'vol', 'gone', (m) => Object.assign(m.source, { volume: gone, driver: 'local', driver_options: { type: 'none', o: 'bind', device: canary } }));
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'gone', '--json']);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.json.results[0].error, new RegExp(`volume ${gone} would be recreated as a bind mount of a host path .*device=${canary}.*never taken from a manifest`));
    assert.deepEqual(readdirSync(canary), ['keep']);
    assert.equal(await docker('volume', 'inspect', gone).then(() => true, () => false), false);
  });

  it('another destination recorded in the manifest: not used unless the operator names it', async () => {
    const before = await snapshot(victim);
    await forge(ws, 'vol', 'stray', (m) => (m.source.volume = victim));
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'stray', '--force', '--json']);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.json.results[0].error, new RegExp(`job stray is not in this host's plan, and its manifest's destination volume "${victim}" is not in restore.destinations`));
    assert.deepEqual(await snapshot(victim), before);
    // --all takes every job directory on the target: the stray one is refused the same way
    const all = await snapagent(['restore', '--config', ws.config, '--all', '--force', '--json']);
    assert.notEqual(all.code, 0);
    assert.ok(all.json.results.some((x: { job: string; status: string; error?: string }) => x.job === 'stray' && x.status === 'failed' && /restore.destinations/.test(x.error ?? '')));
    assert.deepEqual(await snapshot(victim), before);
    // named on the command line: restored there, the recorded volume untouched
    const ok = await expectRun(['restore', '--config', ws.config, '--job', 'stray', '--to-volume', fresh, '--json']);
    assert.equal(ok.json.results[0].destination, `volume ${fresh}`);
    assert.deepEqual(await snapshot(victim), before);
  });

  it('a zstd bomb (small artifact, huge raw stream, small raw_size): refused by name, the live volume unchanged', async () => {
    const original = await snapshot(live);
    const tmp = mkdtempSync(path.join(tmpdir(), 'snapagent-bomb-'));
    try {
      execFileSync('sh', ['-c', 'truncate -s 256M "$1/big" && tar -C "$1" -c big | zstd -q -19 -T0 -c > "$1/bomb.zst"', 'sh', tmp]);
      const bomb = readFileSync(path.join(tmp, 'bomb.zst'));
      assert.ok(bomb.length < 1 << 20, `a small artifact: ${bomb.length} bytes`);
      const dir = path.join(ws.backups, HOST, 'vol', backupIds(path.join(ws.backups, HOST, 'vol')).at(-1)!);
      const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
      const a = m.artifacts[0];
      writeFileSync(path.join(dir, a.name), bomb);
      Object.assign(a, { size: bomb.length, sha256: createHash('sha256').update(bomb).digest('hex') }); // raw_size stays small
      await writeSignedManifest(ws, path.join(dir, 'manifest.json'), m);
      const r = await snapagent(['restore', '--config', ws.config, '--job', 'vol', '--force', '--json']);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.json.results[0].error, new RegExp(`decompresses to more than \\d+ bytes, the manifest's raw_size ${a.raw_size} \\+ 1 % \\+ 64 KiB; refused as a decompression bomb`));
      assert.deepEqual(await snapshot(live), original);
      assert.equal((await inVolume(live, 'ls -A /v')).trim().split('\n').sort().join(' '), 'n state', 'no staging dir left');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('forged manifests: mariadb plugin', () => {
  const PW = `forge-${uniq('pw')}`;
  const SECRET = `never-sent-${uniq('s')}`;
  let db: MariaDb;
  let ws: ConfigWorkspace;
  let listener: Server;
  let connections = 0;
  let port = 0;
  let secretFile: string;

  before(async () => {
    await requireDocker(MARIADB_IMAGE);
    listener = createServer((s) => (connections++, s.destroy()));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    port = (listener.address() as AddressInfo).port;
    db = await startMariaDb(PW);
    await db.sql('CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO shop.t VALUES (1),(2),(3)');
    ws = config({ host: HOST, jobs: [containerJob('db', 'mariadb', db.name)] });
    secretFile = path.join(ws.dir, 'secret');
    writeFileSync(secretFile, SECRET);
    await expectRun(['backup', '--config', ws.config, '--json']);
  });

  after(async () => {
    await db?.remove();
    listener?.close();
    ws?.cleanup();
  });

  it('foreign host/port and password_file in the options of a job not in the plan: never used, zero connections', async () => {
    await forge(ws, 'db', 'foreign', (m) => Object.assign(m.options, { host: '127.0.0.1', port, user: 'root', password_file: secretFile }));
    const refused = await snapagent(['restore', '--config', ws.config, '--job', 'foreign', '--json']);
    assert.equal(refused.code, 4, refused.stdout + refused.stderr);
    assert.match(refused.json.results[0].error, /job foreign is not in this host's plan, and its manifest's destination container ".*" is not in restore.destinations/);
    // the operator names the container: the agent reaches it its own way, not the manifest's
    const r = await expectRun(['restore', '--config', ws.config, '--job', 'foreign', '--to-container', db.name, '--force', '--json']);
    assert.equal(connections, 0, 'no connection to the address in the manifest');
    assert.deepEqual(leaksIn([r.stdout, r.stderr, refused.stdout, refused.stderr], { 'the password file': SECRET }), []);
    assert.equal((await db.sql('SELECT COUNT(*) FROM shop.t')).trim(), '3');
  });

  it('a drill of a foreign image: refused by name, nothing started', async () => {
    await forge(ws, 'db', 'img', (m) => (m.source.image = 'snapagent/helper:latest'));
    const r = await snapagent(['verify', '--drill', '--config', ws.config, '--job', 'img', '--json']);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.json.results[0].errors[0], /the drill would start image "snapagent\/helper:latest" \(recorded in the manifest\), which is neither the job's own container's image nor in restore.drill_images/);
    assert.deepEqual(await drillLeftovers('img'), []);
    assert.equal(connections, 0);
  });
});
