// Walking a directory tree without ever following a symlink, race-free: each step opens
// the next component relative to a directory already held open (local targets, the
// named pipes in a container's /tmp and the agent's pipe dir). Node has no openat(),
// but `/proc/<pid>/fd/<fd>/<name>` resolves <name> inside the held directory without
// re-walking its path, and O_NOFOLLOW (or lstat/unlink/rmdir/rename, which never follow
// a final component) covers <name> itself. Someone who can write below the walk's start
// may swap any entry for a link at any moment; what we open is still what we checked.
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rmdir, unlink, type FileHandle } from 'node:fs/promises';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

/** The path of `name` inside the held directory `dir`. Through /proc/<our pid> rather
 * than /proc/self, so that a child process (mkfifo) resolves it the same way. */
export const inDir = (dir: FileHandle, name: string): string => `/proc/${process.pid}/fd/${dir.fd}/${name}`;

/** A component below the start is a symlink or not a directory; `depth` = how many
 * components of the walk were fine before it. */
export class NotADirBelow extends Error {
  readonly depth: number;
  constructor(depth: number, cause: unknown) {
    super('not a directory (or a symbolic link)', { cause });
    this.depth = depth;
  }
}

const notDir = (err: unknown) => ['ENOTDIR', 'ELOOP'].includes((err as NodeJS.ErrnoException).code ?? '');

/** Opens the directory `start` (an absolute path the caller trusts, links and all). */
export function openStart(start: string): Promise<FileHandle> {
  return open(start, O_RDONLY | O_DIRECTORY);
}

/**
 * Opens `parts` below the held `start`, one component at a time, each a real directory
 * (never a link); with `create`, missing ones are made with `mode`. Throws NotADirBelow
 * for a link or non-directory, else the errno error (ENOENT without `create`). `start`
 * stays open and the caller's; the result is a new handle to close.
 */
export async function openBelow(start: FileHandle, parts: readonly string[], create: boolean, mode = 0o700): Promise<FileHandle> {
  let dir = await open(inDir(start, '.'), DIR_FLAGS);
  for (const [i, name] of parts.entries()) {
    try {
      if (create) {
        await mkdir(inDir(dir, name), mode).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
      }
      const next = await open(inDir(dir, name), DIR_FLAGS);
      await dir.close();
      dir = next;
    } catch (err) {
      await dir.close();
      throw notDir(err) ? new NotADirBelow(i, err) : err;
    }
  }
  return dir;
}

/** Opens the regular file `name` in `dir` for reading: a link (ELOOP) or anything but a
 * regular file (a FIFO would block a reader for ever: O_NONBLOCK) is refused with null. */
export async function openRegular(dir: FileHandle, name: string): Promise<FileHandle | null> {
  let fh: FileHandle;
  try {
    fh = await open(inDir(dir, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') return null;
    throw err;
  }
  if ((await fh.stat()).isFile()) return fh;
  await fh.close();
  return null;
}

/** Every regular file below `dir` with its size and its path relative to `dir`; links
 * (to files or directories) are neither reported nor followed. */
export async function regularFiles(dir: FileHandle, rel: readonly string[] = []): Promise<{ parts: string[]; size: number; mtimeNs: bigint }[]> {
  const out: { parts: string[]; size: number; mtimeNs: bigint }[] = [];
  for (const e of await readdir(inDir(dir, '.'), { withFileTypes: true })) {
    if (e.isFile()) {
      const st = await lstat(inDir(dir, e.name), { bigint: true }).catch(() => undefined); // gone or swapped since: skip
      if (st?.isFile()) out.push({ parts: [...rel, e.name], size: Number(st.size), mtimeNs: st.mtimeNs });
    } else if (e.isDirectory()) {
      const sub = await open(inDir(dir, e.name), DIR_FLAGS).catch(() => undefined);
      if (!sub) continue;
      try {
        out.push(...(await regularFiles(sub, [...rel, e.name])));
      } finally {
        await sub.close();
      }
    }
  }
  return out;
}

/** Removes `name` in `dir` and everything below it. Entries are unlinked, never followed;
 * a directory swapped for a link while we walk is unlinked as the link it now is. */
export async function removeTree(dir: FileHandle, name: string): Promise<void> {
  let sub: FileHandle;
  try {
    sub = await open(inDir(dir, name), DIR_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    if (!notDir(err)) throw err;
    await unlink(inDir(dir, name)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    return;
  }
  try {
    for (const e of await readdir(inDir(sub, '.'), { withFileTypes: true })) {
      if (e.isDirectory()) await removeTree(sub, e.name);
      else await unlink(inDir(sub, e.name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EISDIR') return removeTree(sub, e.name); // swapped for a directory since readdir
        if (err.code !== 'ENOENT') throw err;
      });
    }
  } finally {
    await sub.close();
  }
  await rmdir(inDir(dir, name)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
