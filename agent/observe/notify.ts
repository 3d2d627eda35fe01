// Notifications after each job's run (docs/operations.md "Notifications"): a Slack-compatible JSON
// event POSTed to a webhook and/or given on stdin to a command. A delivery that fails or
// times out is logged as a warning; it never changes the outcome of the backup.
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/load.ts';
import type { NotificationsConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { log, redact, registerSecret } from '../log.ts';
import type { BackupResult } from '../backup/backup-job.ts';
import { humanBytes, humanDuration } from '../pipeline/progress.ts';

export const EVENT_FORMAT = 'snapagent.event/1';

/** The event document (format "snapagent.event/1"); `text` is what chat tools display. */
export interface RunEvent {
  format: typeof EVENT_FORMAT;
  text: string;
  event: 'backup';
  status: 'ok' | 'failed';
  host: string;
  job: string;
  plugin: string;
  tier: string;
  id?: string;
  size?: number;
  raw_size?: number;
  duration_seconds: number;
  started_at: string;
  finished_at: string;
  error?: string;
  hint?: string;
  targets: { target: string; status: 'ok' | 'failed'; error?: string }[];
  /** The run id found on every log line of the run. */
  run: string;
  failures_in_a_row: number;
}

export function backupEvent(host: string, r: BackupResult, run: string, failuresInARow: number): RunEvent {
  const text =
    r.status === 'ok'
      ? `snapagent ${host}: backup of ${r.job} ok (${r.id}, ${humanBytes(r.size ?? 0)} in ${humanDuration(r.duration_seconds)})`
      : `snapagent ${host}: backup of ${r.job} FAILED: ${r.error ?? 'unknown error'}${r.hint ? ` (next: ${r.hint})` : ''}`;
  return {
    format: EVENT_FORMAT,
    text,
    event: 'backup',
    status: r.status,
    host,
    job: r.job,
    plugin: r.plugin,
    tier: r.tier,
    id: r.id,
    size: r.size,
    raw_size: r.raw_size,
    duration_seconds: r.duration_seconds,
    started_at: r.started_at,
    finished_at: r.finished_at,
    error: r.error,
    hint: r.hint,
    targets: r.targets,
    run,
    failures_in_a_row: failuresInARow,
  };
}

/** Sends each event the config asks for (`notifications.on`) to every configured channel. */
export async function notify(config: Config, events: RunEvent[]): Promise<void> {
  const n = config.notifications;
  if (!n) return;
  const wanted = events.filter((e) => n.on.includes(e.status === 'ok' ? 'success' : 'failure'));
  if (wanted.length === 0) return;
  const url = n.webhook && (await webhookUrl(n.webhook));
  for (const e of wanted) {
    const body = redact(JSON.stringify(e));
    await Promise.all([
      url && deliver('webhook', e, () => postWebhook(url, body, n.timeout_seconds)),
      n.command && deliver('command', e, () => runCommand(n.command!, body, n.timeout_seconds)),
    ]);
  }
}

async function deliver(channel: string, e: RunEvent, send: () => Promise<void>): Promise<void> {
  try {
    await send();
    log.info({ job: e.job, channel }, 'notification sent');
  } catch (err) {
    log.warn({ job: e.job, channel }, `notification not delivered (the backup's outcome is unchanged): ${errorMessage(err)}`);
  }
}

// The URL is a secret (Slack's carries the token in its path): it is registered for
// redaction before anything can log it.
async function webhookUrl(w: NonNullable<NotificationsConfig['webhook']>): Promise<string | undefined> {
  let url = w.url;
  try {
    if (w.url_file) url = (await readFile(w.url_file, 'utf8')).trim();
    if (w.url_env) url = process.env[w.url_env]?.trim();
    if (!url) throw new Error(w.url_env ? `environment variable ${w.url_env} is not set` : 'the URL is empty');
    registerSecret(url);
    if (!/^https?:\/\//.test(url)) throw new Error('the URL must start with http:// or https://');
    return url;
  } catch (err) {
    const where = w.url_file ? `notifications.webhook.url_file ${w.url_file}` : w.url_env ? `notifications.webhook.url_env` : 'notifications.webhook.url';
    log.warn(`webhook notifications are off for this run: ${where}: ${errorMessage(err)}`);
    return undefined;
  }
}

async function postWebhook(url: string, body: string, timeoutSeconds: number): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(timeoutSeconds * 1000),
  }).catch((err: unknown) => {
    const e = err as Error & { cause?: Error };
    throw new Error(e.name === 'TimeoutError' ? `no answer within ${timeoutSeconds} s` : `${e.message}${e.cause ? `: ${e.cause.message}` : ''}`);
  });
  const answer = (await res.text().catch(() => '')).slice(0, 200);
  if (!res.ok) throw new Error(`the webhook answered HTTP ${res.status}${answer ? `: ${answer}` : ''}`);
}

async function runCommand(argv: string[], body: string, timeoutSeconds: number): Promise<void> {
  const { execa } = await import('execa'); // loaded when a notification command runs
  const r = await execa(argv[0]!, argv.slice(1), { input: body, timeout: timeoutSeconds * 1000, reject: false, all: true, forceKillAfterDelay: 2000 });
  if (r.timedOut) throw new Error(`${argv[0]} did not finish within ${timeoutSeconds} s`);
  if (r.failed) throw new Error(`${argv[0]} ${r.exitCode !== undefined ? `exited with code ${r.exitCode}` : `failed: ${r.shortMessage}`}${r.all ? `: ${String(r.all).trim().slice(-300)}` : ''}`);
}
