// snapagent list: committed backups, read from the targets alone (no local state).
import { IntegrityError } from '../errors.ts';
import { IMPLAUSIBLE, readCatalog, type Catalog, type Listed } from '../catalog/manifest.ts';
import { catalogTrust } from '../catalog/trust.ts';
import { humanBytes } from '../pipeline/progress.ts';
import { selectTargets } from '../targets/index.ts';
import type { Config } from '../config/load.ts';
import { openSession, output, table, type GlobalOptions } from './common.ts';

export interface ListOptions extends GlobalOptions {
  job?: string;
  target?: string;
  host?: string;
}

/** Committed backups of `host` (optionally one job) on the chosen targets, oldest first. */
export async function listBackups(config: Config, o: { job?: string; target?: string; host?: string }): Promise<Listed[]> {
  return (await listCatalog(config, o)).backups;
}

/** listBackups, with the manifests that were refused (unreadable, not ours, implausible). */
export async function listCatalog(config: Config, o: { job?: string; target?: string; host?: string }): Promise<Pick<Catalog, 'backups' | 'invalid'>> {
  const host = o.host ?? config.host;
  const out: Pick<Catalog, 'backups' | 'invalid'> = { backups: [], invalid: [] };
  const trust = await catalogTrust(config);
  for (const t of selectTargets(config, o.target)) {
    const cat = await readCatalog(t, o.job ? `${host}/${o.job}` : host, trust);
    out.backups.push(...cat.backups);
    out.invalid.push(...cat.invalid.map((i) => ({ ...i, key: `${t.name}:${i.key}` })));
  }
  return out;
}

export function describe(l: Listed) {
  const m = l.manifest;
  const a = m.artifacts[0]!;
  return {
    target: l.target.name,
    host: m.host,
    job: m.job,
    id: m.id,
    plugin: m.plugin,
    tier: m.tier,
    finished_at: m.finished_at,
    size: m.artifacts.reduce((n, x) => n + x.size, 0),
    raw_size: m.artifacts.reduce((n, x) => n + x.raw_size, 0),
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
  const backups = await listBackups(s.config, opts);
  output(s.json, { host: opts.host ?? s.config.host, backups: backups.map(describe) }, () =>
    backups.length === 0
      ? `no committed backups of host ${opts.host ?? s.config.host}${opts.job ? `, job ${opts.job}` : ''} on ${opts.target ?? 'any target'}`
      : table([
          ['TARGET', 'JOB', 'ID', 'PLUGIN', 'SIZE', 'RAW', 'FINISHED', 'SIGNATURE'],
          ...backups.map(describe).map((b) => [b.target, b.job, b.id, b.plugin, humanBytes(b.size), humanBytes(b.raw_size), b.finished_at, b.signature.state === 'bad' ? `bad: ${b.signature.reason}` : b.signature.state]),
        ]),
  );
}

/** A refused manifest that `id` (of `job`, if given) names, as an exit-3 error: the
 * operator asked for it by name, so "no such backup" would hide what happened. */
export function refusedByName(invalid: Catalog['invalid'], id: string | undefined, job?: string): IntegrityError | undefined {
  if (!id || id === 'latest' || id === 'all') return undefined;
  // only snapagent manifests that failed the sanity checks: another file is "no such backup"
  const hit = invalid.find((i) => {
    const [, j, bid] = i.key.split(':').slice(1).join(':').split('/');
    return bid === id && (job === undefined || j === job) && i.reason.startsWith(IMPLAUSIBLE);
  });
  return hit && new IntegrityError(`backup ${hit.key.replace(/\/manifest\.json$/, '')} is refused: ${hit.reason}`, 'its manifest is not one this agent would have written; see the warnings above, and pick another backup (`snapagent list`)');
}
