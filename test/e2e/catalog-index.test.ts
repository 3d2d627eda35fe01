// The per-job catalog index on a real S3 server (`rclone serve s3`): written at commit,
// read by `list` and `status` in a few requests, kept honest against the listing when
// backups appear or vanish behind the agent's back (and repaired), and never believed
// when someone who can write the bucket but holds no trusted key rewrites it. Volume
// plugin, fulls only (a backup removed behind the agent's back is no one's base); the
// server counts the requests it answers.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readCatalog } from '../../agent/catalog/catalog.ts';
import { INDEX_FILE } from '../../agent/catalog/catalog-index.ts';
import { hostKey, makeKeyring, signatureFile } from '../../agent/catalog/signing.ts';
import { RcloneTarget } from '../../agent/targets/rclone.ts';
import { writeFixtureBackup } from '../helpers/catalog-fixture.ts';
import { config, rcloneTarget, volumeJob, type ConfigWorkspace } from '../helpers/config.ts';
import { logLines, removeVolume, requireDocker, snapagent, uniq } from '../helpers/harness.ts';
import { expectRun } from '../helpers/runs.ts';
import { startS3Server, type S3Server } from '../helpers/s3-server.ts';
import { filledVolume } from '../helpers/tree.ts';

const HOST = 'sa-catindex';
const JOB = 'data';
const REMOTE = 'cat';
const BASE = `${HOST}/${JOB}`;

describe('catalog index on S3 (volume plugin)', () => {
  const vol = uniq('sa-catindex');
  let s3: S3Server;
  let ws: ConfigWorkspace;
  let env: Record<string, string>;
  let target: RcloneTarget;
  let genuine: string[] = [];
  const attackerDir = mkdtempSync(path.join(tmpdir(), 'snapagent-attacker-'));

  // One agent command with debug logs; its requests to the server and its catalog lines.
  async function counted(args: string[], code = 0) {
    const before = s3.requests();
    const r = await snapagent([...args, '--config', ws.config, '--json'], { ...env, SNAPAGENT_LOG_LEVEL: 'debug', SNAPAGENT_LOG_FORMAT: 'json' });
    assert.equal(r.code, code, r.stdout + r.stderr);
    await new Promise((res) => setTimeout(res, 200)); // the server's log catches up
    const lines = logLines(r.stderr);
    return { r, requests: s3.requests() - before, reads: lines.filter((l) => l.msg === 'catalog read'), written: lines.filter((l) => l.msg === 'catalog index written'), warnings: lines.filter((l) => l.level === 40).map((l) => l.msg as string) };
  }
  const index = async () => JSON.parse((await target.readFile(`${BASE}/${INDEX_FILE}`)).toString());
  const listed = (r: { r: { json?: any } }) => r.r.json.backups.map((b: any) => `${b.id} ${b.signature.state}`).sort();

  before(async () => {
    await requireDocker();
    s3 = await startS3Server({ countRequests: true });
    env = s3.env(REMOTE);
    Object.assign(process.env, env); // for the in-process target below
    target = new RcloneTarget({ name: 's3', remote: `${REMOTE}:bkt/snap`, flags: [], timeoutSeconds: 60, retries: 0 });
    await filledVolume(vol, 'seq 1 5000 > /v/n && echo one > /v/f');
    ws = config({ host: HOST, targets: [rcloneTarget('s3', `${REMOTE}:bkt/snap`)], jobs: [volumeJob(JOB, vol, { keep: { last: 10 }, incremental: false })] });
    for (let i = 0; i < 2; i++) await expectRun(['backup', '--config', ws.config, '--json'], env);
  });

  after(async () => {
    await s3?.stop();
    await removeVolume(vol);
    rmSync(attackerDir, { recursive: true, force: true });
    ws?.cleanup();
  });

  it('written at commit; list and status read it in a few requests', async () => {
    const doc = await index();
    assert.equal(doc.format, 'snapagent.catalog/1');
    genuine = doc.backups.map((b: { id: string }) => b.id);
    assert.equal(genuine.length, 2);
    for (const cmd of ['list', 'status']) {
      const c = await counted([cmd]);
      assert.deepEqual(c.reads.map((l) => [l.job, l.index, l.read_anew]), [[BASE, 'used', 0]], `${cmd} used the index`);
      assert.deepEqual(c.written, [], 'and had nothing to repair');
      // lsjson: HEAD + LIST; catalog.json and its signature: a GET each (and rclone's HEADs)
      assert.ok(c.requests <= 10, `${cmd}: ${c.requests} requests`);
    }
    const c = await counted(['list']);
    assert.deepEqual(listed(c), genuine.map((id) => `${id} signed`));
  });

  it('a backup added and one removed behind its back: listed as stored, only the new one read, the index repaired', async () => {
    const added = await writeFixtureBackup(target, { host: HOST, job: JOB, at: new Date(Date.now() - 86_400_000) }, await hostKey(ws.state));
    await target.removeDir(`${BASE}/${genuine[0]}`);
    const c = await counted(['list']);
    assert.deepEqual(listed(c), [genuine[1], added.id].sort().map((id) => `${id} signed`));
    assert.deepEqual(c.reads.map((l) => [l.index, l.read_anew]), [['stale', 1]]);
    assert.equal(c.written.length, 1);
    assert.deepEqual((await index()).backups.map((b: { id: string }) => b.id), [genuine[1], added.id].sort());
    const again = await counted(['list']);
    assert.deepEqual(again.reads.map((l) => [l.index, l.read_anew]), [['used', 0]], 'fresh again');
    genuine = [genuine[1]!, added.id].sort();
  });

  it('rewritten by someone without a trusted key: ignored, the manifests read, the index replaced', async () => {
    const doc = await index();
    const f = doc.backups.at(-1).files['manifest.json'];
    const m = JSON.parse(f.text);
    m.artifacts[0].sha256 = 'f'.repeat(64);
    m.stats.files = 999_999;
    f.text = JSON.stringify(m, null, 2) + '\n';
    f.size = Buffer.byteLength(f.text);
    const bytes = Buffer.from(JSON.stringify(doc));
    await target.writeFile(`${BASE}/${INDEX_FILE}.sig`, signatureFile(await hostKey(attackerDir), `${BASE}/${INDEX_FILE}`, bytes));
    await target.writeFile(`${BASE}/${INDEX_FILE}`, bytes);
    const c = await counted(['list']);
    assert.ok(c.warnings.some((w) => /^ignoring the catalog index: bad signature: signed by key SHA256:\S+, which is neither this host's key nor in trusted_keys/.test(w)), c.warnings.join('\n'));
    assert.deepEqual(listed(c), genuine.map((id) => `${id} signed`));
    assert.ok(c.r.json.backups.every((b: any) => b.stats.files !== 999_999), 'the stored manifests, not the planted ones');
    assert.equal(c.written.length, 1, 'replaced by this host');
    const fixed = await readCatalog(target, BASE, { keys: makeKeyring([], await hostKey(ws.state)), plugins: ['volume'] });
    assert.deepEqual(fixed.backups.map((b) => b.manifest.id), genuine);
    assert.equal((await counted(['list'])).reads[0]!.index, 'used');
    // what acts on a backup reads the same: verify checks the stored bytes against the genuine manifest
    await expectRun(['verify', '--config', ws.config, '--job', JOB, '--id', genuine.at(-1)!, '--json'], env);
  });

  it('retention after a backup reads it and writes it without the removed backups', async () => {
    ws.rewrite({ host: HOST, targets: [rcloneTarget('s3', `${REMOTE}:bkt/snap`)], jobs: [volumeJob(JOB, vol, { keep: { last: 1 }, incremental: false })] });
    const r = await expectRun(['backup', '--config', ws.config, '--json'], env);
    const id = r.json.results[0].id as string;
    assert.deepEqual((await index()).backups.map((b: { id: string }) => b.id), [id]);
    const c = await counted(['list']);
    assert.deepEqual(listed(c), [`${id} signed`]);
    assert.deepEqual(c.reads.map((l) => [l.index, l.read_anew]), [['used', 0]]);
  });
});
