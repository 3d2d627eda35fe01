// A directory on this machine (or a mounted NAS). Files are written 0600 in 0700
// directories, fsynced, then renamed into place.
//
// Whoever else can write into the target directory (a shared NAS, a container that
// mounts it) must not steer this root process: the root may be a symlink (the
// operator's choice, resolved once), nothing below it is ever followed. Directories are
// walked from held descriptors (held-dir.ts), files are created O_EXCL|O_NOFOLLOW, never
// opened, and read O_NOFOLLOW; a link below the root is refused with its path named.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { fdatasync } from 'node:fs';
import { lstat, mkdir, realpath, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createExclusive, writeFileAtomic } from '../atomic-file.ts';
import { TargetError } from '../errors.ts';
import { inDir, NotADirBelow, openBelow, openRegular, openStart, regularFiles, removeTree } from '../held-dir.ts';
import { PARTIAL_SUFFIX, type PartialFile, type StoredFile, type Target } from './target.ts';

export class LocalTarget implements Target {
  readonly name: string;
  readonly description: string;
  private readonly root: string;
  private realRoot?: string;
  constructor(name: string, root: string) {
    this.name = name;
    this.root = root;
    this.description = `local ${root}`;
  }

  // A key as directory components below the root plus a last name (never the root).
  private split(key: string): { parts: string[]; name: string } {
    const p = path.resolve(this.root, key);
    if (!p.startsWith(this.root + path.sep)) throw new TargetError(`target ${this.name}: key must name something below the target root: "${key}"`);
    const all = path.relative(this.root, p).split(path.sep);
    return { parts: all.slice(0, -1), name: all.at(-1)! };
  }

  private fail(what: string, err: unknown): TargetError {
    if (err instanceof TargetError) return err;
    const e = err as NodeJS.ErrnoException;
    const hint =
      e.code === 'ENOSPC'
        ? 'the target filesystem is full: free space or point the target elsewhere'
        : e.code === 'EACCES' || e.code === 'EROFS' || e.code === 'EPERM'
          ? `make ${this.root} writable for this user (permissions, a read-only mount, or the immutable attribute: lsattr)`
          : undefined;
    return new TargetError(`target ${this.name} (${this.description}): ${what}: ${e.code ?? ''} ${e.message}`.trim(), { hint, cause: err });
  }

  private refuse(parts: readonly string[], what: string): TargetError {
    const p = path.join(this.root, ...parts);
    return new TargetError(`target ${this.name} (${this.description}): ${p} ${what}: refusing to follow it`, {
      hint: `remove or rename ${p}: below the target root snapagent makes only directories and regular files and never follows a symbolic link (the root itself may be one)`,
    });
  }

  // The root resolved once per process (check() resolves it again): links in it are the
  // operator's; everything below is walked from its descriptor.
  private async start(create: boolean): Promise<FileHandle> {
    if (!this.realRoot) {
      if (create) await mkdir(this.root, { recursive: true, mode: 0o700 });
      this.realRoot = await realpath(this.root);
    }
    return openStart(this.realRoot);
  }

  // The directory `parts` below the root, made 0700 where missing with `create`.
  private async dir(parts: readonly string[], create: boolean): Promise<FileHandle> {
    const start = await this.start(create);
    try {
      return await openBelow(start, parts, create);
    } catch (err) {
      if (err instanceof NotADirBelow) throw this.refuse(parts.slice(0, err.depth + 1), 'is a symbolic link or not a directory');
      throw err;
    } finally {
      await start.close();
    }
  }

  async check(): Promise<void> {
    let dir: FileHandle | undefined;
    try {
      this.realRoot = undefined;
      dir = await this.start(true);
      // An unpredictable name, created O_EXCL: nothing planted can be written through.
      const probe = inDir(dir, `.snapagent-probe-${process.pid}-${randomBytes(6).toString('hex')}`);
      await (await createExclusive(probe, 0o600)).close();
      await unlink(probe);
    } catch (err) {
      throw this.fail('cannot write to the target directory', err);
    } finally {
      await dir?.close();
    }
  }

  async put(key: string, src: Readable, signal: AbortSignal): Promise<{ bytes: number }> {
    const { parts, name } = this.split(key);
    let dir: FileHandle | undefined;
    let created = false;
    try {
      dir = await this.dir(parts, true);
      const fh = await createExclusive(inDir(dir, name + PARTIAL_SUFFIX), 0o600);
      created = true;
      // The stream owns the handle (closes it at the end or on error); flush: fsync
      // before close, so a published file survives a crash.
      const ws = fh.createWriteStream({ highWaterMark: 1 << 20, flush: true });
      await pipeline(src, ws, { signal });
      return { bytes: ws.bytesWritten };
    } catch (err) {
      if (created && dir) await unlink(inDir(dir, name + PARTIAL_SUFFIX)).catch(() => undefined);
      if (signal.aborted) throw signal.reason ?? err;
      throw this.fail(`writing ${key}`, err);
    } finally {
      await dir?.close();
    }
  }

  async openPartial(key: string): Promise<PartialFile> {
    const { parts, name } = this.split(key);
    let dir: FileHandle | undefined;
    let fh: FileHandle | undefined;
    try {
      dir = await this.dir(parts, true);
      fh = await createExclusive(inDir(dir, name + PARTIAL_SUFFIX), 0o600);
    } catch (err) {
      await dir?.close();
      throw this.fail(`writing ${key}`, err);
    }
    const file = fh;
    let held: FileHandle | undefined = dir;
    let syncing: Promise<void> | undefined;
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await syncing;
      await file.close().catch(() => undefined);
    };
    const release = async () => {
      await held?.close().catch(() => undefined);
      held = undefined;
    };
    return {
      fd: file.fd,
      writeBack: () => {
        if (syncing || closed) return;
        syncing = new Promise<void>((resolve) => fdatasync(file.fd, () => resolve())).then(() => void (syncing = undefined));
      },
      finish: async (bytes) => {
        try {
          await syncing;
          // one fsync at the end, as put() does: a published file survives a crash
          await file.sync();
          const size = (await file.stat()).size;
          if (size !== bytes) throw new Error(`${size} bytes on disk, ${bytes} written`);
          await close();
          await release();
        } catch (err) {
          throw this.fail(`writing ${key}`, err);
        }
      },
      discard: async () => {
        await close();
        // the directory as held since the file was made, else found again (never a
        // descriptor number that may since name something else)
        const d = held ?? (await this.dir(parts, false).catch(() => undefined));
        if (d) await unlink(inDir(d, name + PARTIAL_SUFFIX)).catch(() => undefined);
        await d?.close().catch(() => undefined);
        held = undefined;
      },
      error: (err) => this.fail(`writing ${key}`, err),
    };
  }

  async openStored(key: string): Promise<FileHandle> {
    try {
      return await this.openFile(key);
    } catch (err) {
      throw this.fail(`reading ${key}`, err);
    }
  }

  async publish(key: string): Promise<void> {
    const { parts, name } = this.split(key);
    let dir: FileHandle | undefined;
    try {
      dir = await this.dir(parts, false);
      if (!(await lstat(inDir(dir, name + PARTIAL_SUFFIX))).isFile()) throw this.refuse([...parts, name + PARTIAL_SUFFIX], 'is not a regular file');
      await rename(inDir(dir, name + PARTIAL_SUFFIX), inDir(dir, name));
      await dir.sync();
    } catch (err) {
      throw this.fail(`publishing ${key}`, err);
    } finally {
      await dir?.close();
    }
  }

  async writeFile(key: string, data: Buffer): Promise<void> {
    const { parts, name } = this.split(key);
    let dir: FileHandle | undefined;
    try {
      dir = await this.dir(parts, true);
      // A temporary name of its own: two writers of one key must not share (and unlink or
      // rename) each other's. It ends in .partial, as a killed writer's leftover should.
      await writeFileAtomic(inDir(dir, name), data, { tmp: inDir(dir, `${name}.${randomBytes(6).toString('hex')}${PARTIAL_SUFFIX}`) });
    } catch (err) {
      throw this.fail(`writing ${key}`, err);
    } finally {
      await dir?.close();
    }
  }

  // A stored regular file opened for reading; a link or special file is refused.
  private async openFile(key: string): Promise<FileHandle> {
    const { parts, name } = this.split(key);
    const dir = await this.dir(parts, false);
    try {
      const fh = await openRegular(dir, name);
      if (!fh) throw this.refuse([...parts, name], 'is a symbolic link or not a regular file');
      return fh;
    } finally {
      await dir.close();
    }
  }

  async readFile(key: string): Promise<Buffer> {
    try {
      const fh = await this.openFile(key);
      try {
        return await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw this.fail(`reading ${key}`, err);
    }
  }

  open(key: string, signal: AbortSignal): Readable {
    const openFile = () => this.openFile(key).catch((err: unknown) => Promise.reject(this.fail(`reading ${key}`, err)));
    return Readable.from(
      (async function* () {
        // autoClose: the handle closes when the stream ends or is destroyed (also when the
        // consumer stops early: the generator's return destroys it)
        yield* (await openFile()).createReadStream({ highWaterMark: 1 << 20, signal }) as AsyncIterable<Buffer>;
      })(),
      { objectMode: false, highWaterMark: 1 << 20 },
    );
  }

  async list(prefix: string): Promise<StoredFile[]> {
    const at = prefix === '' ? undefined : this.split(prefix);
    const parts = at ? [...at.parts, at.name] : [];
    let dir: FileHandle;
    try {
      dir = await this.dir(parts, false);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw this.fail(`listing ${prefix || '/'}`, err);
    }
    try {
      return (await regularFiles(dir, parts)).map((f) => ({ key: f.parts.join('/'), size: f.size, modified: String(f.mtimeNs) }));
    } catch (err) {
      throw this.fail(`listing ${prefix || '/'}`, err);
    } finally {
      await dir.close();
    }
  }

  async removeFile(key: string): Promise<void> {
    const { parts, name } = this.split(key);
    let dir: FileHandle | undefined;
    try {
      dir = await this.dir(parts, false);
      await unlink(inDir(dir, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await dir.sync().catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.fail(`removing ${key}`, err);
    } finally {
      await dir?.close();
    }
  }

  async removeDir(prefix: string): Promise<void> {
    const { parts, name } = this.split(prefix);
    let dir: FileHandle | undefined;
    try {
      dir = await this.dir(parts, false);
      const st = await lstat(inDir(dir, name));
      if (st.isSymbolicLink()) throw this.refuse([...parts, name], 'is a symbolic link');
      await removeTree(dir, name);
      await dir.sync().catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.fail(`removing ${prefix}`, err);
    } finally {
      await dir?.close();
    }
  }
}
