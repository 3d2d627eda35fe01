// Names the agent reads from a datastore (databases, tables, keyspaces, collections,
// indices, directories listed in a container) come from a party it does not trust: the
// container's root controls the server and its files. Before such a name reaches a tool's
// command line, a script's arguments, a path or one of the agent's line-based exchanges,
// it passes checkName. The shared rule refuses what no tool can take safely; each
// datastore adds its own stricter rule (what the server itself allows), so a name the
// server could never have made is refused too.
//
// A refused name fails the backup or restore with a RefusedError naming the container,
// the kind and the name: never a silent skip, which would leave data out of a backup
// that says it is complete.
import { RefusedError } from '../errors.ts';

/** A datastore's own naming rule: undefined when `name` is allowed, else why not. */
export type NameRule = (name: string) => string | undefined;

// C0 controls, DEL and the C1 controls: a newline would forge lines of the agent's
// exchanges with its scripts and of dump markers; NUL ends a C string early.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why no tool could take `name` safely, or undefined. */
export function sharedRule(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.startsWith('-')) return 'it starts with "-", so a tool would read it as an option';
  if (CONTROL.test(name)) return 'it holds control characters';
  return undefined;
}

/** A rule from a pattern the whole name must match, described for the message. */
export function patternRule(pattern: RegExp, described: string): NameRule {
  return (name) => (pattern.test(name) ? undefined : `${described} only`);
}

/** A rule limiting the length in characters (as the server counts them: code points). */
export function maxLength(n: number, unit = 'characters'): NameRule {
  return (name) => ([...name].length > n ? `it is longer than ${n} ${unit}` : undefined);
}

export interface CheckOptions {
  /** The datastore's own rules, checked after the shared one. */
  rules?: NameRule[];
  /** What the operator can do, e.g. how to leave the name out of the job. */
  hint?: string;
}

/**
 * Returns `name` when it passes the shared rule and `opts.rules`; else throws a
 * RefusedError like: database "--host=x" in container db-1 is refused: it starts
 * with "-", so a tool would read it as an option.
 * `where` names the source: "container db-1", "the backup's manifest".
 */
export function checkName(kind: string, name: string, where: string, opts: CheckOptions = {}): string {
  for (const rule of [sharedRule, ...(opts.rules ?? [])]) {
    const why = rule(name);
    if (why !== undefined) {
      // JSON quoting shows control characters as escapes: the name cannot forge log lines.
      throw new RefusedError(`${kind} ${JSON.stringify(name)} in ${where} is refused: ${why}; nothing was backed up or changed`, opts.hint ?? 'rename it, or leave it out of the job');
    }
  }
  return name;
}

/** checkName for each of `names`; returns them. */
export function checkNames(kind: string, names: readonly string[], where: string, opts: CheckOptions = {}): string[] {
  for (const n of names) checkName(kind, n, where, opts);
  return [...names];
}

/** A Docker container or volume name as the engine allows it: what a plugin checks a name
 * it recorded for the repair of a killed run against (KilledWork) before it uses it. */
export const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;
