// Replacing a file so that readers see the old whole file or the new whole file, never a
// part: write a temporary file in the same directory, fsync it, rename it over the old
// one, fsync the directory. Concurrent writers each use their own temporary name.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export interface AtomicOptions {
  /** Permission bits of the new file (default 0600). */
  mode?: number;
  /** Temporary path (default: a unique hidden name next to `file`). */
  tmp?: string;
}

export async function writeFileAtomic(file: string, data: string | Buffer, o: AtomicOptions = {}): Promise<void> {
  const tmp = o.tmp ?? path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const mode = o.mode ?? 0o600;
  try {
    const fh = await open(tmp, 'w', mode);
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
    await rm(tmp, { force: true }).catch(() => undefined);
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
