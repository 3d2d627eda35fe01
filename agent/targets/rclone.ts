// Any rclone remote ("s3:bucket/path", "sftp:backups", a crypt remote...). Credentials
// stay in rclone's own config file or RCLONE_* env vars: nothing secret is ever put on
// the rclone command line. Uploads stream through `rclone rcat` under a ".partial"
// name and are published with a server-side move; on remotes without one (S3), the
// upload goes straight to its final name, which S3 only shows once it is complete.
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { errorMessage, TargetError } from '../errors.ts';
import { startFilter } from '../pipeline/filter-process.ts';
import { PARTIAL_SUFFIX, type StoredFile, type Target } from './target.ts';

export interface RcloneOptions {
  name: string;
  remote: string;
  config?: string;
  flags: string[];
  timeoutSeconds: number;
}

const BASE_FLAGS = ['--contimeout', '10s', '--low-level-retries', '3', '--retries', '2', '--stats', '0', '--log-level', 'ERROR'];

export class RcloneTarget implements Target {
  readonly name: string;
  readonly description: string;
  private canMove?: boolean;
  private readonly o: RcloneOptions;

  constructor(o: RcloneOptions) {
    this.o = o;
    this.name = o.name;
    this.description = `rclone ${o.remote}`;
  }

  private path(key: string): string {
    const r = this.o.remote;
    if (!key) return r;
    return r.endsWith(':') || r.endsWith('/') ? r + key : `${r}/${key}`;
  }

  private args(args: string[]): string[] {
    return [...(this.o.config ? ['--config', this.o.config] : []), ...BASE_FLAGS, ...this.o.flags, ...args];
  }

  private async run(what: string, args: string[], input?: Buffer): Promise<string> {
    const res = await execa('rclone', this.args(args), {
      input,
      reject: false,
      timeout: this.o.timeoutSeconds * 1000,
      stripFinalNewline: false,
    });
    if (res.failed) throw this.fail(what, res);
    return String(res.stdout);
  }

  private fail(what: string, res: { stderr?: unknown; exitCode?: number; timedOut?: boolean; code?: string; message?: string }): TargetError {
    if (res.code === 'ENOENT' || /spawn rclone ENOENT/.test(res.message ?? '')) {
      return new TargetError(`target ${this.name}: rclone is not installed`, { hint: 'apt-get install rclone (or run make deps)' });
    }
    const lines = String(res.stderr ?? '')
      .split('\n')
      .map((l) => l.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '').trim())
      .filter(Boolean);
    const why = res.timedOut ? `timed out after ${this.o.timeoutSeconds}s` : (lines.slice(-2).join('; ') || `rclone exit code ${res.exitCode}`);
    return new TargetError(`target ${this.name} (${this.description}): ${what} failed: ${why}`, { hint: this.hint() });
  }

  private hint(): string {
    return `check that the remote is reachable and that rclone is configured for it (rclone.conf or RCLONE_CONFIG_* env vars): try \`rclone lsd ${this.o.remote}\``;
  }

  private async supportsMove(): Promise<boolean> {
    if (this.canMove === undefined) {
      const out = await this.run('reading remote features', ['backend', 'features', this.path('')]);
      const features = (JSON.parse(out) as { Features?: Record<string, boolean> }).Features ?? {};
      this.canMove = Boolean(features.Move);
    }
    return this.canMove;
  }

  async check(): Promise<void> {
    await this.run('creating the target directory', ['mkdir', this.path('')]);
    await this.run('listing the target', ['lsf', '--max-depth', '1', this.path('')]);
    await this.supportsMove();
  }

  private async uploadName(key: string): Promise<string> {
    return (await this.supportsMove()) ? key + PARTIAL_SUFFIX : key;
  }

  async put(key: string, src: Readable, signal: AbortSignal): Promise<{ bytes: number }> {
    const name = await this.uploadName(key);
    let bytes = 0;
    const rcat = startFilter(`target ${this.name}: uploading ${key}`, 'rclone', this.args(['rcat', this.path(name)]), signal);
    rcat.stdout.resume();
    const counted = new Transform({ transform: (c: Buffer, _e, cb) => ((bytes += c.length), cb(null, c)) });
    try {
      await Promise.all([pipeline(src, counted, rcat.stdin!), rcat.done]);
    } catch (err) {
      rcat.kill();
      await this.run('removing a partial upload', ['deletefile', this.path(name)]).catch(() => undefined);
      if (signal.aborted) throw signal.reason;
      throw new TargetError(`target ${this.name} (${this.description}): uploading ${key} failed: ${errorMessage(err)}`, { hint: this.hint() });
    }
    return { bytes };
  }

  async publish(key: string): Promise<void> {
    if (!(await this.supportsMove())) return;
    await this.run(`publishing ${key}`, ['moveto', this.path(key + PARTIAL_SUFFIX), this.path(key)]);
  }

  async writeFile(key: string, data: Buffer): Promise<void> {
    const name = await this.uploadName(key);
    await this.run(`writing ${key}`, ['rcat', this.path(name)], data);
    await this.publish(key);
  }

  async readFile(key: string): Promise<Buffer> {
    const res = await execa('rclone', this.args(['cat', this.path(key)]), {
      encoding: 'buffer',
      reject: false,
      timeout: this.o.timeoutSeconds * 1000,
    });
    if (res.failed) throw this.fail(`reading ${key}`, res);
    return Buffer.from(res.stdout);
  }

  open(key: string, signal: AbortSignal): Readable {
    const cat = startFilter(`target ${this.name}: reading ${key}`, 'rclone', this.args(['cat', this.path(key)]), signal);
    cat.stdin!.end();
    cat.done.catch((err: unknown) => {
      if (!signal.aborted) cat.stdout.destroy(new TargetError(`target ${this.name} (${this.description}): ${errorMessage(err)}`, { hint: this.hint() }));
    });
    return cat.stdout;
  }

  async list(prefix: string): Promise<StoredFile[]> {
    let out: string;
    try {
      out = await this.run(`listing ${prefix || '/'}`, ['lsjson', '-R', '--files-only', '--no-mimetype', '--no-modtime', this.path(prefix)]);
    } catch (err) {
      if (/directory not found|not found/i.test((err as Error).message)) return [];
      throw err;
    }
    const entries = JSON.parse(out || '[]') as { Path: string; Size: number }[];
    return entries.map((e) => ({ key: prefix ? `${prefix.replace(/\/$/, '')}/${e.Path}` : e.Path, size: e.Size }));
  }

  async removeFile(key: string): Promise<void> {
    try {
      await this.run(`removing ${key}`, ['deletefile', this.path(key)]);
    } catch (err) {
      if (/not found|doesn't exist/i.test((err as Error).message)) return;
      throw err;
    }
  }

  async removeDir(prefix: string): Promise<void> {
    try {
      await this.run(`removing ${prefix}`, ['purge', this.path(prefix)]);
    } catch (err) {
      if (/directory not found|not found/i.test((err as Error).message)) return;
      throw err;
    }
  }
}
