// Small files into and out of a helper container's own filesystem through the Docker
// API's archive endpoints (PUT/GET /containers/{id}/archive), which take and give tar
// streams: the tar is built and read here in memory. Never a bind mount, never a path
// opened from the host (dockerd resolves the path inside the container's root).
import path from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';

/** A file put into a helper before it starts. */
export interface HelperFile {
  /** Absolute path in the container, e.g. "/snapagent/index/snar". */
  path: string;
  content: Buffer;
  /** Default 0o600 (directories made for it: 0o700). */
  mode?: number;
}

/** A file read back from a helper after its command exited. */
export interface HelperCollect {
  /** Absolute path in the container; it must be a regular file. */
  path: string;
  /** More is refused (the command, or whatever it read, wrote it: bound what we hold). */
  maxBytes: number;
}

export class ArchiveError extends Error {}

/** Checks an absolute container path: no "..", ".", empty or NUL components. */
export function containerPath(p: string): string {
  const parts = p.split('/');
  if (!p.startsWith('/') || p.includes('\0') || parts.slice(1).some((c) => c === '' || c === '.' || c === '..')) {
    throw new ArchiveError(`not a plain absolute path: ${JSON.stringify(p)}`);
  }
  return p;
}

/** A tar (for extraction at "/") holding `files` and each of their parent directories. */
export async function packFiles(files: readonly HelperFile[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const dirs = new Set<string>();
  const mtime = new Date();
  const add = (header: tar.Headers, content?: Buffer) =>
    new Promise<void>((resolve, reject) => pack.entry(header, content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  for (const f of files) {
    const rel = containerPath(f.path).slice(1);
    const parents = path.posix.dirname(rel).split('/');
    for (let i = 1; i <= parents.length; i++) {
      const dir = parents.slice(0, i).join('/');
      if (dir === '.' || dirs.has(dir)) continue;
      dirs.add(dir);
      await add({ name: `${dir}/`, type: 'directory', mode: 0o700, uid: 0, gid: 0, mtime });
    }
    await add({ name: rel, type: 'file', mode: f.mode ?? 0o600, uid: 0, gid: 0, mtime, size: f.content.length }, f.content);
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** The content of the one regular file named `name` that the tar stream `src` (an archive
 * endpoint's answer) holds; rejects on anything else (a directory, a symlink, more entries)
 * and once the stream passes `maxBytes` plus the tar framing of one entry. */
export function singleFile(src: Readable, name: string, maxBytes: number): Promise<Buffer> {
  const limit = maxBytes + 16 * 1024; // headers (pax ones too) and padding
  const extract = tar.extract();
  let seen = 0;
  let content: Buffer | undefined;
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      src.unpipe(extract);
      src.destroy();
      extract.destroy();
      reject(err);
    };
    src.on('data', (c: Buffer) => {
      seen += c.length;
      if (seen > limit) fail(new ArchiveError(`${name}: more than ${maxBytes} bytes`));
    });
    src.on('error', fail);
    extract.on('error', fail);
    extract.on('entry', (header: tar.Headers, body: Readable, next: (err?: unknown) => void) => {
      if (content || header.name.replace(/\/$/, '') !== name) return fail(new ArchiveError(`${name}: unexpected entry ${JSON.stringify(header.name)} in the archive`));
      if (header.type !== 'file') return fail(new ArchiveError(`${name}: not a regular file (${header.type ?? 'unknown type'})`));
      if ((header.size ?? 0) > maxBytes) return fail(new ArchiveError(`${name}: ${header.size} bytes, more than ${maxBytes}`));
      const parts: Buffer[] = [];
      body.on('data', (c: Buffer) => parts.push(c));
      body.on('end', () => {
        content = Buffer.concat(parts);
        next();
      });
    });
    extract.on('finish', () => {
      if (settled) return;
      settled = true;
      if (content) resolve(content);
      else reject(new ArchiveError(`${name}: not in the archive`));
    });
    src.pipe(extract);
  });
}
