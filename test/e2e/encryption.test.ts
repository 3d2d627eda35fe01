// age encryption end to end with the real age binary: artifacts are standard age files
// an operator recovers by hand (age -d | zstd -d | tar); restore without the identity
// (or with another one) refuses before anything is touched; with it, the data comes
// back identical. Volume and mariadb plugins; file modes; secrets nowhere.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ageKey, type AgeKey } from '../helpers/age.ts';
import { config, containerJob, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { backupIds, docker, inVolume, removeVolume, requireDocker, snapagent, uniq, type CliResult, type Workspace } from '../helpers/harness.ts';
import { leaksIn } from '../helpers/leak-scan.ts';
import { commandLinesDuring, drillLeftovers, exists, looseModes } from '../helpers/leftovers.ts';
import { MARIADB_IMAGE, startMariaDb, type MariaDb } from '../helpers/mariadb.ts';
import { expectRun, restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, snapshot, type Snapshot } from '../helpers/tree.ts';

const sh = promisify(execFile);

function artifactOf(ws: Workspace, job: string): string {
  const host = readdirSync(ws.backups)[0]!;
  const ids = backupIds(path.join(ws.backups, host, job));
  const dir = path.join(ws.backups, host, job, ids[ids.length - 1]!);
  // the data, not the index beside it
  return path.join(dir, readdirSync(dir).find((f) => f.endsWith('.age') && !f.startsWith('index.'))!);
}

describe('age encryption: volume plugin', () => {
  const vol = uniq('sa-enc');
  const elsewhere = uniq('sa-enc-new');
  let ws: ConfigWorkspace;
  let key: AgeKey;
  let other: AgeKey;
  let original: Snapshot;

  before(async () => {
    await requireDocker();
    await filledVolume(vol, 'set -e; head -c 5000000 /dev/urandom > /v/blob; seq 1 300000 > /v/numbers; mkdir -p /v/d/e; echo hi > "/v/d/e/a file"; ln -s d/e /v/link; chown 1001:1002 /v/numbers; chmod 640 /v/numbers');
    ws = config();
    key = await ageKey(ws.dir);
    other = await ageKey(ws.dir, 'other.txt');
    ws.rewrite({ jobs: [volumeJob('enc', vol)], encryption: { age_recipients: [key.recipient] } });
  });

  after(async () => {
    await removeVolume(vol);
    await removeVolume(elsewhere);
    ws?.cleanup();
  });

  it('stores a standard age file that age -d | zstd -d | tar reads without snapagent', async () => {
    original = await snapshot(vol);
    await expectRun(['backup', '--config', ws.config, '--json']);
    const l = await snapagent(['list', '--config', ws.config, '--json']);
    const listed = l.json.backups[0];
    assert.equal(listed.encryption, 'age');
    // the data, and its GNU tar snapshot file (the next increment's base), both encrypted
    assert.deepEqual(listed.artifacts, ['volume.tar.zst.age', 'index.snar.zst.age']);
    const file = artifactOf(ws, 'enc');
    const manifest = JSON.parse(readFileSync(path.join(path.dirname(file), 'manifest.json'), 'utf8'));
    assert.deepEqual(manifest.artifacts[0].recipients, [key.recipient]);
    assert.equal(readFileSync(file).subarray(0, 22).toString(), 'age-encryption.org/v1\n');
    // the disaster recipe by hand: docs/restore-and-disaster-recovery.md "Without snapagent"
    const { stdout } = await sh('sh', ['-c', 'age -d -i "$1" "$2" | zstd -d | tar -tv', 'sh', key.identity, file]);
    assert.match(stdout, /\.\/d\/e\/a file/);
    assert.match(stdout, /1001\/1002 .*\.\/numbers/);
    const index = path.join(path.dirname(file), 'index.snar.zst.age');
    const snar = await sh('sh', ['-c', 'age -d -i "$1" "$2" | zstd -d | head -c 20', 'sh', key.identity, index]);
    assert.match(snar.stdout, /^GNU tar-[\d.]+-2\n/, 'the index is a GNU tar snapshot file under the same encryption');
  });

  it('restore without the identity: exit 2, says what to set, nothing touched', async () => {
    await inVolume(vol, 'echo changed > /v/marker');
    const live = await snapshot(vol);
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'enc', '--force', '--json']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.json.results[0].error, /is encrypted with age and no identity is configured; nothing was changed/);
    assert.match(r.json.results[0].hint, /encryption\.age_identity_file .* \$SNAPAGENT_AGE_IDENTITY_FILE/);
    assert.deepEqual(await snapshot(vol), live);
    const n = await snapagent(['restore', '--config', ws.config, '--job', 'enc', '--to-volume', elsewhere]);
    assert.equal(n.code, 2);
    assert.equal(await exists(elsewhere), false, 'no volume was created');
  });

  it('restore with a key that is not a recipient: exit 2, nothing touched', async () => {
    const live = await snapshot(vol);
    const r = await snapagent(['restore', '--config', ws.config, '--job', 'enc', '--force', '--json'], { SNAPAGENT_AGE_IDENTITY_FILE: other.identity });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.json.results[0].error, /does not match this backup's recipients; nothing was changed/);
    assert.deepEqual(await snapshot(vol), live);
  });

  it('restore with the identity gives back the identical tree', async () => {
    await docker('volume', 'rm', vol);
    await restoresIdentical(ws.config, 'enc', vol, original, { inPlace: true, env: { SNAPAGENT_AGE_IDENTITY_FILE: key.identity } });
  });

  it('verify needs no key for the stored bytes, and decodes them when it has one', async () => {
    const plain = await expectRun(['verify', '--config', ws.config, '--json']);
    assert.equal(plain.json.results[0].details.artifacts[0].checked, 'sha256');
    const deep = await expectRun(['verify', '--config', ws.config, '--json'], { SNAPAGENT_AGE_IDENTITY_FILE: key.identity });
    assert.equal(deep.json.results[0].details.artifacts[0].checked, 'sha256+decode');
  });

  it('writes every file 0600 in 0700 directories (target and state)', () => {
    assert.deepEqual(looseModes(ws.backups), []);
    assert.deepEqual(looseModes(ws.state), []);
  });
});

describe('age encryption: mariadb plugin', () => {
  const SECRET = `Db-pw-${uniq('x')}`;
  let db: MariaDb;
  let ws: ConfigWorkspace;
  let noKey: string;
  let key: AgeKey;
  const outputs: string[] = [];
  const commandLines = new Set<string>();
  const job = uniq('encdb');

  // every CLI run of this suite: outputs and the command lines of all processes meanwhile
  async function run(config: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    const { result, lines } = await commandLinesDuring(snapagent([...args, '--config', config, '--json'], { SNAP_TEST_DB_PW: SECRET, ...env }));
    outputs.push(result.stdout, result.stderr);
    for (const l of lines) commandLines.add(l);
    return result;
  }

  before(async () => {
    await requireDocker(MARIADB_IMAGE);
    db = await startMariaDb(SECRET);
    await db.sql('CREATE DATABASE shop; USE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(64), b VARBINARY(32)); INSERT INTO shop.t SELECT seq, MD5(seq), UNHEX(SHA2(seq, 256)) FROM seq_1_to_50000;');
    ws = config();
    key = await ageKey(ws.dir);
    writeFileSync(path.join(ws.dir, 'recipients.txt'), `# the backup key\n${key.recipient}\n`);
    const jobs = [containerJob(job, 'mariadb', db.name, { options: { password_env: 'SNAP_TEST_DB_PW' } })];
    ws.rewrite({ jobs, encryption: { age_recipients_file: 'recipients.txt', age_identity_file: 'key.txt' } });
    noKey = ws.variant('no-key.yml', { jobs, encryption: { age_recipients_file: 'recipients.txt' } });
  });

  after(async () => {
    await db?.remove();
    ws?.cleanup();
  });

  it('round trip: restore without the key refuses and leaves the data; with it, equal to the backup', async () => {
    const before = await db.sql('CHECKSUM TABLE shop.t EXTENDED');
    const b = await run(noKey, ['backup']);
    assert.equal(b.code, 0, b.stderr);
    await db.sql('INSERT INTO shop.t VALUES (50001, "after the backup", NULL)');
    const refused = await run(noKey, ['restore', '--job', job]);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.json.results[0].error, /encrypted with age and no identity is configured/);
    assert.equal((await db.sql('SELECT COUNT(*) FROM shop.t')).trim(), '50001', 'live data untouched');
    await db.sql('DROP DATABASE shop');
    const r = await run(ws.config, ['restore', '--job', job]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await db.sql('CHECKSUM TABLE shop.t EXTENDED'), before);
  });

  it('a drill of the encrypted backup passes and leaves nothing behind', async () => {
    const d = await run(ws.config, ['verify', '--drill']);
    assert.equal(d.code, 0, d.stdout + d.stderr);
    const res = d.json.results[0];
    assert.equal(res.status, 'ok');
    assert.equal(res.details.image, MARIADB_IMAGE);
    for (const name of [res.details.container, ...res.details.volumes]) assert.equal(await exists(name), false, `${name} was removed`);
    assert.deepEqual(await drillLeftovers(job), []);
  });

  it('no secret in any output, log, manifest, check record or state file, nor on a command line', () => {
    const secrets = { 'database password': SECRET, 'age secret key': key.secret };
    // every small file but the identity itself (artifacts hold the data, encrypted)
    const written = (f: string) => f !== key.identity && !/\.(zst|age)$/.test(f);
    assert.deepEqual(leaksIn(outputs, secrets, { dirs: [ws.dir], files: written }), [], 'a secret was written');
    assert.deepEqual(leaksIn([...commandLines], secrets), [], 'a secret was on a command line');
    assert.ok([...commandLines].some((l) => /^age -d -i \/\S+key\.txt $/.test(l)), 'the sampler saw age, given its key as a file');
    assert.deepEqual(looseModes(ws.backups), []);
  });
});
