// A directory on this machine (or a mounted NAS). Files are written 0600 in 0700
// directories, fsynced, then renamed into place.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { syncDir, writeFileAtomic } from '../atomic-file.ts';
import { TargetError } from '../errors.ts';
import { PARTIAL_SUFFIX, type StoredFile, type Target } from './target.ts';

export class LocalTarget implements Target {
  readonly name: string;
  readonly description: string;
  private readonly root: string;
  constructor(name: string, root: string) {
    this.name = name;
    this.root = root;
    this.description = `local ${root}`;
  }

  private abs(key: string): string {
    const p = path.resolve(this.root, key);
    if (p !== this.root && !p.startsWith(this.root + path.sep)) throw new TargetError(`target ${this.name}: key escapes the target root: ${key}`);
    return p;
  }

  private fail(what: string, err: unknown): TargetError {
    const e = err as NodeJS.ErrnoException;
    const hint =
      e.code === 'ENOSPC'
        ? 'the target filesystem is full: free space or point the target elsewhere'
        : e.code === 'EACCES' || e.code === 'EROFS'
          ? `make ${this.root} writable for this user`
          : undefined;
    return new TargetError(`target ${this.name} (${this.description}): ${what}: ${e.code ?? ''} ${e.message}`.trim(), { hint, cause: err });
  }

  async check(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      const probe = path.join(this.root, `.snapagent-probe-${process.pid}`);
      const fh = await open(probe, 'w', 0o600);
      await fh.close();
      await rm(probe, { force: true });
    } catch (err) {
      throw this.fail('cannot write to the target directory', err);
    }
  }

  async put(key: string, src: Readable, signal: AbortSignal): Promise<{ bytes: number }> {
    const file = this.abs(key) + PARTIAL_SUFFIX;
    try {
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      // flush: fsync before close, so a published file survives a crash.
      const ws = createWriteStream(file, { mode: 0o600, flush: true, highWaterMark: 1 << 20 });
      await pipeline(src, ws, { signal });
      return { bytes: ws.bytesWritten };
    } catch (err) {
      await rm(file, { force: true }).catch(() => undefined);
      if (signal.aborted) throw signal.reason ?? err;
      throw this.fail(`writing ${key}`, err);
    }
  }

  async publish(key: string): Promise<void> {
    const file = this.abs(key);
    try {
      await rename(file + PARTIAL_SUFFIX, file);
      await syncDir(path.dirname(file));
    } catch (err) {
      throw this.fail(`publishing ${key}`, err);
    }
  }

  async writeFile(key: string, data: Buffer): Promise<void> {
    const file = this.abs(key);
    try {
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await writeFileAtomic(file, data, { tmp: file + PARTIAL_SUFFIX });
    } catch (err) {
      throw this.fail(`writing ${key}`, err);
    }
  }

  async readFile(key: string): Promise<Buffer> {
    try {
      return await readFile(this.abs(key));
    } catch (err) {
      throw this.fail(`reading ${key}`, err);
    }
  }

  open(key: string, signal: AbortSignal): Readable {
    return createReadStream(this.abs(key), { highWaterMark: 1 << 20, signal });
  }

  async list(prefix: string): Promise<StoredFile[]> {
    const base = this.abs(prefix);
    const out: StoredFile[] = [];
    let entries;
    try {
      entries = await readdir(base, { recursive: true, withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw this.fail(`listing ${prefix || '/'}`, err);
    }
    for (const e of entries) {
      if (!e.isFile()) continue;
      const full = path.join(e.parentPath, e.name);
      const st = await stat(full).catch(() => undefined);
      if (st) out.push({ key: path.relative(this.root, full).split(path.sep).join('/'), size: st.size });
    }
    return out;
  }

  async removeFile(key: string): Promise<void> {
    const file = this.abs(key);
    try {
      await rm(file, { force: true });
      await syncDir(path.dirname(file)).catch(() => undefined);
    } catch (err) {
      throw this.fail(`removing ${key}`, err);
    }
  }

  async removeDir(prefix: string): Promise<void> {
    try {
      await rm(this.abs(prefix), { recursive: true, force: true });
    } catch (err) {
      throw this.fail(`removing ${prefix}`, err);
    }
  }
}
