// The signing module and the manifest sanity checks: what a forger can and cannot do
// with write access to a target.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfigText } from '../../agent/config/load.ts';
import { sanityProblems, type Manifest } from '../../agent/catalog/manifest.ts';
import { checkSignature, hostKey, hostKeyFile, makeKeyring, parsePublicKey, signatureFile, existingHostKey } from '../../agent/catalog/signing.ts';

const dirs: string[] = [];
const stateDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'snapagent-sign-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const KEY = 'h/job/20261121T020000Z-critical/manifest.json';
const BYTES = Buffer.from('{"format":"snapagent.manifest/1"}\n');

describe('signing', () => {
  it('makes one 0600 key on first use, in a 0700 directory, and finds it again; concurrent callers agree', async () => {
    const dir = stateDir();
    assert.equal(await existingHostKey(dir), undefined, 'readers never make a key');
    const [a, b] = await Promise.all([hostKey(dir), hostKey(dir)]);
    assert.equal(a.id, b.id);
    assert.equal(statSync(hostKeyFile(dir)).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(hostKeyFile(dir))).mode & 0o777, 0o700);
    assert.equal((await existingHostKey(dir))!.id, a.id);
    assert.match(a.id, /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('the key id is the OpenSSH fingerprint of the printed public key', async (t) => {
    const k = await hostKey(stateDir());
    let out: string;
    try {
      const f = path.join(stateDir(), 'k.pub');
      writeFileSync(f, `${k.line} test\n`);
      out = execFileSync('ssh-keygen', ['-l', '-f', f], { encoding: 'utf8' });
    } catch {
      t.skip('ssh-keygen is not installed');
      return;
    }
    assert.ok(out.includes(k.id), out);
  });

  it('a signature verifies for the exact bytes at the exact key, by a trusted key only', async () => {
    const k = await hostKey(stateDir());
    const other = await hostKey(stateDir());
    const sig = signatureFile(k, KEY, BYTES);
    const ring = makeKeyring([k.line]);
    assert.deepEqual(checkSignature(ring, KEY, BYTES, sig), { state: 'signed', key_id: k.id });
    assert.deepEqual(checkSignature(ring, KEY, BYTES, undefined), { state: 'unsigned' });
    const edited = Buffer.from(BYTES.toString().replace('1', '2'));
    assert.match((checkSignature(ring, KEY, edited, sig) as { reason: string }).reason, /changed after it was signed/);
    const moved = KEY.replace('job', 'other');
    assert.match((checkSignature(ring, moved, BYTES, sig) as { reason: string }).reason, /the signature is for h\/job\//);
    // a forger signs with his own key and names it: not trusted
    const forged = signatureFile(other, KEY, edited);
    assert.match((checkSignature(ring, KEY, edited, forged) as { reason: string }).reason, /neither this host's key nor in trusted_keys/);
    // ... or names the trusted key id on his own signature
    const lying = Buffer.from(forged.toString().replace(other.id, k.id));
    assert.equal(checkSignature(ring, KEY, edited, lying).state, 'bad');
    assert.equal(checkSignature(ring, KEY, BYTES, Buffer.from('not json')).state, 'bad');
    assert.equal(checkSignature(new Map(), KEY, BYTES, sig).state, 'bad', 'no keys: nothing is trusted');
  });

  it('public keys parse as ssh-ed25519 lines, raw base64 and PEM, to the same id; others are refused', async () => {
    const k = await hostKey(stateDir());
    const raw = Buffer.from(k.key.export({ format: 'jwk' }).x!, 'base64url').toString('base64');
    const pem = k.key.export({ format: 'pem', type: 'spki' }).toString();
    for (const text of [k.line, `${k.line} snapagent@web-01`, raw, pem]) assert.equal(parsePublicKey(text).id, k.id, text);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    for (const bad of ['', 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p', 'ssh-ed25519 AAAA', rsa, raw.slice(1)]) {
      assert.throws(() => parsePublicKey(bad), Error, bad);
    }
  });

  it('config: trusted_keys are checked, naming the file, the index and what was expected', async () => {
    const k = await hostKey(stateDir());
    assert.equal(parseConfigText(`trusted_keys: ["${k.line} old-host"]\n`, 'cfg.yml').trusted_keys.length, 1);
    assert.throws(() => parseConfigText(`trusted_keys: ["${k.line}", "ssh-rsa AAAAB3Nza"]\n`, 'cfg.yml'), /cfg\.yml: trusted_keys\[1\]: an Ed25519 public key: "ssh-ed25519 AAAA…"/);
  });

  it('the private key file holds a PEM private key; a damaged one is named, never shown', async () => {
    const dir = stateDir();
    await hostKey(dir);
    assert.match(readFileSync(hostKeyFile(dir), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    const broken = stateDir();
    await hostKey(broken);
    const secret = readFileSync(hostKeyFile(broken), 'utf8');
    writeFileSync(hostKeyFile(broken), secret.slice(0, 60));
    const fresh = await import(`../../agent/catalog/signing.ts?again=${Date.now()}`); // without the first call's memo
    await assert.rejects(fresh.hostKey(broken), (err: Error) => /host-ed25519\.pem: not a PEM private key/.test(err.message) && !err.message.includes(secret.slice(28, 60)));
  });
});

describe('manifest sanity', () => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  const m = (over: Partial<Manifest> = {}, art: Partial<Manifest['artifacts'][number]> = {}): Manifest =>
    ({
      format: 'snapagent.manifest/1',
      id: '20261201T020000Z-critical',
      host: 'h',
      job: 'j',
      plugin: 'volume',
      tier: 'critical',
      started_at: '2026-12-01T02:00:03.100Z',
      finished_at: '2026-12-01T02:00:09.000Z',
      duration_seconds: 6,
      agent: { name: 'snapagent', version: '1' },
      source: {},
      options: {},
      artifacts: [{ name: 'volume.tar.zst', format: 'tar', compression: 'zstd', encryption: 'none', size: 1000, sha256: '0'.repeat(64), raw_size: 5000, ...art }],
      stats: {},
      ...over,
    }) as Manifest;
  const P = ['volume', 'mariadb'];
  it('a genuine manifest has no problem (slot ids before the start included)', () => {
    assert.deepEqual(sanityProblems(m(), P, now), []);
    assert.deepEqual(sanityProblems(m({ id: '20261130T020000Z-critical' }), P, now), [], 'a caught-up slot');
    assert.deepEqual(sanityProblems(m({ id: '20261201T020005Z-critical' }), P, now), [], 'bumped past used ids');
    assert.deepEqual(sanityProblems(m({ started_at: '2026-12-02T12:05:00Z', finished_at: '2026-12-02T12:06:00Z', id: '20261202T120500Z-critical' }), P, now), [], 'within the clock skew');
  });
  it('refuses an unknown plugin, a future date, an id not matching, absurd sizes', () => {
    assert.match(sanityProblems(m({ plugin: 'evil' }), P, now).join(), /unknown plugin "evil"/);
    assert.match(sanityProblems(m({ started_at: '2099-01-01T00:00:00Z', finished_at: '2099-01-01T00:00:01Z', id: '20990101T000000Z-critical' }), P, now).join(), /started_at 2099-01-01T00:00:00Z is in the future/);
    assert.match(sanityProblems(m({ id: '20261201T020000Z-low' }), P, now).join(), /does not end in its tier/);
    assert.match(sanityProblems(m({ id: '20261202T000000Z-critical' }), P, now).join(), /does not match started_at/);
    assert.match(sanityProblems(m({ id: '20241201T000000Z-critical' }), P, now).join(), /does not match started_at/);
    assert.match(sanityProblems(m({ finished_at: '2026-12-01T01:00:00Z' }), P, now).join(), /finished_at is before started_at/);
    assert.match(sanityProblems(m({}, { raw_size: 1000 * 32768 + 1 }), P, now).join(), /raw_size 32768001 is more than 32768 times its size 1000 \(the most zstd expands\)/);
    assert.deepEqual(sanityProblems(m({}, { raw_size: 1000 * 32768 }), P, now), []);
    assert.match(sanityProblems(m({}, { compression: 'none', raw_size: 1001 }), P, now).join(), /raw_size 1001 is more than its size 1000 \(not compressed\)/);
  });
});
