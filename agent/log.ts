// The process logger: JSON lines on stderr when not on a terminal (for journald,
// docker logs and log shippers), human lines on a terminal. Every line carries the
// run id. Stdout is reserved for command output (`--json` documents, tables).
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';

export type { Logger };

export const runId = randomBytes(4).toString('hex');

const secrets = new Set<string>();

/** Registers a secret value: it is replaced by "***" in every log line. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
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
