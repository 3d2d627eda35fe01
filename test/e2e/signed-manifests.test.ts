// The remote is data, not instructions: an attacker with write access to the target
// edits, strips, re-signs and plants manifests; restore, verify and prune refuse them by
// name (exit 3) and never act on them, list shows their signature state, and a fresh
// host restores with the old host's public key alone (volume plugin, local target).
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hostKey, signatureFile } from '../../agent/catalog/signing.ts';
import { config, configText, volumeJob, type ConfigWorkspace, type TestConfig } from '../helpers/config.ts';
import { docker, removeVolume, requireDocker, snapagent, uniq, backupIds } from '../helpers/harness.ts';
import { expectRun, restoresIdentical } from '../helpers/runs.ts';
import { filledVolume, type Snapshot } from '../helpers/tree.ts';

const HOST = 'sa-signed';
const JOB = 'data';

describe('signed manifests (volume plugin, local target)', () => {
  const vol = uniq('sa-sig');
  const copies: string[] = [];
  let ws: ConfigWorkspace;
  let original: Snapshot;
  let ids: string[] = [];
  const spec = (extra: TestConfig = {}): TestConfig => ({ host: HOST, jobs: [volumeJob(JOB, vol, { keep: { within: '7d' } })], ...extra });
  const jobDir = () => path.join(ws.backups, HOST, JOB);
  const manifest = (id: string) => path.join(jobDir(), id, 'manifest.json');
  const copy = () => {
    const v = uniq('sa-sig-copy');
    copies.push(v);
    return v;
  };
  // another config on the same target: a fresh host, or one that trusts other keys
  const otherHost = (extra: TestConfig) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-fresh-'));
    const file = path.join(dir, 'snapagent.yml');
    writeFileSync(file, configText(ws, { ...spec(extra), state_dir: path.join(dir, 'state') }));
    return { file, dir };
  };
  // an artifact directory planted next to the genuine ones, its manifest edited by `edit`
  const plant = async (from: string, id: string, edit: (m: any) => void, signWith?: string) => {
    cpSync(path.join(jobDir(), from), path.join(jobDir(), id), { recursive: true });
    for (const f of ['verify.json', 'verify.json.sig', 'drill.json', 'drill.json.sig', 'manifest.json.sig']) rmSync(path.join(jobDir(), id, f), { force: true });
    const m = JSON.parse(readFileSync(manifest(from), 'utf8'));
    m.id = id;
    edit(m);
    const bytes = Buffer.from(JSON.stringify(m, null, 2) + '\n');
    writeFileSync(manifest(id), bytes);
    if (signWith) writeFileSync(`${manifest(id)}.sig`, signatureFile(await hostKey(signWith), `${HOST}/${JOB}/${id}/manifest.json`, bytes));
  };
  const idAt = (id: string, deltaMs: number) => {
    const t = new Date(Date.parse(id.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z.*$/, '$1-$2-$3T$4:$5:$6Z')) + deltaMs);
    return `${t.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-critical`;
  };

  before(async () => {
    await requireDocker();
    original = await filledVolume(vol, 'mkdir -p /v/d && seq 1 20000 > /v/d/n && echo genuine > /v/who');
    ws = config(spec());
    for (let i = 0; i < 3; i++) await expectRun(['backup', '--config', ws.config, '--json']);
    ids = backupIds(jobDir());
    assert.equal(ids.length, 3);
  });

  after(async () => {
    for (const v of [vol, ...copies]) await removeVolume(v);
    ws?.cleanup();
  });

  it('every backup is signed by a 0600 host key made on the first backup; `key` prints only the public key', async () => {
    const k = await expectRun(['key', '--config', ws.config, '--json']);
    assert.match(k.json.public_key, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA[A-Za-z0-9+/]+=* snapagent@sa-signed$/);
    assert.equal(statSync(k.json.private_key_file).mode & 0o777, 0o600);
    const secret = readFileSync(k.json.private_key_file, 'utf8').split('\n')[1]!;
    assert.ok(!k.stdout.includes(secret) && !k.stderr.includes(secret), 'the private key is never printed');
    const human = await snapagent(['key', '--config', ws.config]);
    assert.equal(human.stdout.trim(), k.json.public_key);
    for (const id of ids) assert.ok(existsSync(`${manifest(id)}.sig`), id);
    const l = await snapagent(['list', '--config', ws.config, '--json']);
    assert.deepEqual(l.json.backups.map((b: any) => b.signature), ids.map(() => ({ state: 'signed', key_id: k.json.key_id })));
    const lh = await snapagent(['list', '--config', ws.config]);
    assert.match(lh.stdout.split('\n')[0]!, /SIGNATURE$/);
  });

  it('a manifest edited after the backup: restore, verify, drill and prune refuse it by name (exit 3), nothing changes', async () => {
    const newest = ids[2]!;
    const good = readFileSync(manifest(newest));
    const m = JSON.parse(good.toString());
    m.source.driver_options = { type: 'none', o: 'bind', device: '/etc' };
    writeFileSync(manifest(newest), JSON.stringify(m, null, 2) + '\n');
    const name = new RegExp(`backup ${JOB}/${newest} on target local: bad manifest signature: .*changed after it was signed`);
    try {
      const into = copy();
      const r = await snapagent(['restore', '--config', ws.config, '--job', JOB, '--to-volume', into, '--json']);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.json.results[0].error, name);
      assert.match(r.json.results[0].hint, /trusted_keys/);
      assert.equal((await docker('volume', 'ls', '-q', '--filter', `name=^${into}$`)).trim(), '', 'no volume created');
      const all = await snapagent(['restore', '--config', ws.config, '--all', '--json']);
      assert.equal(all.code, 3, all.stdout + all.stderr);
      assert.match(all.json.results[0].error, name);
      const v = await snapagent(['verify', '--config', ws.config, '--json']);
      assert.equal(v.code, 3, v.stdout + v.stderr);
      assert.match(v.json.results[0].errors[0], name);
      assert.equal(v.json.results[0].recorded, false);
      assert.ok(!existsSync(path.join(jobDir(), newest, 'verify.json')), 'nothing recorded next to a forged manifest');
      const d = await snapagent(['verify', '--drill', '--config', ws.config, '--json']);
      assert.equal(d.code, 3, d.stdout + d.stderr);
      assert.match(d.json.results[0].errors[0], name);
      const p = await snapagent(['prune', '--config', ws.config, '--json']);
      assert.equal(p.code, 3, p.stdout + p.stderr);
      assert.deepEqual(p.json.jobs[0].untrusted.map((u: any) => u.id), [newest]);
      assert.match(p.json.jobs[0].untrusted[0].reasons[0], name);
      assert.equal(p.json.jobs[0].kept[0].id, ids[1], 'the newest trusted backup is the newest for retention');
      assert.deepEqual(backupIds(jobDir()), ids, 'nothing removed');
      const l = await snapagent(['list', '--config', ws.config, '--json']);
      assert.equal(l.code, 0);
      assert.equal(l.json.backups[2].signature.state, 'bad');
    } finally {
      writeFileSync(manifest(newest), good);
    }
  });

  it('an unsigned manifest is refused; --insecure-unsigned restores and verifies it with a warning naming it', async () => {
    const newest = ids[2]!;
    const sig = readFileSync(`${manifest(newest)}.sig`);
    rmSync(`${manifest(newest)}.sig`);
    try {
      const into = copy();
      const r = await snapagent(['restore', '--config', ws.config, '--job', JOB, '--to-volume', into, '--json']);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.json.results[0].error, new RegExp(`backup ${JOB}/${newest} on target local: its manifest is not signed`));
      assert.match(r.json.results[0].hint, /--insecure-unsigned/);
      const l = await snapagent(['list', '--config', ws.config, '--json']);
      assert.equal(l.json.backups[2].signature.state, 'unsigned');
      const ok = await restoresIdentical(ws.config, JOB, into, original, { args: ['--insecure-unsigned'], hashesOnly: true });
      assert.equal(ok.json.results[0].id, newest);
      assert.match(ok.stderr, new RegExp(`--insecure-unsigned: trusting the unsigned manifest of backup ${JOB}/${newest}`));
      await expectRun(['verify', '--config', ws.config, '--insecure-unsigned', '--json']);
      const p = await snapagent(['prune', '--config', ws.config, '--json']);
      assert.equal(p.code, 3, p.stdout + p.stderr);
      assert.match(p.json.jobs[0].untrusted[0].reasons[0], /its manifest is not signed: left alone/);
    } finally {
      writeFileSync(`${manifest(newest)}.sig`, sig);
    }
  });

  it('a manifest signed by a key that is not trusted is refused', async () => {
    const attacker = mkdtempSync(path.join(tmpdir(), 'snapagent-attacker-'));
    const id = idAt(ids[2]!, 1000);
    const at = Date.parse(JSON.parse(readFileSync(manifest(ids[2]!), 'utf8')).started_at) + 1000;
    await plant(ids[2]!, id, (m) => {
      m.started_at = new Date(at).toISOString();
      m.finished_at = new Date(at + 1000).toISOString();
    }, attacker);
    try {
      const r = await snapagent(['restore', '--config', ws.config, '--job', JOB, '--to-volume', copy(), '--json']);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.equal(r.json.results[0].id, id);
      assert.match(r.json.results[0].error, /neither this host's key nor in trusted_keys/);
      // the attacker's key is not ours to trust: a host that lists it would accept it (and
      // this host's key too: the planted copy is an increment on this host's backups)
      const ours = (await snapagent(['key', '--config', ws.config, '--json'])).json.public_key;
      const trusting = otherHost({ trusted_keys: [(await hostKey(attacker)).line, ours] });
      await expectRun(['verify', '--config', trusting.file, '--id', id, '--json']);
      rmSync(trusting.dir, { recursive: true, force: true });
    } finally {
      rmSync(path.join(jobDir(), id), { recursive: true, force: true });
      rmSync(attacker, { recursive: true, force: true });
    }
  });

  it('a fresh host (no state, no private key) restores with trusted_keys alone; without it, refuses', async () => {
    const k = await snapagent(['key', '--config', ws.config, '--json']);
    const fresh = otherHost({ trusted_keys: [k.json.public_key] });
    const stranger = otherHost({});
    try {
      const r = await restoresIdentical(fresh.file, JOB, copy(), original, { hashesOnly: true });
      assert.equal(r.json.results[0].id, ids[2]);
      assert.ok(!existsSync(path.join(fresh.dir, 'state', 'keys')), 'restore needs and makes no private key');
      const s = await snapagent(['restore', '--config', stranger.file, '--job', JOB, '--to-volume', copy(), '--json']);
      assert.equal(s.code, 3, s.stdout + s.stderr);
      assert.match(s.json.results[0].error, /neither this host's key nor in trusted_keys/);
    } finally {
      rmSync(fresh.dir, { recursive: true, force: true });
      rmSync(stranger.dir, { recursive: true, force: true });
    }
  });

  it('a manifest from 2099 (even signed) is refused by name and never steers retention: prune removes no genuine backup', async () => {
    const future = '20990101T000000Z-critical';
    await plant(ids[0]!, future, (m) => {
      m.started_at = '2099-01-01T00:00:00.000Z';
      m.finished_at = '2099-01-01T00:00:05.000Z';
    }, ws.state); // as if the host's own key had signed it
    try {
      for (const flags of [[], ['--insecure-unsigned']]) {
        const p = await snapagent(['prune', '--config', ws.config, '--json', ...flags]);
        assert.equal(p.code, 0, p.stdout + p.stderr);
        assert.deepEqual(p.json.jobs[0].removed, []);
        assert.deepEqual(p.json.jobs[0].kept.map((k: any) => k.id), [...ids].reverse());
        assert.match(p.json.jobs[0].kept[0].reasons.join(), /newest backup/);
        assert.match(p.stderr, new RegExp(`${HOST}/${JOB}/${future}/manifest.json.*implausible manifest: started_at 2099-01-01T00:00:00.000Z is in the future`));
      }
      assert.deepEqual(backupIds(jobDir()), [...ids, future].sort(), 'the genuine backups and the planted one are all there');
      const r = await expectRun(['restore', '--config', ws.config, '--job', JOB, '--to-volume', copy(), '--json']);
      assert.equal(r.json.results[0].id, ids[2], '"latest" is the newest genuine backup');
      const named = await snapagent(['restore', '--config', ws.config, '--job', JOB, '--id', future, '--to-volume', copy()]);
      assert.equal(named.code, 3, named.stdout + named.stderr);
      assert.match(named.stderr, new RegExp(`backup local:${HOST}/${JOB}/${future} is refused: implausible manifest: started_at .* is in the future`));
      const l = await snapagent(['list', '--config', ws.config, '--json']);
      assert.deepEqual(l.json.backups.map((b: any) => b.id), ids);
    } finally {
      rmSync(path.join(jobDir(), future), { recursive: true, force: true });
    }
  });

  it('an unknown plugin and an id that does not match started_at are refused by name, even when signed, and never pruned', async () => {
    const state = ws.state;
    const evil = idAt(ids[0]!, -3600_000); // an earlier slot: plausible, but the plugin is not ours
    await plant(ids[0]!, evil, (m) => (m.plugin = 'evil'), state);
    const shifted = idAt(ids[0]!, 3600_000); // an id an hour after the backup finished
    await plant(ids[0]!, shifted, () => undefined, state);
    try {
      const r = await snapagent(['restore', '--config', ws.config, '--job', JOB, '--id', evil, '--to-volume', copy()]);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`backup local:${HOST}/${JOB}/${evil} is refused: implausible manifest: unknown plugin "evil"`));
      const v = await snapagent(['verify', '--config', ws.config, '--id', shifted, '--json']);
      assert.equal(v.code, 3, v.stdout + v.stderr);
      assert.match(v.stderr, new RegExp(`backup local:${HOST}/${JOB}/${shifted} is refused: implausible manifest: id ${shifted} does not match started_at`));
      const p = await snapagent(['prune', '--config', ws.config, '--json']);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      assert.deepEqual(p.json.jobs[0].kept.map((k: any) => k.id), [...ids].reverse());
      assert.ok(existsSync(manifest(evil)) && existsSync(manifest(shifted)), 'prune never acts on them');
    } finally {
      rmSync(path.join(jobDir(), evil), { recursive: true, force: true });
      rmSync(path.join(jobDir(), shifted), { recursive: true, force: true });
    }
  });

  it('a restore of the genuine newest backup still works and matches', async () => {
    await restoresIdentical(ws.config, JOB, copy(), original, { hashesOnly: true });
  });
});
