// The process logger: JSON lines on stderr when not on a terminal (for journald,
// docker logs and log shippers), human lines on a terminal. Every line carries the
// run id. Stdout is reserved for command output (`--json` documents, tables).
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import { CREDENTIAL_NAME, secretForms } from './secret-forms.ts';

export type { Logger };

export const runId = randomBytes(4).toString('hex');

const secrets = new Set<string>();
/** Every form of every secret (secret-forms.ts), longest first. */
let forms: string[] = [];

/** Registers a secret value: it is replaced by "***", raw, JSON-escaped or URL-encoded, in
 * every log line, --json document, state file, manifest, check record, metric and event. */
export function registerSecret(value: string | undefined): void {
  if (!value || value.length < 4 || secrets.has(value)) return;
  secrets.add(value);
  forms = [...new Set([...forms, ...secretForms(value)])].sort((a, b) => b.length - a.length);
}

export function redact(text: string): string {
  let out = text;
  for (const f of forms) if (out.includes(f)) out = out.split(f).join('***');
  return out;
}

/** A JSON document as written to a file or stdout: indented, secrets redacted, newline-ended. */
export function redactedJson(value: unknown): string {
  return redact(JSON.stringify(value, null, 2)) + '\n';
}

/** Registers the credentials rclone reads from the environment (RCLONE_CONFIG_<REMOTE>_PASS,
 * _SECRET_ACCESS_KEY, _TOKEN...): the agent passes them through, they must never come back
 * out in an rclone message. Paths (_FILE) are not secrets. */
export function registerEnvSecrets(env: NodeJS.ProcessEnv = process.env): void {
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('RCLONE_') && CREDENTIAL_NAME.test(k.slice('RCLONE_'.length)) && !/_(FILE|PATH)$/.test(k)) registerSecret(v);
  }
}

function makeLogger(): Logger {
  const level = process.env.SNAPAGENT_LOG_LEVEL ?? 'info';
  const hooks = {
    streamWrite: (line: string) => redact(line),
  };
  if (process.stderr.isTTY && process.env.SNAPAGENT_LOG_FORMAT !== 'json') {
    // loaded only on a terminal: it costs ~10 MB of memory
    const pretty = createRequire(import.meta.url)('pino-pretty') as (o: Record<string, unknown>) => NodeJS.WritableStream;
    const stream = pretty({ destination: 2, sync: true, ignore: 'pid,hostname,run', translateTime: 'HH:MM:ss' });
    return pino({ level, base: { run: runId }, hooks }, stream);
  }
  return pino({ level, base: { run: runId }, hooks }, pino.destination({ dest: 2, sync: true }));
}

export const log: Logger = makeLogger();
