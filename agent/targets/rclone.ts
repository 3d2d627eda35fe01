// Any rclone remote ("s3:bucket/path", "sftp:backups", a crypt remote...). Credentials
// stay in rclone's own config file or RCLONE_* env vars: nothing secret is ever put on
// the rclone command line. Uploads stream through `rclone rcat` under a ".partial"
// name and are published with a server-side move; on remotes without one (S3), the
// upload goes straight to its final name, which S3 only shows once it is complete.
// Failures: rclone retries each request (--low-level-retries, with backoff; S3 streams
// are uploaded in parts, each retried). A whole call that still failed is tried again
// by the agent (`retries`, backoff) when it may pass — a network error, a 5xx — and when
// it can be: listings, reads, moves, deletes, the manifest's small write. Refused
// credentials, a missing bucket or a bad rclone config fail at once, saying what to
// fix. A streamed upload is never retried whole: its bytes cannot be produced again.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { errorMessage, TargetError } from '../errors.ts';
import { log } from '../log.ts';
import { startFilter } from '../pipeline/filter-process.ts';
import { PARTIAL_SUFFIX, type StoredFile, type Target } from './target.ts';

export interface RcloneOptions {
  name: string;
  remote: string;
  config?: string;
  flags: string[];
  timeoutSeconds: number;
  /** Further attempts of a call that failed in a way that may pass. */
  retries: number;
}

// --retries 1: rclone's own whole-command retries come without backoff and also repeat
// permanent failures; the agent's (run()) do neither.
const BASE_FLAGS = ['--contimeout', '10s', '--low-level-retries', '3', '--retries', '1', '--stats', '0', '--log-level', 'ERROR'];

// What rclone says when trying again cannot help.
const REFUSED = /status code: 40[13]\b|SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|\bForbidden\b|\bUnauthorized\b|unable to authenticate|authentication failed|permission denied/i;
const MISSING = /NoSuchBucket|bucket does not exist|directory not found|object not found|not found|doesn't exist|no such file/i;
// `rclone cat` of a path that is no file reads it as a directory: on a bucket remote (S3)
// a missing key is an empty directory, and cat exits 0 having written nothing. With this
// flag it exits NO_FILE instead (also for an empty object, told apart by a stat).
const NO_FILE_FLAG = '--error-on-no-transfer';
const NO_FILE = 9;
const MISCONFIGURED = /didn't find section in config file|unknown flag|couldn't find type|unknown command|unknown backend/i;

/** A failed rclone call; `transient` when the same call may succeed later. */
class RcloneFailure extends TargetError {
  readonly transient: boolean;
  /** `cat` read no file (see NO_FILE). */
  readonly noFile: boolean;
  constructor(message: string, hint: string, transient: boolean, noFile = false) {
    super(message, { hint });
    this.transient = transient;
    this.noFile = noFile;
  }
}

export class RcloneTarget implements Target {
  readonly name: string;
  readonly description: string;
  /** rclone processes started by this target, by command (lsjson, cat, rcat...): each is
   * at least one request to the remote. For tests and benchmarks. */
  readonly calls = new Map<string, number>();
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
    this.calls.set(args[0]!, (this.calls.get(args[0]!) ?? 0) + 1);
    return [...(this.o.config ? ['--config', this.o.config] : []), ...BASE_FLAGS, ...this.o.flags, ...args];
  }

  private async run(what: string, args: string[], input?: Buffer): Promise<string> {
    const { execa } = await import('execa'); // loaded with the first rclone call, not by every command
    return String(await this.call(what, () => execa('rclone', this.args(args), { input, reject: false, timeout: this.o.timeoutSeconds * 1000, stripFinalNewline: false })));
  }

  // One rclone call; tried again (2 s, 4 s... randomized) while it fails in a way that may pass.
  private async call<T>(what: string, exec: () => Promise<{ failed: boolean; stdout: T; stderr?: unknown; exitCode?: number; timedOut?: boolean; code?: string; message?: string }>): Promise<T> {
    const { default: pRetry } = await import('p-retry');
    let attempts = 0;
    try {
      return await pRetry(
        async () => {
          attempts++;
          const res = await exec();
          if (res.failed) throw this.fail(what, res);
          return res.stdout;
        },
        {
          retries: this.o.retries,
          minTimeout: 2000,
          factor: 2,
          randomize: true,
          shouldRetry: ({ error }) => error instanceof RcloneFailure && error.transient,
          onFailedAttempt: ({ error, retriesLeft, retryDelay }) => {
            if (retriesLeft > 0 && error instanceof RcloneFailure && error.transient) log.warn({ target: this.name, attempt: attempts, retry_in_ms: retryDelay }, `${error.message}; trying again`);
          },
        },
      );
    } catch (err) {
      if (!(err instanceof RcloneFailure) || attempts < 2) throw err;
      throw new RcloneFailure(`${err.message} (${attempts} attempts)`, err.hint ?? this.hint(), err.transient);
    }
  }

  private fail(what: string, res: { stderr?: unknown; exitCode?: number; timedOut?: boolean; code?: string; message?: string }): TargetError {
    if (res.code === 'ENOENT' || /spawn rclone ENOENT/.test(res.message ?? '')) {
      return new TargetError(`target ${this.name}: rclone is not installed`, { hint: 'apt-get install rclone (or run make deps)' });
    }
    // readFile runs execa with encoding 'buffer': its stderr is bytes too
    const stderr = res.stderr instanceof Uint8Array ? Buffer.from(res.stderr).toString('utf8') : String(res.stderr ?? '');
    const lines = stderr
      .split('\n')
      .map((l) => l.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '').trim())
      .filter(Boolean);
    if (res.exitCode === NO_FILE) lines.push('no such file');
    const why = res.timedOut ? `timed out after ${this.o.timeoutSeconds}s` : (lines.slice(-2).join('; ') || `rclone exit code ${res.exitCode}`);
    const message = `target ${this.name} (${this.description}): ${what} failed: ${why}`;
    const said = lines.join('\n');
    // a call that hung for timeout_seconds is not tried again: that could take hours
    if (res.timedOut) return new RcloneFailure(message, this.hint(), false);
    if (REFUSED.test(said)) return new RcloneFailure(message, this.refusedHint(), false);
    if (MISCONFIGURED.test(said)) return new RcloneFailure(message, `fix the rclone configuration of ${this.remoteName()} (rclone.conf or RCLONE_CONFIG_${this.remoteName().toUpperCase()}_* env vars) or the target's flags`, false);
    if (MISSING.test(said)) return new RcloneFailure(message, `the bucket or directory (or file) does not exist on the remote: create the bucket, or fix the target's remote "${this.o.remote}"; \`rclone lsd ${this.remoteName()}:\` lists what there is`, false, res.exitCode === NO_FILE);
    return new RcloneFailure(message, this.hint(), true);
  }

  private remoteName(): string {
    return this.o.remote.slice(0, this.o.remote.indexOf(':'));
  }

  private hint(): string {
    return `check that the remote is reachable and that rclone is configured for it (rclone.conf or RCLONE_CONFIG_* env vars): try \`rclone lsd ${this.o.remote}\``;
  }

  private refusedHint(): string {
    const r = this.remoteName();
    return `the remote refused the credentials: check the keys (or user and password) of remote "${r}" in rclone.conf or RCLONE_CONFIG_${r.toUpperCase()}_* env vars, and that they may list, read and write ${this.o.remote}`;
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
    // A directory that exists and lists may still refuse writes: write and remove a probe.
    const probe = `.snapagent-probe-${randomBytes(6).toString('hex')}`;
    await this.run('writing to the target', ['rcat', this.path(probe)], Buffer.from('snapagent\n'));
    await this.run('removing the probe file', ['deletefile', this.path(probe)]);
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
    if (!(await this.supportsMove())) {
      // one PUT: the object appears whole or not at all
      await this.run(`writing ${key}`, ['rcat', this.path(key)], data);
      return;
    }
    // A temporary name of its own: two writers of one key must not share one.
    const tmp = `${key}.${randomBytes(6).toString('hex')}${PARTIAL_SUFFIX}`;
    try {
      await this.run(`writing ${key}`, ['rcat', this.path(tmp)], data);
      await this.run(`publishing ${key}`, ['moveto', this.path(tmp), this.path(key)]);
    } catch (err) {
      await this.run('removing a partial upload', ['deletefile', this.path(tmp)]).catch(() => undefined);
      throw err;
    }
  }

  // Whether `key` is an empty file (`cat` said NO_FILE: an empty object, or nothing).
  private async isEmptyFile(key: string): Promise<boolean> {
    const out = await this.run(`reading ${key}`, ['lsjson', '--stat', '--no-mimetype', '--no-modtime', this.path(key)]).catch(() => '{}');
    const st = JSON.parse(out || '{}') as { IsDir?: boolean; Size?: number };
    return st.IsDir === false && st.Size === 0;
  }

  async readFile(key: string): Promise<Buffer> {
    const { execa } = await import('execa');
    try {
      return Buffer.from(await this.call(`reading ${key}`, () => execa('rclone', this.args(['cat', NO_FILE_FLAG, this.path(key)]), { encoding: 'buffer', stripFinalNewline: false, reject: false, timeout: this.o.timeoutSeconds * 1000 })));
    } catch (err) {
      if (err instanceof RcloneFailure && err.noFile && (await this.isEmptyFile(key))) return Buffer.alloc(0);
      throw err;
    }
  }

  // The stream ends only once `rclone cat` exited 0: a failure (or an abort) that cuts
  // the file short is an error on the stream, never a clean short end.
  open(key: string, signal: AbortSignal): Readable {
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    const cat = spawn('rclone', this.args(['cat', NO_FILE_FLAG, this.path(key)]), { stdio: ['ignore', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
    let stderr = '';
    cat.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4096)));
    let spawnError: NodeJS.ErrnoException | undefined;
    let killedBy: string | null = null;
    const exited = new Promise<number | null>((resolve) => {
      cat.on('error', (err: NodeJS.ErrnoException) => (spawnError = err));
      cat.on('close', (code, sig) => resolve(((killedBy = sig), code)));
    });
    cat.stdout.pipe(out, { end: false });
    // a consumer that stopped early: rclone must not wait on a full pipe for ever
    out.on('close', () => cat.exitCode === null && cat.kill('SIGKILL'));
    Promise.all([exited, finished(cat.stdout).catch(() => undefined)])
      .then(async ([code]) => {
        if (signal.aborted) throw signal.reason ?? new Error('aborted');
        if (code === 0) return out.end();
        const err = this.fail(`reading ${key}`, { stderr: stderr || (killedBy ? `rclone was killed by ${killedBy}` : ''), exitCode: code ?? undefined, code: spawnError?.code, message: spawnError?.message });
        if (code === NO_FILE && (await this.isEmptyFile(key))) return out.end();
        throw err;
      })
      .catch((err: unknown) => out.destroy(err as Error));
    return out;
  }

  // --use-server-modtime: on S3 (and Swift) a file's own mtime is metadata that costs a
  // HEAD per object; the server's LastModified comes with the listing, and changes on
  // every write, which is all the catalog index needs.
  async list(prefix: string): Promise<StoredFile[]> {
    let out: string;
    try {
      out = await this.run(`listing ${prefix || '/'}`, ['lsjson', '-R', '--files-only', '--no-mimetype', '--use-server-modtime', this.path(prefix)]);
    } catch (err) {
      if (/directory not found|not found/i.test((err as Error).message)) return [];
      throw err;
    }
    const entries = JSON.parse(out || '[]') as { Path: string; Size: number; ModTime?: string }[];
    return entries.map((e) => ({ key: prefix ? `${prefix.replace(/\/$/, '')}/${e.Path}` : e.Path, size: e.Size, ...(e.ModTime ? { modified: e.ModTime } : {}) }));
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
