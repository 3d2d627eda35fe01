// Incremental chains (docs/design.md "Incremental backups"). An incremental backup's
// manifest lists in depends_on every earlier backup of the same host and job whose data
// its restore reads, oldest first (the transitive closure, so a reader never recurses).
// A chain is usable only when every piece is committed, trusted and consistent on the
// same target; otherwise nothing is restored from it (exit 3, before live data is touched).
import { IntegrityError } from '../errors.ts';
import { kindOf, untrusted, type Listed } from './manifest.ts';

/** The backups `b` depends on, on b's own target, oldest first (its depends_on order).
 * Throws IntegrityError naming the first piece that is missing, untrusted or
 * inconsistent. `backups`: the catalog of b's job on b's target (any extra is ignored). */
export function chainOf(b: Listed, backups: readonly Listed[], insecureUnsigned = false): Listed[] {
  const m = b.manifest;
  const deps = m.depends_on ?? [];
  if (deps.length === 0) return [];
  const name = `backup ${m.job}/${m.id} on target ${b.target.name}`;
  const byId = new Map(backups.filter((x) => x.target === b.target && x.dir.split('/').slice(0, 2).join('/') === b.dir.split('/').slice(0, 2).join('/')).map((x) => [x.manifest.id, x]));
  const out: Listed[] = [];
  const seen = new Set<string>();
  for (const id of deps) {
    const d = byId.get(id);
    if (!d) throw broken(`${name} is an incremental that needs backup ${id}, which is not on the target (deleted, or its manifest is invalid)`);
    const why = untrusted(d, insecureUnsigned);
    if (why) throw broken(`${name} needs ${why}`);
    // what the piece needs in turn must come before it in b's list: a closed, ordered chain
    const missing = (d.manifest.depends_on ?? []).filter((x) => !seen.has(x));
    if (missing.length) throw broken(`${name}: its depends_on is not a closed chain (${id} needs ${missing.join(', ')}, not listed before it)`);
    if (kindOf(d.manifest) === 'incremental' && !d.manifest.depends_on?.length) throw broken(`${name}: piece ${id} is an incremental without a base`);
    seen.add(id);
    out.push(d);
  }
  if (kindOf(out[0]!.manifest) !== 'full') throw broken(`${name}: its chain does not start with a full backup (${out[0]!.manifest.id})`);
  return out;
}

const broken = (message: string) =>
  new IntegrityError(message, 'restore another backup (`snapagent list` shows each one\'s kind and what it depends on), or copy the missing backup back onto the target');

/** For each backup needed by another one in `keep`: the ids that need it (what
 * retention must keep beyond its policy). */
export function neededBases(keep: readonly Listed[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const b of keep) {
    for (const dep of b.manifest.depends_on ?? []) out.set(dep, [...(out.get(dep) ?? []), b.manifest.id]);
  }
  return out;
}
