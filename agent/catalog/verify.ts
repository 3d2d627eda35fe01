// `snapagent verify`: re-reads every stored byte of a backup and checks its size and
// sha256 against the manifest; when the bytes can be opened (not encrypted, or the age
// identity is at hand) age and zstd also check them (authentication tags, frame
// checksums) down to the raw stream. The result is written next to the manifest
// (verify.json, format snapagent.check/1): retention keeps every backup of a job whose
// newest backup failed, and metrics report it.
import { open } from 'node:fs/promises';
import type { Config } from '../config/load.ts';
import { errorMessage, ExitCode, IntegrityError, SnapError, UsageError } from '../errors.ts';
import { log, redact, redactedJson } from '../log.ts';
import { chainOf } from './chain.ts';
import { type Artifact, CHECK_FILES, CHECK_FORMAT, checkRecordSchema, newer, untrusted, UNTRUSTED_HINT, writeSigned, type CheckKind, type CheckRecord, type Listed } from './manifest.ts';
import { hostKey } from './signing.ts';
import { checkIdentity, identityPath, requireIdentity } from '../pipeline/age.ts';
import { StoredInput } from '../pipeline/stored-input.ts';
import type { Target } from '../targets/target.ts';

/** One check of one backup on one target, as commands report it. */
export interface CheckResult {
  target: string;
  job: string;
  id: string;
  /** "slices": a point-in-time job's oplog slices (agent/pitr/verify.ts), never recorded. */
  kind: CheckKind | 'slices';
  status: 'ok' | 'failed';
  duration_seconds: number;
  rto_seconds?: number;
  rpo_seconds?: number;
  errors: string[];
  details: Record<string, unknown>;
  /** Whether the record was written next to the manifest. */
  recorded: boolean;
  /** 0, or the exit code this result calls for (3: integrity). */
  exitCode: number;
}

/** Which backups to check: `id` "latest" (default: the newest of each job on each
 * target), "all", or one id (of every job that has it). */
export function chooseBackups(backups: Listed[], id = 'latest', tier?: string): Listed[] {
  const mine = tier ? backups.filter((b) => b.manifest.tier === tier) : backups;
  if (id === 'all') return mine;
  if (id === 'latest') return latestPer(mine, (b) => `${b.target.name}\0${b.manifest.job}`);
  const hit = mine.filter((b) => b.manifest.id === id);
  if (hit.length === 0) throw new UsageError(`no committed backup has id "${id}"`, 'see `snapagent list` for the ids, or use --id latest / --id all');
  return hit;
}

/** The newest backup for each key, in key order. */
export function latestPer(backups: Listed[], key: (b: Listed) => string): Listed[] {
  const best = new Map<string, Listed>();
  for (const b of backups) {
    const cur = best.get(key(b));
    if (!cur || newer(cur, b) === b) best.set(key(b), b);
  }
  return [...best].sort(([a], [b]) => a.localeCompare(b)).map(([, l]) => l);
}

/** Refuses (exit 3, nothing recorded) a backup whose manifest is not signed by a trusted
 * key; with `insecureUnsigned` an unsigned one is accepted with a warning naming it. */
export function trustGate(l: Listed, kind: CheckKind, insecureUnsigned: boolean): CheckResult | undefined {
  const why = untrusted(l, insecureUnsigned);
  if (why) return notRun(l, kind, new Date(), new IntegrityError(`${kind} refused: ${why}`, UNTRUSTED_HINT));
  if (l.signature.state === 'unsigned') log.warn({ job: l.manifest.job, id: l.manifest.id, target: l.target.name }, `--insecure-unsigned: trusting the unsigned manifest of backup ${l.manifest.job}/${l.manifest.id}`);
  return undefined;
}

/** `catalog`: what the backup's target holds of its job (for an incremental's chain). */
export async function verifyBackup(config: Config, l: Listed, signal: AbortSignal, insecureUnsigned = false, catalog: readonly Listed[] = []): Promise<CheckResult> {
  const refused = trustGate(l, 'verify', insecureUnsigned);
  if (refused) return refused;
  const started = new Date();
  const details: Record<string, unknown> = {};
  const errors: string[] = [];
  const artifacts: Record<string, unknown>[] = [];
  let integrity = false;
  try {
    // An incremental is only as good as its chain: every piece's artifacts are checked too.
    const chain = l.manifest.depends_on?.length ? chainOf(l, catalog, insecureUnsigned) : [];
    if (chain.length) details.chain = chain.map((c) => c.manifest.id);
    for (const piece of [...chain, l]) {
    const stored = new Map((await piece.target.list(piece.dir)).map((f) => [f.key, f.size]));
    for (const a of piece.manifest.artifacts) {
      const key = `${piece.dir}/${a.name}`;
      const r = stored.has(key)
        ? await checkArtifact(config, piece.target, key, a, `backup ${piece.manifest.job}/${piece.manifest.id}`, signal)
        : { error: new IntegrityError(`${key}: missing from the target`), damaged: true };
      if ('checked' in r) {
        artifacts.push({ ...(piece !== l ? { backup: piece.manifest.id } : {}), name: a.name, size: a.size, sha256: a.sha256, checked: r.checked });
      } else {
        if (r.damaged) integrity = true;
        errors.push(errorMessage(r.error));
        artifacts.push({ name: a.name, size: a.size, sha256: a.sha256, error: errorMessage(r.error) });
      }
    }
    }
  } catch (err) {
    if (err instanceof IntegrityError) integrity = true;
    errors.push(errorMessage(err));
  }
  const record = checkRecord('verify', l, started, errors, { target: l.target.name, ...details, artifacts });
  return finish(config, l, record, integrity);
}

/** Re-reads one stored artifact (`key`, of `what`: "backup job/id"): its size and
 * sha256, and age and zstd down to the raw bytes when they can be opened (not encrypted,
 * or the identity is at hand; decoded bytes go to /dev/null, zstd writes there itself).
 * On failure, `damaged` says whether the stored bytes are at fault: they do not match, or
 * they match the manifest but do not decode (written damaged), as opposed to a missing
 * tool or key. */
export async function checkArtifact(config: Config, target: Target, key: string, a: Artifact, what: string, signal: AbortSignal): Promise<{ checked: 'sha256+decode' | 'sha256' } | { error: unknown; damaged: boolean }> {
  let input: StoredInput | undefined;
  try {
    const identity = a.encryption === 'age' ? await usableIdentity(config, target, key, what, signal) : undefined;
    input = new StoredInput(target, key, a, signal, identity);
    const deep = a.encryption === 'none' || identity !== undefined;
    if (deep) await input.toHandle(await open('/dev/null', 'w'));
    else await input.verify();
    return { checked: deep ? 'sha256+decode' : 'sha256' };
  } catch (err) {
    return { error: err, damaged: err instanceof IntegrityError || (input?.digestOk === true && !/is not installed/.test(errorMessage(err))) };
  }
}

/** An identity that opens the stored artifact `key` (of `what`: "backup job/id"), or
 * undefined (the check stays at the sha256 of the stored bytes, which needs no key):
 * verify must not fail a good backup because this host holds another key. */
export async function usableIdentity(config: Config, target: Target, key: string, what: string, signal: AbortSignal): Promise<string | undefined> {
  if (!identityPath(config)) return undefined;
  try {
    const identity = await requireIdentity(config, what);
    await checkIdentity(target, key, identity, signal);
    return identity;
  } catch (err) {
    if (err instanceof UsageError) {
      log.warn({ target: target.name, key }, `checking the stored bytes only of ${what}: ${errorMessage(err)}`);
      return undefined;
    }
    throw err;
  }
}

export function checkRecord(kind: CheckKind, l: Listed, started: Date, errors: string[], details: Record<string, unknown>, rto?: number): CheckRecord {
  return {
    format: CHECK_FORMAT,
    kind,
    id: l.manifest.id,
    at: started.toISOString(),
    status: errors.length ? 'failed' : 'ok',
    duration_seconds: round((Date.now() - started.getTime()) / 1000),
    ...(rto !== undefined ? { rto_seconds: round(rto) } : {}),
    errors,
    details,
  };
}

export const round = (s: number) => Math.round(s * 1000) / 1000;

/** Writes the record next to the manifest (secrets redacted), signed, and reports it. */
export async function finish(config: Config, l: Listed, record: CheckRecord, integrity: boolean): Promise<CheckResult> {
  const scrub = (v: unknown) => JSON.parse(JSON.stringify(v), (_k, x: unknown) => (typeof x === 'string' ? redact(x) : x)) as unknown;
  const safe = checkRecordSchema.parse({ ...record, errors: scrub(record.errors), details: scrub(record.details) });
  let recorded = false;
  try {
    await writeSigned(l.target, `${l.dir}/${CHECK_FILES[safe.kind]}`, Buffer.from(redactedJson(safe)), await hostKey(config.stateDir));
    recorded = true;
  } catch (err) {
    safe.errors.push(`could not write ${CHECK_FILES[safe.kind]}: ${errorMessage(err)}`);
  }
  const failed = safe.status === 'failed' || !recorded;
  const level = failed ? 'error' : 'info';
  log[level]({ job: l.manifest.job, id: l.manifest.id, target: l.target.name, seconds: safe.duration_seconds, rto: safe.rto_seconds, rpo: safe.rpo_seconds }, `${safe.kind} ${safe.status}${safe.errors.length ? `: ${safe.errors.join('; ')}` : ''}`);
  return {
    target: l.target.name,
    job: l.manifest.job,
    id: l.manifest.id,
    kind: safe.kind,
    status: safe.status,
    duration_seconds: safe.duration_seconds,
    ...(safe.rto_seconds !== undefined ? { rto_seconds: safe.rto_seconds } : {}),
    ...(safe.rpo_seconds !== undefined ? { rpo_seconds: safe.rpo_seconds } : {}),
    errors: safe.errors,
    details: safe.details,
    recorded,
    exitCode: !failed ? ExitCode.ok : integrity ? ExitCode.integrity : ExitCode.failed,
  };
}

/** A result for a check that could not run at all (nothing recorded: the backup itself
 * was not found wanting), e.g. no identity for an encrypted backup. */
export function notRun(l: Listed, kind: CheckKind, started: Date, err: unknown): CheckResult {
  const message = redact(errorMessage(err));
  log.error({ job: l.manifest.job, id: l.manifest.id, target: l.target.name, hint: err instanceof SnapError ? err.hint : undefined }, `${kind} not run: ${message}`);
  return {
    target: l.target.name,
    job: l.manifest.job,
    id: l.manifest.id,
    kind,
    status: 'failed',
    duration_seconds: round((Date.now() - started.getTime()) / 1000),
    errors: [message],
    details: err instanceof SnapError && err.hint ? { hint: redact(err.hint) } : {},
    recorded: false,
    exitCode: err instanceof SnapError ? err.exitCode : ExitCode.failed,
  };
}
