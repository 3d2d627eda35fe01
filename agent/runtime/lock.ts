// A per-job lock file in the state directory so two runs never back up, prune or restore
// the same job at once. A second run waits (polling) up to its limit, then fails saying
// who holds the lock. A lock whose process is gone is taken over: the file names the
// holder's pid, its start time and the boot, so a killed agent's lock is recognised even
// when its pid was reused (an agent in a container is pid 1 every time).
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SnapError } from '../errors.ts';
import { bootId, procStart, processAlive } from './inflight.ts';
import type { Logger } from '../log.ts';

export interface Lock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** Seconds to wait for a lock held by a live run (default 0: fail at once). */
  waitSeconds?: number;
  /** Stops the wait (the run was cancelled). */
  signal?: AbortSignal;
  /** Poll interval while waiting, in milliseconds. */
  pollMs?: number;
}

interface Holder {
  pid: number;
  since: string;
  /** Kernel boot id and the process's start time (clock ticks since boot): who the pid was. */
  boot?: string;
  start?: string;
}

// Lock files this process holds: a lock naming our own pid is ours (another job of
// this process) only when it is in this set; otherwise it was left by a killed process
// that had the same pid.
const held = new Set<string>();

// The lock file's text, or undefined when there is no lock.
async function readLock(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseHolder(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Holder;
    return Number.isInteger(h.pid) ? h : undefined;
  } catch {
    return undefined;
  }
}

// Creates `file` holding our identity, atomically: the content is written to a private
// temp file first and linked into place (link fails when the lock exists), so a reader
// never sees a half-written lock.
async function tryCreate(file: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const me: Holder = { pid: process.pid, since: new Date().toISOString(), boot: bootId(), start: procStart(process.pid) };
  await writeFile(tmp, JSON.stringify(me), { mode: 0o600 });
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
}

// Removes a stale lock. Two runs may find the same stale lock at once: a guard file lets
// only one of them remove it, and only if it still is the stale one (the other may have
// taken the lock meanwhile).
async function takeOver(file: string, stale: string, log: Logger): Promise<boolean> {
  const guard = `${file}.takeover`;
  if (!(await tryCreate(guard))) {
    const text = await readLock(guard);
    const g = text === undefined ? undefined : parseHolder(text);
    if (text === undefined || (g && (g.pid === process.pid || processAlive(g)))) return false; // someone else is taking over
    await rm(guard, { force: true }); // left by a run killed while taking over
    return false;
  }
  try {
    if ((await readLock(file)) !== stale) return false;
    log.warn({ lock: file, holder: parseHolder(stale) ?? stale }, 'taking over a stale lock left by a run that was killed');
    await rm(file, { force: true });
    return true;
  } finally {
    await rm(guard, { force: true });
  }
}

export async function lockJob(stateDir: string, host: string, job: string, log: Logger, o: LockOptions = {}): Promise<Lock> {
  const dir = path.join(stateDir, 'locks');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${host}--${job}.lock`);
  const deadline = Date.now() + (o.waitSeconds ?? 0) * 1000;
  let waiting = false;
  for (;;) {
    if (await tryCreate(file)) {
      held.add(file);
      if (waiting) log.info({ lock: file }, 'lock acquired after waiting');
      return {
        release: async () => {
          held.delete(file);
          await rm(file, { force: true });
        },
      };
    }
    const text = await readLock(file);
    if (text === undefined) continue; // released meanwhile
    const holder = parseHolder(text);
    const live = holder ? (holder.pid === process.pid ? held.has(file) : processAlive(holder)) : false;
    if (!live && (await takeOver(file, text, log))) continue;
    const who = holder ? `pid ${holder.pid}, since ${holder.since}` : 'an unreadable lock';
    if (Date.now() >= deadline) {
      throw new SnapError(`job ${job} is locked by another run (${who})${o.waitSeconds ? `; gave up after waiting ${o.waitSeconds}s` : ''}`, {
        hint: `wait for that run to finish, or raise lock_wait_seconds; the lock is ${file}`,
      });
    }
    if (live && !waiting) log.info({ lock: file, holder: who, wait_seconds: o.waitSeconds }, 'job is locked by another run: waiting');
    waiting = true;
    try {
      await sleep(Math.min(live ? (o.pollMs ?? 500) : 50, Math.max(1, deadline - Date.now())), undefined, { signal: o.signal });
    } catch (err) {
      throw o.signal?.reason ?? err;
    }
  }
}
