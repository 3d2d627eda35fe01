// Waiting in the e2e tests: for a condition (polled), for a server to answer, and for a
// process inside a container to show up so that it can be killed mid-stream. Every wait
// is bounded and says, when it gives up, what it waited for and what it saw last.
import { setTimeout as sleep } from 'node:timers/promises';
import { docker } from './harness.ts';

export interface WaitOptions {
  /** Gives up after this long (default 60 s). */
  timeoutMs?: number;
  /** Between two probes (default 200 ms). */
  intervalMs?: number;
}

/**
 * Polls `probe` until it returns something other than undefined or false (a probe that
 * throws has not succeeded yet), and resolves with that; throws naming `what` and the
 * last error after the timeout.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${opts.timeoutMs ?? 60_000} ms${last ? `: ${last}` : ''}`);
    await sleep(opts.intervalMs ?? 200);
  }
}

/**
 * Waits until `ready` resolves (a server answering its first query). On timeout the
 * error carries the last failure and the container's last log lines.
 */
export async function waitForServer<T>(container: string, what: string, ready: () => Promise<T>, opts: WaitOptions = {}): Promise<T> {
  try {
    return await until(`${what} in ${container} to answer`, async () => ({ value: await ready() }), { intervalMs: 500, ...opts }).then((r) => r.value);
  } catch (err) {
    const logs = await docker('logs', '--tail', '30', container).catch(() => '');
    throw new Error(`${what} in ${container} did not start: ${(err as Error).message}\n${logs}`);
  }
}

/**
 * SIGKILLs `program` inside `container` as soon as it runs (a dump tool dying
 * mid-stream); resolves with whether it was seen and killed before the timeout
 * (default 30 s).
 */
export async function killWhenRunning(container: string, program: string, opts: WaitOptions = {}): Promise<boolean> {
  const script = 'pid=$(pidof "$1") && kill -9 $pid && echo killed || true';
  return until(`${program} in ${container}`, async () => (await docker('exec', container, 'sh', '-c', script, 'sh', program)).includes('killed'), { timeoutMs: 30_000, intervalMs: 25, ...opts }).catch(() => false);
}
