// Replacing a file so that readers see the old whole file or the new whole file, never a
// part: write a temporary file in the same directory, fsync it, rename it over the old
// one, fsync the directory. Concurrent writers each use their own temporary name.
//
// The temporary file is always created, never opened: O_CREAT|O_EXCL|O_NOFOLLOW, so a
// symlink (or any entry) planted at its name is never written through. rename() then
// replaces whatever entry holds the final name without following it.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

export interface AtomicOptions {
  /** Permission bits of the new file (default 0600). */
  mode?: number;
  /** Temporary path (default: a unique hidden name next to `file`). */
  tmp?: string;
}

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Creates a new file at `file` for writing; never opens an existing entry. An entry
 * already there (a stale temporary file of a killed run, or a planted symlink) is
 * unlinked — unlink never follows a link — and the create tried once more, so a
 * leftover cannot block every later run. The directories leading to `file` are the
 * caller's to trust (e.g. a /proc/self/fd/<dir>/ path of a held directory).
 */
export async function createExclusive(file: string, mode: number): Promise<FileHandle> {
  try {
    return await open(file, CREATE_FLAGS, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    await unlink(file).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    return await open(file, CREATE_FLAGS, mode);
  }
}

export async function writeFileAtomic(file: string, data: string | Buffer, o: AtomicOptions = {}): Promise<void> {
  const tmp = o.tmp ?? path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const mode = o.mode ?? 0o600;
  const fh = await createExclusive(tmp, mode);
  try {
    try {
      await fh.chmod(mode); // the umask must not narrow a file another user (node_exporter) reads
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await syncDir(path.dirname(file));
  } catch (err) {
    await unlink(tmp).catch(() => undefined); // ours: created above, so never a planted entry's target
    throw err;
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
