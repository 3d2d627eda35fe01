// A per-job lock file in the state directory so two runs never back up or restore the
// same job at once. A lock whose process is gone (killed agent) is taken over.
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { SnapError } from './errors.ts';
import type { Logger } from './log.ts';

export interface Lock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function lockJob(stateDir: string, host: string, job: string, log: Logger): Promise<Lock> {
  const dir = path.join(stateDir, 'locks');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${host}--${job}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600);
      await fh.writeFile(JSON.stringify({ pid: process.pid, since: new Date().toISOString() }));
      await fh.close();
      return { release: () => rm(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = await readFile(file, 'utf8').then((t) => JSON.parse(t) as { pid: number; since: string }).catch(() => undefined);
      if (holder && alive(holder.pid) && holder.pid !== process.pid) {
        throw new SnapError(`job ${job} is already running (pid ${holder.pid}, since ${holder.since})`, { hint: `wait for it to finish; the lock is ${file}` });
      }
      log.warn({ lock: file }, 'taking over a stale lock left by a run that was killed');
      await rm(file, { force: true });
    }
  }
  throw new SnapError(`could not take the lock for job ${job}`);
}
