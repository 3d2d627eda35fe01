// snapagent verify: re-reads stored backups and checks them against their manifests
// (verify.json); with --drill, restores them into throwaway copies and compares
// (drill.json), through agent/catalog/check.ts. Default: the latest backup of every job on
// every target.
import { humanDuration } from '../pipeline/progress.ts';
import { checkBackups, type CheckRequest } from '../catalog/check.ts';
import { ExitCode, openSession, output, setExit, table, type GlobalOptions } from './common.ts';

export interface VerifyOptions extends GlobalOptions, CheckRequest {}

export async function verifyCommand(opts: VerifyOptions): Promise<void> {
  const s = openSession(opts);
  const { job, id, tier, target, host, drill, image, insecureUnsigned } = opts;
  const { ok, results } = await checkBackups(s, { job, id, tier, target, host, drill, image, insecureUnsigned });
  output(s.json, { ok, results }, () =>
    table([
      ['TARGET', 'JOB', 'ID', 'CHECK', 'STATUS', 'TIME', 'RTO', 'RPO', 'DETAIL'],
      ...results.map((r) => [r.target, r.job, r.id, r.kind, r.status, humanDuration(r.duration_seconds), r.rto_seconds !== undefined ? `${r.rto_seconds.toFixed(1)}s` : '-', r.rpo_seconds !== undefined ? humanDuration(r.rpo_seconds) : '-', r.errors.join('; ') || (r.recorded ? 'recorded' : '')]),
    ]),
  );
  if (!ok) setExit(Math.max(ExitCode.failed, ...results.map((r) => r.exitCode)));
}
