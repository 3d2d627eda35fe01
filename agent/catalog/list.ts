// The committed backups of a host, read from the targets alone (no local state): what
// `list`, `verify`, `restore` and the drills start from.
import type { ConfigContext } from '../context.ts';
import { IntegrityError } from '../errors.ts';
import { selectTargets } from '../targets/index.ts';
import { IMPLAUSIBLE, type Catalog, type Listed } from './manifest.ts';
import { readCatalog } from './catalog.ts';
import { catalogTrust } from './trust.ts';

/** Which backups: of `host` (default: this host), optionally one job, on one target
 * (default: every configured target). */
export interface CatalogSelection {
  job?: string;
  target?: string;
  host?: string;
}

/** Committed backups of the selection, oldest first. */
export async function listBackups(ctx: ConfigContext, sel: CatalogSelection): Promise<Listed[]> {
  return (await listCatalog(ctx, sel)).backups;
}

/** listBackups, with the manifests that were refused (unreadable, not ours, implausible). */
export async function listCatalog(ctx: ConfigContext, sel: CatalogSelection): Promise<Pick<Catalog, 'backups' | 'invalid'>> {
  const host = sel.host ?? ctx.config.host;
  const out: Pick<Catalog, 'backups' | 'invalid'> = { backups: [], invalid: [] };
  const trust = await catalogTrust(ctx);
  for (const t of selectTargets(ctx.config, sel.target)) {
    const cat = await readCatalog(t, sel.job ? `${host}/${sel.job}` : host, trust);
    out.backups.push(...cat.backups);
    out.invalid.push(...cat.invalid.map((i) => ({ ...i, key: `${t.name}:${i.key}` })));
  }
  return out;
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
