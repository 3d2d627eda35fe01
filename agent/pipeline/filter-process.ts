// Runs an external stream filter (zstd, later age) as a subprocess: bytes in on
// stdin, bytes out on stdout. Multi-threaded zstd on the host is what lets the agent
// keep up with the raw `tar | zstd -T0` pipeline (Node's zlib zstd is single-threaded).
import type { Readable, Writable } from 'node:stream';
import { execa, type ResultPromise } from 'execa';
import { SnapError } from '../errors.ts';

export interface FilterProcess {
  stdin: Writable;
  stdout: Readable;
  /** Resolves when the process exited 0; rejects with its stderr otherwise. */
  done: Promise<void>;
  kill(): void;
}

export function startFilter(what: string, cmd: string, args: string[], signal?: AbortSignal): FilterProcess {
  const child: ResultPromise = execa(cmd, args, {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false, stderr: true },
    cancelSignal: signal,
    reject: false,
  });
  const done = (async () => {
    const res = await child;
    if (res.failed) {
      const stderr = String(res.stderr ?? '').trim();
      const reason = res.isCanceled ? 'cancelled' : res.signal ? `killed by ${res.signal}` : `exit code ${res.exitCode}`;
      if ((res as { code?: string }).code === 'ENOENT' || /ENOENT/.test(String(res.message))) {
        throw new SnapError(`${what}: "${cmd}" is not installed`, { hint: `install it (Debian: apt-get install ${cmd}) or run make deps` });
      }
      throw new SnapError(`${what} failed (${reason})${stderr ? `: ${stderr.split('\n').slice(-3).join(' ')}` : ''}`);
    }
  })();
  done.catch(() => undefined);
  return {
    stdin: child.stdin!,
    stdout: child.stdout!,
    done,
    kill: () => void child.kill('SIGKILL'),
  };
}

/** zstd level 3 on every core: the artifact format is a standard .zst file. */
export function zstdCompress(signal?: AbortSignal, level = 3): FilterProcess {
  return startFilter('zstd compression', 'zstd', ['-q', '-c', `-${level}`, '-T0', '--no-progress'], signal);
}

export function zstdDecompress(signal?: AbortSignal): FilterProcess {
  return startFilter('zstd decompression', 'zstd', ['-q', '-d', '-c', '--no-progress'], signal);
}
