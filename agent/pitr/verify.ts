// `snapagent verify` of a point-in-time job's oplog slices on one target: every
// committed slice is re-read and checked as a backup's artifacts are (catalog/verify.ts):
// its signed slice.json, the size and sha256 of its stored bytes, and, when they can be
// opened (not encrypted, or the age identity is at hand), age and zstd down to the raw
// log. A slice that fails would stop every restore to a time past it, so verify says so
// now rather than the restore later. The result is reported, not recorded: slices have
// no verify.json (a failed one is found again by the next verify).
import type { Config } from '../config/load.ts';
import type { Keyring } from '../catalog/signing.ts';
import { errorMessage, ExitCode } from '../errors.ts';
import { log, redact } from '../log.ts';
import type { Target } from '../targets/target.ts';
import { checkArtifact, round, type CheckResult } from '../catalog/verify.ts';
import { readSlices, showPos, sliceDataKey } from './slices.ts';

export async function verifySlices(config: Config, target: Target, host: string, job: string, keys: Keyring, signal: AbortSignal, insecureUnsigned = false): Promise<CheckResult> {
  const started = Date.now();
  const errors: string[] = [];
  let integrity = false;
  let bytes = 0;
  let entries = 0;
  let checked = 0;
  let deep = 0;
  const cat = await readSlices(target, host, job, keys);
  for (const bad of cat.invalid) {
    integrity = true;
    errors.push(`${bad.key}: ${bad.reason}`);
  }
  for (const l of cat.slices) {
    if (signal.aborted) break;
    const key = sliceDataKey(l);
    const s = l.signature;
    if (s.state === 'bad' || (s.state === 'unsigned' && !insecureUnsigned)) {
      integrity = true;
      errors.push(`slice ${l.slice.id}: ${s.state === 'bad' ? `bad signature: ${s.reason}` : 'its slice.json is not signed'}`);
      continue;
    }
    const a = l.slice.artifact;
    const r = await checkArtifact(config, target, key, a, `slice ${job}/${l.slice.id}`, signal);
    if ('checked' in r) {
      checked++;
      if (r.checked === 'sha256+decode') deep++;
      bytes += a.size;
      entries += l.slice.entries;
    } else {
      if (r.damaged) integrity = true;
      errors.push(`slice ${l.slice.id}: ${errorMessage(r.error)}`);
    }
  }
  const first = cat.slices[0]?.slice;
  const last = cat.slices.at(-1)?.slice;
  const details: Record<string, unknown> = {
    slices: cat.slices.length,
    checked,
    decoded: deep,
    entries,
    bytes,
    ...(first && last ? { from: showPos(first.after), to: showPos(last.last) } : {}),
    ...(cat.incomplete.length ? { incomplete: cat.incomplete.length } : {}),
  };
  const status = errors.length ? 'failed' : 'ok';
  const duration = round((Date.now() - started) / 1000);
  log[errors.length ? 'error' : 'info']({ job, target: target.name, seconds: duration, slices: cat.slices.length }, `slices ${status}${errors.length ? `: ${errors.join('; ')}` : ''}`);
  return {
    target: target.name,
    job,
    id: first && last ? `${first.id}..${last.id}` : '-',
    kind: 'slices',
    status,
    duration_seconds: duration,
    errors: errors.map(redact),
    details,
    recorded: false,
    exitCode: !errors.length ? ExitCode.ok : integrity ? ExitCode.integrity : ExitCode.failed,
  };
}
