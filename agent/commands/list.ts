// snapagent list: committed backups, read from the targets alone (no local state).
import { dataArtifact, kindOf, representedSize, type Listed } from '../catalog/manifest.ts';
import { listBackups } from '../catalog/list.ts';
import { humanBytes } from '../pipeline/progress.ts';
import { openSession, output, table, type GlobalOptions } from './common.ts';

export interface ListOptions extends GlobalOptions {
  job?: string;
  target?: string;
  host?: string;
}

export function describe(l: Listed) {
  const m = l.manifest;
  const a = dataArtifact(m);
  return {
    target: l.target.name,
    host: m.host,
    job: m.job,
    id: m.id,
    plugin: m.plugin,
    tier: m.tier,
    finished_at: m.finished_at,
    /** full, or incremental (stores what changed since depends_on's last entry). */
    kind: kindOf(m),
    ...(m.depends_on?.length ? { depends_on: m.depends_on } : {}),
    /** Stored bytes of this backup's files (compressed, maybe encrypted). */
    size: m.artifacts.reduce((n, x) => n + x.size, 0),
    raw_size: m.artifacts.reduce((n, x) => n + x.raw_size, 0),
    /** Raw bytes of the whole state the backup represents (for a full: its raw data). */
    represented_size: representedSize(m),
    artifacts: m.artifacts.map((x) => x.name),
    encryption: a.encryption,
    source: m.source,
    stats: m.stats,
    duration_seconds: m.duration_seconds,
    timings: m.timings,
    /** signed (by this host or a key in trusted_keys), unsigned, or bad (and why). */
    signature: l.signature,
    /** The latest verify / drill results recorded next to the manifest. */
    checks: Object.fromEntries(Object.entries(l.checks).map(([k, c]) => [k, { status: c.status, at: c.at, ...(c.rto_seconds !== undefined ? { rto_seconds: c.rto_seconds } : {}) }])),
  };
}

export async function listCommand(opts: ListOptions): Promise<void> {
  const s = openSession(opts);
  const backups = await listBackups(s, opts);
  output(s.json, { host: opts.host ?? s.config.host, backups: backups.map(describe) }, () =>
    backups.length === 0
      ? `no committed backups of host ${opts.host ?? s.config.host}${opts.job ? `, job ${opts.job}` : ''} on ${opts.target ?? 'any target'}`
      : table([
          ['TARGET', 'JOB', 'ID', 'PLUGIN', 'KIND', 'SIZE', 'DATA', 'FINISHED', 'SIGNATURE'],
          ...backups.map(describe).map((b) => [
            b.target,
            b.job,
            b.id,
            b.plugin,
            b.depends_on ? `incr. on ${b.depends_on.at(-1)}` : b.kind,
            humanBytes(b.size),
            humanBytes(b.represented_size),
            b.finished_at,
            b.signature.state === 'bad' ? `bad: ${b.signature.reason}` : b.signature.state,
          ]),
        ]),
  );
}
