// Runs an external stream filter (zstd, age) as a subprocess: bytes in on
// stdin, bytes out on stdout. Multi-threaded zstd on the host is what lets the agent
// keep up with the raw `tar | zstd -T0` pipeline (Node's zlib zstd is single-threaded).
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { spawn } from 'node:child_process';
import { SnapError } from '../errors.ts';

export interface FilterProcess {
  /** Null when the process reads a file descriptor it was given. */
  stdin: Writable | null;
  /** Empty when the process writes to a file descriptor it was given. */
  stdout: Readable;
  /** Resolves when the process exited 0; rejects with its stderr otherwise. */
  done: Promise<void>;
  kill(): void;
}

/** A file descriptor (e.g. a named pipe), or another filter's stdin/stdout pipe, handed to
 * a process so that the bytes never pass through this one. The caller closes its own
 * copy afterwards (a reader only sees EOF once every writer's copy is closed). */
export type Fd = number | Readable | Writable;

/** `fds` hands the process its stdin or stdout (see Fd). */
export function startFilter(what: string, cmd: string, args: string[], signal?: AbortSignal, fds: { stdin?: Fd; stdout?: Fd } = {}): FilterProcess {
  const child = spawn(cmd, args, { stdio: [fds.stdin ?? 'pipe', fds.stdout ?? 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4096)));
  const done = new Promise<void>((resolve, reject) => {
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on('error', (err: NodeJS.ErrnoException) => (spawnError = err));
    child.on('close', (code, sig) => {
      if (code === 0) return resolve();
      if (spawnError?.code === 'ENOENT') {
        return reject(new SnapError(`${what}: "${cmd}" is not installed`, { hint: `install it (Debian: apt-get install ${cmd}) or run make deps` }));
      }
      const reason = signal?.aborted ? 'cancelled' : sig ? `killed by ${sig}` : `exit code ${code}`;
      const tail = stderr.trim().split('\n').slice(-3).join(' ');
      reject(new SnapError(`${what} failed (${reason})${tail ? `: ${tail}` : ''}`));
    });
  });
  done.catch(() => undefined);
  child.stdin?.on('error', () => undefined); // EPIPE when the process died: reported by `done`
  // Node discards the unread stdout of a child that has exited (flushStdio): a small
  // output produced before the consumer attaches would be lost. Taking it at once into
  // our own stream keeps it; pipe() still applies backpressure to the child.
  const stdout = new PassThrough({ highWaterMark: 1 << 20 });
  if (child.stdout) child.stdout.pipe(stdout);
  else stdout.end();
  return { stdin: child.stdin, stdout, done, kill: () => void child.kill('SIGKILL') };
}

/** zstd level 3 on every core: the artifact format is a standard .zst file. */
export function zstdCompress(signal?: AbortSignal, input?: Fd, output?: Fd, level = 3): FilterProcess {
  return startFilter('zstd compression', 'zstd', ['-q', '-c', `-${level}`, '-T0', '--no-progress'], signal, { stdin: input, stdout: output });
}

export function zstdDecompress(signal?: AbortSignal, output?: Fd): FilterProcess {
  return startFilter('zstd decompression', 'zstd', ['-q', '-d', '-c', '--no-progress'], signal, { stdout: output });
}

/** zstd stopped because the bound was reached (the decompressed stream is longer). */
export class RawBoundHit extends SnapError {}

// zstd -d | dd (LIMIT bytes at most), writing straight into `output`. dd stops reading
// at LIMIT; zstd then dies of SIGPIPE (141) with dd's status 0: more than LIMIT bytes.
// Any other failure is zstd's (or the consumer's) own. The cap is hard; the detection is
// not quite: a stream at most one pipe buffer over LIMIT may have been written whole
// before dd stopped, and then the consumer simply gets LIMIT bytes (no more than a
// forged artifact within raw_size could hold anyway). dd, not `head -c`: its 128 KiB
// blocks (zstd's own output size) take a third fewer system calls, ~0.2 s of CPU less
// per GiB, where every CPU second on 2 cores lengthens the restore.
const BOUNDED = `zstd -q -d -c --no-progress | dd bs=128K iflag=fullblock,count_bytes count="$1" status=none
s=("\${PIPESTATUS[@]}")
if [ "\${s[0]}" = 141 ] && [ "\${s[1]}" = 0 ]; then echo "snapagent: raw size bound reached" >&2; exit 75; fi
[ "\${s[0]}" = 0 ] || exit "\${s[0]}"
exit "\${s[1]}"`;

/** zstd decompression into `output` that writes at most `limit` bytes; `done` rejects with
 * RawBoundHit when the stream was longer. */
export function zstdDecompressBounded(signal: AbortSignal | undefined, limit: number, output: Fd, input?: Fd): FilterProcess {
  const f = startFilter('zstd decompression', 'bash', ['-c', BOUNDED, 'snapagent-bound', String(limit)], signal, { stdin: input, stdout: output });
  const done = f.done.catch((err: unknown) => {
    throw /raw size bound reached/.test(String((err as Error).message)) ? new RawBoundHit(`the decompressed stream is longer than ${limit} bytes`) : err;
  });
  done.catch(() => undefined);
  return { ...f, done };
}
