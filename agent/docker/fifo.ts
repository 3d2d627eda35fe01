// Named pipes for bulk transfers, made so that nobody else's filesystem can steer where
// the root agent's opens land.
//
// A pipe lives either in a host directory the agent owns (bind-mounted into a helper
// container) or in a running container's /tmp (reached through /proc/<pid>/root). Both
// places are writable by someone the agent does not trust (the helper's command, root in
// the backed-up container), who may swap any entry for a symlink at any moment; a path
// opened by name could then land on a host file. So no path is walked by name twice:
// - every directory is opened once (O_DIRECTORY | O_NOFOLLOW) and held; what follows is
//   addressed through `/proc/<agent>/fd/<dirfd>/<name>` (held-dir.ts), a magic link that
//   jumps to the held directory without re-reading the path that led there;
// - the pipe itself is opened O_PATH | O_NOFOLLOW right after mkfifo, checked to be the
//   FIFO just made (type, device, inode), and held for the pipe's whole life; every later
//   open (ours, zstd's) goes through `/proc/<agent>/fd/<that fd>`, which reopens exactly
//   that inode whatever the directory holds by then;
// - cleanup removes the pipe's directory through held directories (held-dir.ts
//   removeTree: entries are unlinked, never followed), never a path-based recursive remove.
// What the other side opens by name inside its own filesystem is its own business: a
// swapped entry can only make the transfer fail or carry the wrong bytes, both of which
// the container could do anyway by controlling its own data.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, stat, type FileHandle } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { inDir, openBelow, removeTree } from '../held-dir.ts';

const execFileP = promisify(execFile);

/** Linux's O_PATH (010000000 on every architecture Node supports here); fs.constants lacks it. */
const O_PATH = 0o10000000;

/** The pipe was replaced between mkfifo and the agent taking hold of it. */
export class UnsafePathError extends Error {}

/** Opens a directory given by an absolute path the agent trusts (its own pipe dir),
 * refusing a final symlink. */
export function openDir(abs: string): Promise<FileHandle> {
  return open(abs, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}

export interface Fifo {
  /** The pipe's directory by name, as the directory was given (for a bind mount). */
  readonly dirName: string;
  /** A path that opens exactly this pipe, whatever happens to its directory entry. */
  readonly file: string;
  reader(): Readable;
  writer(): Writable;
  /** Opens our end: read for "r", write for "w" (blocks until the other end opens). */
  open(mode: 'r' | 'w'): Promise<FileHandle>;
  /** Unblocks both sides (a process that exited or was killed before opening its end). */
  release(): Promise<void>;
  /** Removes the pipe and its directory and closes what was held (idempotent). */
  cleanup(): Promise<void>;
}

// A named pipe in a fresh 0700 directory `<prefix>-<random>` of the held directory
// `base`, which the pipe takes over (closed by cleanup(), or at once when this fails).
// Opening one end blocks (in libuv's thread pool, not the event loop) until the other
// end opens; release() opens both ends non-blocking so that a process that died early
// never leaves the other side waiting.
export async function makeFifo(base: FileHandle, prefix: string): Promise<Fifo> {
  const dirName = `${prefix}-${randomBytes(6).toString('hex')}`;
  let pipe: FileHandle | undefined;
  try {
    await mkdir(inDir(base, dirName), { mode: 0o700 }); // EEXIST on anything already there, symlinks included
    const dir = await openBelow(base, [dirName], false);
    try {
      await execFileP('mkfifo', ['-m', '0600', '--', inDir(dir, 'data')]);
      const made = await lstat(inDir(dir, 'data'));
      pipe = await open(inDir(dir, 'data'), O_PATH | constants.O_NOFOLLOW);
      const held = await pipe.stat();
      if (!made.isFIFO() || !held.isFIFO() || held.ino !== made.ino || held.dev !== made.dev || held.uid !== process.getuid?.()) {
        throw new UnsafePathError(`the named pipe ${dirName}/data was replaced before it could be held: refused`);
      }
    } finally {
      await dir.close();
    }
  } catch (err) {
    await pipe?.close().catch(() => undefined);
    await removeTree(base, dirName).catch(() => undefined);
    await base.close().catch(() => undefined);
    throw err;
  }
  const p = pipe;
  const file = `/proc/${process.pid}/fd/${p.fd}`;
  let cleaned = false;
  return {
    dirName,
    file,
    // A pipe holds 64 KiB: bigger read buffers would be allocated, then copied down to
    // what one read returns (measured: GC took half the CPU with 1 MiB).
    reader: () => createReadStream(file, { highWaterMark: 64 * 1024 }),
    writer: () => createWriteStream(file, { highWaterMark: 1 << 20 }),
    open: (mode) => open(file, mode),
    release: async () => {
      if (cleaned) return;
      // Opening both ends non-blocking wakes whoever waits in open() on either side.
      const r = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => undefined);
      const w = await open(file, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined); // ENXIO: no reader
      await w?.close();
      await r?.close();
    },
    cleanup: async () => {
      if (cleaned) return;
      cleaned = true;
      await p.close().catch(() => undefined);
      await removeTree(base, dirName).catch(() => undefined);
      await base.close().catch(() => undefined);
    },
  };
}

/** Removes the pipe directories in the held directory `base` whose names `match`. */
export async function removeFifoDirs(base: FileHandle, match: (name: string) => boolean): Promise<void> {
  for (const n of (await readdir(inDir(base, '.'))).filter(match)) await removeTree(base, n);
}

/** A running container's /tmp, held open: undefined when it is not a real directory of
 * the container's own (missing, a symlink, or the host's root through a reused pid). */
export async function containerTmp(pid: number): Promise<FileHandle | undefined> {
  // /proc/<pid>/root is procfs's magic link to the process's root: followed on purpose.
  const root = await open(`/proc/${pid}/root`, constants.O_RDONLY | constants.O_DIRECTORY).catch(() => undefined);
  if (!root) return undefined;
  try {
    const [theirs, ours] = await Promise.all([root.stat(), stat('/')]);
    if (theirs.dev === ours.dev && theirs.ino === ours.ino) return undefined;
    return await openBelow(root, ['tmp'], false).catch(() => undefined);
  } finally {
    await root.close();
  }
}
