// Loads the YAML config (--config, else $SNAPAGENT_CONFIG, else the built-in default),
// validates it and resolves paths relative to the file. Every error names the file,
// the key and what was expected.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { scheduleError } from '../plan/schedule.ts';
import { credentialFlags, inlineRemoteCredentials } from './inline-credentials.ts';
import { defaultStateDir } from './state-dir.ts';
import { configSchema, DEFAULT_TIERS, type ParsedConfig, type TierConfig } from './schema.ts';

export interface Config extends Omit<ParsedConfig, 'host' | 'tiers' | 'state_dir'> {
  host: string;
  tiers: Record<string, TierConfig>;
  stateDir: string;
  /** Where the config came from: a file path or "built-in default". */
  source: string;
}

export const BUILTIN = 'built-in default';

export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const chosen = file ?? env.SNAPAGENT_CONFIG;
  if (!chosen) return finish(parseWith({}, BUILTIN), BUILTIN, process.cwd(), env);
  let text: string;
  try {
    text = readFileSync(chosen, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`${chosen}: cannot read the config file (${code ?? String(err)})`, 'check the --config path or $SNAPAGENT_CONFIG');
  }
  return finish(parseWith(parseYaml(text, chosen), chosen), chosen, path.dirname(path.resolve(chosen)), env);
}

/** Parses config text (used by tests and by loadConfig); `env` and `uid` choose the
 * default state dir. */
export function parseConfigText(text: string, source: string, baseDir = process.cwd(), env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): Config {
  return finish(parseWith(parseYaml(text, source), source), source, baseDir, env, uid);
}

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const at = e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : 'unknown position';
    throw new ConfigError(`${source}: invalid YAML at ${at}: ${e.message.split('\n')[0]}`);
  }
  const value = doc.toJS() as unknown;
  return value ?? {};
}

function parseWith(raw: unknown, source: string): ParsedConfig {
  // before the schema, whose messages on a malformed remote would not say why
  const targets = (raw as { targets?: unknown } | null)?.targets;
  if (Array.isArray(targets)) {
    targets.forEach((t: Record<string, unknown> | null, i) => {
      if (t?.type === 'rclone') refuseInlineCredentials(source, i, t);
    });
  }
  return parseSchema(configSchema, raw, source);
}

/** Validates `raw` against a schema; a ConfigError names `where`, each key and what was expected. */
export function parseSchema<S extends z.ZodType>(schema: S, raw: unknown, where: string): z.output<S> {
  const res = schema.safeParse(raw, { reportInput: true });
  if (!res.success) throw new ConfigError(formatIssues(where, res.error.issues));
  return res.data;
}

export function formatIssues(source: string, issues: z.core.$ZodIssue[]): string {
  const lines = issues.slice(0, 5).map((i) => `${source}: ${keyPath(i.path)}: ${describeIssue(i)}`);
  if (issues.length > 5) lines.push(`${source}: … and ${issues.length - 5} more problems`);
  return lines.join('\n');
}

export function keyPath(p: readonly PropertyKey[]): string {
  if (p.length === 0) return '(top level)';
  return p.map((k, n) => (typeof k === 'number' ? `[${k}]` : n === 0 ? String(k) : `.${String(k)}`)).join('');
}

function describeIssue(i: z.core.$ZodIssue): string {
  switch (i.code) {
    case 'unrecognized_keys':
      return `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_type':
      return `expected ${i.expected}${'input' in i ? `, got ${describeValue(i.input)}` : ''}`;
    case 'invalid_union':
      return 'expected one of the documented forms';
    default:
      return i.message;
  }
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing (the key is missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function finish(parsed: ParsedConfig, source: string, baseDir: string, env: NodeJS.ProcessEnv, uid = process.getuid?.()): Config {
  const tiers = resolveTiers(parsed.tiers, source);
  const targets = parsed.targets.map((t) => (t.type === 'local' ? { ...t, path: path.resolve(baseDir, t.path) } : t));
  const names = new Set<string>();
  targets.forEach((t, i) => {
    if (names.has(t.name)) throw new ConfigError(`${source}: targets[${i}].name: duplicate target name "${t.name}"`);
    names.add(t.name);
  });
  const jobNames = new Set<string>();
  parsed.jobs.forEach((j, i) => {
    if (jobNames.has(j.name)) throw new ConfigError(`${source}: jobs[${i}].name: duplicate job name "${j.name}"`);
    jobNames.add(j.name);
    if (!tiers[j.tier]) throw new ConfigError(`${source}: jobs[${i}].tier: unknown tier "${j.tier}", expected one of ${Object.keys(tiers).join(', ')}`);
    for (const t of j.targets ?? []) {
      if (!names.has(t)) throw new ConfigError(`${source}: jobs[${i}].targets: unknown target "${t}", expected one of ${[...names].join(', ')}`);
    }
  });
  const enc = parsed.encryption;
  const encryption = enc && {
    ...enc,
    age_recipients_file: enc.age_recipients_file && path.resolve(baseDir, enc.age_recipients_file),
    age_identity_file: enc.age_identity_file && path.resolve(baseDir, enc.age_identity_file),
  };
  if (!tiers[parsed.discovery.default_tier]) {
    throw new ConfigError(`${source}: discovery.default_tier: unknown tier "${parsed.discovery.default_tier}"`);
  }
  const stateDir = parsed.state_dir ? path.resolve(baseDir, parsed.state_dir) : defaultStateDir(env, uid);
  if (!stateDir) {
    throw new ConfigError(
      `${source}: state_dir: no default for an agent that is not root and has neither $HOME nor $XDG_STATE_HOME (a shared path such as /tmp would let other users plant its locks and records)`,
      'set state_dir in the config to a directory only this user can write, or set HOME',
    );
  }
  const metrics = parsed.metrics && { ...parsed.metrics, textfile_dir: path.resolve(baseDir, parsed.metrics.textfile_dir) };
  const n = parsed.notifications;
  const notifications = n && { ...n, webhook: n.webhook && { ...n.webhook, url_file: n.webhook.url_file && path.resolve(baseDir, n.webhook.url_file) } };
  const c = parsed.compose;
  const compose = c && { ...c, file: path.resolve(baseDir, c.file), env_file: c.env_file && path.resolve(baseDir, c.env_file) };
  return {
    ...parsed,
    host: parsed.host ?? hostname().split('.')[0]!,
    tiers,
    targets,
    metrics,
    notifications,
    encryption,
    compose,
    stateDir,
    source,
  };
}

// Credentials belong in rclone's own config or environment, never in ours (they would be
// on rclone's command line and in messages). The error names the parameters, not a value.
function refuseInlineCredentials(source: string, i: number, raw: Record<string, unknown>): void {
  const t = { name: typeof raw.name === 'string' ? raw.name : `#${i}`, remote: typeof raw.remote === 'string' ? raw.remote : '', flags: Array.isArray(raw.flags) ? raw.flags.filter((f): f is string => typeof f === 'string') : [] };
  const env = `RCLONE_CONFIG_<REMOTE>_* environment variables (e.g. RCLONE_CONFIG_${t.name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_SECRET_ACCESS_KEY)`;
  const inRemote = inlineRemoteCredentials(t.remote);
  if (inRemote.length) {
    throw new ConfigError(
      `${source}: targets[${i}] (${t.name}).remote: the remote carries credentials inline (${inRemote.join(', ')}); they would show on rclone's command line and in messages, so the value is not repeated here`,
      `define a named remote with its credentials in rclone's config file (the target's "config:", or rclone's own) or in ${env}, and set remote: "<remote>:<bucket/path>"`,
    );
  }
  const inFlags = credentialFlags(t.flags);
  if (inFlags.length) {
    throw new ConfigError(
      `${source}: targets[${i}] (${t.name}).flags: ${inFlags.join(', ')} would put a credential on rclone's command line; the value is not repeated here`,
      `put it in rclone's config file (the target's "config:", or rclone's own) or in ${env}`,
    );
  }
}

// The built-in tiers with the config's overrides (a missing key keeps its default); a new
// tier needs both keys. Schedules are checked here so a typo fails at load, not at 2 am.
function resolveTiers(raw: ParsedConfig['tiers'], source: string): Record<string, TierConfig> {
  const defaults: Record<string, TierConfig> = structuredClone(DEFAULT_TIERS) as unknown as Record<string, TierConfig>;
  const tiers: Record<string, TierConfig> = { ...defaults };
  for (const [name, t] of Object.entries(raw)) {
    const schedule = t.schedule ?? defaults[name]?.schedule;
    const keep = t.keep ?? defaults[name]?.keep;
    if (schedule === undefined) throw new ConfigError(`${source}: tiers.${name}.schedule: expected a cron schedule such as "0 2 * * *", got nothing (the key is missing)`);
    if (keep === undefined) throw new ConfigError(`${source}: tiers.${name}.keep: expected a retention policy such as { daily: 7 }, got nothing (the key is missing)`);
    tiers[name] = { schedule, keep, ...(t.drill ? { drill: t.drill } : {}), ...(t.incremental !== undefined ? { incremental: t.incremental } : {}), ...(t.full_every ? { full_every: t.full_every } : {}) };
  }
  for (const [name, t] of Object.entries(tiers)) {
    const err = scheduleError(t.schedule);
    if (err) throw new ConfigError(`${source}: tiers.${name}.schedule: "${t.schedule}": ${err}`, 'a 5-field cron schedule, e.g. "0 2 * * *" (daily at 02:00, local time)');
    const bad = t.drill && scheduleError(t.drill.schedule);
    if (bad) throw new ConfigError(`${source}: tiers.${name}.drill.schedule: "${t.drill!.schedule}": ${bad}`, 'a 5-field cron schedule, e.g. "0 6 2 * *"');
  }
  return tiers;
}
