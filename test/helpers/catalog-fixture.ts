// Committed backups written straight through the agent's own manifest and signing
// functions (buildManifest, writeSigned), without running a backup: for tests and benches
// about what readers do with many backups. Each has a real (tiny, zstd) artifact file and
// a manifest signed by the given key, exactly as a backup would store them.
import { createHash } from 'node:crypto';
import { zstdCompressSync } from 'node:zlib';
import { backupDir, backupId, buildManifest, CHECK_FILES, CHECK_FORMAT, MANIFEST_FILE, writeSigned, type CheckKind, type Manifest } from '../../agent/catalog/manifest.ts';
import { SIG_SUFFIX, signatureFile, type HostKey } from '../../agent/catalog/signing.ts';
import type { Target } from '../../agent/targets/target.ts';

export interface FixtureBackup {
  host: string;
  job: string;
  at: Date;
  tier?: string;
  /** Incremental: the ids it depends on, oldest first. */
  dependsOn?: string[];
}

/** The files of one backup (artifact, manifest.json.sig, manifest.json), by key. */
export function fixtureFiles(b: FixtureBackup, signer: HostKey): { manifest: Manifest; files: Map<string, Buffer> } {
  const tier = b.tier ?? 'critical';
  const id = backupId(b.at, tier);
  const raw = Buffer.from(`data of ${b.job} at ${id}\n`.repeat(20));
  const stored = zstdCompressSync(raw);
  const dir = backupDir(b.host, b.job, id);
  const manifest = buildManifest({
    id,
    host: b.host,
    job: { name: b.job, plugin: 'volume', tier, options: { stop: false } },
    started: b.at,
    finished: new Date(b.at.getTime() + 1500),
    source: { volume: `${b.job}-data`, driver: 'local', labels: {} },
    stats: { files: 3, dirs: 1, symlinks: 0, other: 0, bytes: raw.length, stream_bytes: raw.length },
    artifact: { name: 'volume.tar.zst', format: 'tar', size: stored.length, sha256: createHash('sha256').update(stored).digest('hex'), rawSize: raw.length },
    index: { name: 'index.snar.zst', format: 'snar', size: stored.length, sha256: createHash('sha256').update(stored).digest('hex'), rawSize: raw.length },
    dependsOn: b.dependsOn,
    timings: { prepare_seconds: 0.1, stream_seconds: 1.2, finish_seconds: 0.1 },
  });
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  const files = new Map<string, Buffer>([
    [`${dir}/volume.tar.zst`, stored],
    [`${dir}/index.snar.zst`, stored],
  ]);
  return { manifest, files: new Map([...files, ...signedFiles(`${dir}/${MANIFEST_FILE}`, bytes, signer)]) };
}

/** `key` and its signature file, as writeSigned stores them. */
export function signedFiles(key: string, bytes: Buffer, signer: HostKey): Map<string, Buffer> {
  return new Map([[`${key}${SIG_SUFFIX}`, signatureFile(signer, key, bytes)], [key, bytes]]);
}

/** Writes one backup to `target` (artifacts first, the signed manifest last). */
export async function writeFixtureBackup(target: Target, b: FixtureBackup, signer: HostKey): Promise<Manifest> {
  const { manifest, files } = fixtureFiles(b, signer);
  const dir = backupDir(b.host, b.job, manifest.id);
  for (const [key, data] of files) if (!key.startsWith(`${dir}/${MANIFEST_FILE}`)) await target.writeFile(key, data);
  await writeSigned(target, `${dir}/${MANIFEST_FILE}`, files.get(`${dir}/${MANIFEST_FILE}`)!, signer);
  return manifest;
}

/** Writes a signed check record next to a backup's manifest, as verify and drills do. */
export async function writeFixtureCheck(target: Target, m: Manifest, kind: CheckKind, status: 'ok' | 'failed', at = new Date(), signer?: HostKey): Promise<void> {
  const rec = { format: CHECK_FORMAT, kind, id: m.id, at: at.toISOString(), status, duration_seconds: 1.5, errors: status === 'failed' ? ['sha256 mismatch'] : [], details: {} };
  const key = `${backupDir(m.host, m.job, m.id)}/${CHECK_FILES[kind]}`;
  const bytes = Buffer.from(JSON.stringify(rec, null, 2) + '\n');
  if (signer) await writeSigned(target, key, bytes, signer);
  else await target.writeFile(key, bytes);
}
