// Signatures of what the agent writes to a target and later trusts (manifests, check
// records): the remote is data, not instructions. Each host has an Ed25519 key in its
// state directory, made on first use; a signature sits beside the file it signs
// (`manifest.json.sig`) and covers the exact stored bytes together with the file's key
// (`<host>/<job>/<id>/<file>`), so a signed file moved elsewhere no longer verifies.
// Readers accept the host's own key and the config's `trusted_keys` (public keys only:
// a fresh host restores without any private key). docs/design.md "Signed manifests".
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';

export const SIGNATURE_FORMAT = 'snapagent.sig/1';
export const SIG_SUFFIX = '.sig';
const DOMAIN = 'snapagent-signature/1';
const SSH_TYPE = 'ssh-ed25519';

export interface PublicKey {
  key: KeyObject;
  /** OpenSSH's fingerprint of the key ("SHA256:…"), as `ssh-keygen -l` prints it. */
  id: string;
  /** The key as one line, "ssh-ed25519 AAAA…": what `trusted_keys` takes. */
  line: string;
}

export interface HostKey extends PublicKey {
  privateKey: KeyObject;
  file: string;
}

/** What readers accept: key id → key. */
export type Keyring = Map<string, PublicKey>;

export type SignatureState =
  | { state: 'signed'; key_id: string }
  | { state: 'unsigned' }
  | { state: 'bad'; key_id?: string; reason: string };

// The raw 32 bytes of an Ed25519 public key.
function rawOf(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

function sshBlob(raw: Buffer): Buffer {
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0].map((_, i) => (b.length >>> (24 - 8 * i)) & 0xff)), b]);
  return Buffer.concat([str(Buffer.from(SSH_TYPE)), str(raw)]);
}

function describeKey(key: KeyObject): PublicKey {
  const blob = sshBlob(rawOf(key));
  const id = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  return { key, id, line: `${SSH_TYPE} ${blob.toString('base64')}` };
}

function fromRaw(raw: Buffer): KeyObject {
  if (raw.length !== 32) throw new Error(`an Ed25519 public key has 32 bytes, this one ${raw.length}`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

/** Parses a public key: "ssh-ed25519 AAAA… [comment]" (what `snapagent key` prints), its
 * 32 raw bytes in base64, or a PEM "PUBLIC KEY". Throws saying what was expected. */
export function parsePublicKey(text: string): PublicKey {
  const t = text.trim();
  if (t.startsWith('-----BEGIN')) {
    const key = createPublicKey(t);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a PEM ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
    return describeKey(key);
  }
  const ssh = /^ssh-ed25519\s+([A-Za-z0-9+/]+={0,2})(\s.*)?$/.exec(t);
  if (ssh) {
    const blob = Buffer.from(ssh[1]!, 'base64');
    const typeLen = blob.readUInt32BE(0);
    if (blob.subarray(4, 4 + typeLen).toString() !== SSH_TYPE || blob.readUInt32BE(4 + typeLen) !== 32 || blob.length !== 4 + typeLen + 4 + 32) {
      throw new Error('the ssh-ed25519 key blob is malformed');
    }
    return describeKey(fromRaw(blob.subarray(blob.length - 32)));
  }
  if (/^[A-Za-z0-9+/]{43}=$/.test(t)) return describeKey(fromRaw(Buffer.from(t, 'base64')));
  throw new Error('not an Ed25519 public key');
}

/** What a trusted_keys entry must look like (the config schema's message). */
export const PUBLIC_KEY_EXPECTED = 'an Ed25519 public key: "ssh-ed25519 AAAA…" as `snapagent key` prints it, its 32 bytes in base64, or a PEM "PUBLIC KEY"';

export function isPublicKey(text: string): boolean {
  try {
    parsePublicKey(text);
    return true;
  } catch {
    return false;
  }
}

export function hostKeyFile(stateDir: string): string {
  return path.join(stateDir, 'keys', 'host-ed25519.pem');
}

const loaded = new Map<string, Promise<HostKey>>();

/** The host's signing key, made on first use (PKCS#8 PEM, 0600, in a 0700 directory).
 * Two processes making it at once agree on one: the file appears whole, by link(). */
export function hostKey(stateDir: string): Promise<HostKey> {
  const file = hostKeyFile(stateDir);
  let p = loaded.get(file);
  if (!p) {
    p = loadOrCreate(file);
    p.catch(() => loaded.delete(file));
    loaded.set(file, p);
  }
  return p;
}

async function loadOrCreate(file: string): Promise<HostKey> {
  const existing = await readKeyFile(file);
  if (existing) return existing;
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const key = await readKeyFile(file);
  if (!key) throw new Error(`${file}: the signing key vanished right after it was made`);
  return key;
}

async function readKeyFile(file: string): Promise<HostKey | undefined> {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${file}: cannot read the host's signing key (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    // never the file's content: it is a private key
    throw new Error(`${file}: not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${file}: not an Ed25519 key`);
  return { ...describeKey(createPublicKey(privateKey)), privateKey, file };
}

/** The host's public key if it has one already (readers never make a key). */
export async function existingHostKey(stateDir: string): Promise<PublicKey | undefined> {
  const k = await existingSigner(stateDir);
  return k && { key: k.key, id: k.id, line: k.line };
}

/** The host's signing key if it has one already (for the catalog index readers rewrite). */
export async function existingSigner(stateDir: string): Promise<HostKey | undefined> {
  return readKeyFile(hostKeyFile(stateDir)).catch(() => undefined);
}

/** The keys readers accept: the config's trusted_keys and this host's own key. */
export function makeKeyring(trusted: string[], own?: PublicKey): Keyring {
  const ring: Keyring = new Map();
  for (const t of trusted) {
    const k = parsePublicKey(t);
    ring.set(k.id, k);
  }
  if (own) ring.set(own.id, own);
  return ring;
}

// Domain-separated: the signature is over this tag, the file's key and its exact bytes.
function message(key: string, bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${DOMAIN}\0${key}\0`), bytes]);
}

/** The content of `<key>.sig` for `bytes` stored under `key`. */
export function signatureFile(host: HostKey, key: string, bytes: Buffer): Buffer {
  const doc = {
    format: SIGNATURE_FORMAT,
    alg: 'ed25519',
    key_id: host.id,
    signed: key,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    signature: sign(null, message(key, bytes), host.privateKey).toString('base64'),
  };
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n');
}

/** Checks the signature file `sig` (undefined: there is none) of `bytes` stored under `key`. */
export function checkSignature(ring: Keyring, key: string, bytes: Buffer, sig: Buffer | undefined): SignatureState {
  if (sig === undefined) return { state: 'unsigned' };
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(sig.toString('utf8')) as Record<string, unknown>;
  } catch {
    return { state: 'bad', reason: `${key}${SIG_SUFFIX} is not a signature file` };
  }
  if (!doc || doc.format !== SIGNATURE_FORMAT || doc.alg !== 'ed25519' || typeof doc.key_id !== 'string' || typeof doc.signature !== 'string') {
    return { state: 'bad', reason: `${key}${SIG_SUFFIX} is not a ${SIGNATURE_FORMAT} Ed25519 signature` };
  }
  const keyId = doc.key_id;
  const pub = ring.get(keyId);
  if (!pub) return { state: 'bad', key_id: keyId, reason: `signed by key ${keyId}, which is neither this host's key nor in trusted_keys` };
  if (doc.signed !== key) return { state: 'bad', key_id: keyId, reason: `the signature is for ${String(doc.signed)}, not ${key}` };
  const ok = verify(null, message(key, bytes), pub.key, Buffer.from(doc.signature, 'base64'));
  if (!ok) return { state: 'bad', key_id: keyId, reason: `the signature by ${keyId} does not match the file: it was changed after it was signed` };
  return { state: 'signed', key_id: keyId };
}
