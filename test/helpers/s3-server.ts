// A real S3-compatible server on 127.0.0.1: `rclone serve s3` (built by
// scripts/build-s3-server.sh, cached) over a temp directory, with a random key pair
// given through its environment (never its command line). The agent reaches it through
// RCLONE_CONFIG_<NAME>_* env vars, as an operator would configure a bucket.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './harness.ts';

export interface S3Server {
  /** The directory holding the buckets (one folder per bucket). */
  root: string;
  port: number;
  /** RCLONE_CONFIG_* variables defining the remote `name` (plus AWS_CA_BUNDLE emptied:
   * rclone 1.60's S3 client fails on a custom CA bundle with its own transport). */
  env(name: string): Record<string, string>;
  /** Requests the server answered so far (started with `countRequests`; else 0). */
  requests(): number;
  stop(): Promise<void>;
}

/** `countRequests`: the server logs every request (rclone's -vv) and `requests()` counts
 * them, for tests and benches that measure how many calls the agent makes. */
export async function startS3Server(o: { countRequests?: boolean } = {}): Promise<S3Server> {
  const { stdout } = await promisify(execFile)('bash', [path.join(ROOT, 'scripts', 'build-s3-server.sh')], { maxBuffer: 64 * 1024 * 1024 });
  const bin = stdout.trim().split('\n').pop()!;
  const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-s3-'));
  const root = path.join(dir, 'data');
  mkdirSync(root);
  const key = `AK${randomBytes(8).toString('hex')}`;
  const secret = randomBytes(20).toString('hex');
  // The server logs into a file, not a pipe: a caller blocked in spawnSync (a bench's
  // `rclone copy`) would not drain a pipe, and a full one stalls the server.
  const logFile = path.join(dir, 'server.log');
  const logFd = openSync(logFile, 'a', 0o600);
  // rclone reads list flags from the environment as CSV: quote the "key,secret" pair
  const server = spawn(bin, ['serve', 's3', '--addr', '127.0.0.1:0', '--config', path.join(dir, 'rclone.conf'), ...(o.countRequests ? ['-vv'] : []), root], {
    env: { ...process.env, RCLONE_AUTH_KEY: `"${key},${secret}"` },
    stdio: ['ignore', 'ignore', logFd],
  });
  closeSync(logFd);
  const log = () => readFileSync(logFile, 'utf8');
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`rclone serve s3 did not start:\n${log()}`)), 30_000);
    const poll = setInterval(() => {
      const m = /Starting s3 server on \[http:\/\/127\.0\.0\.1:(\d+)\//.exec(log());
      if (m) done(undefined, Number(m[1]));
    }, 50);
    const onExit = (code: number | null) => done(new Error(`rclone serve s3 exited (${code}):\n${log()}`));
    server.on('exit', onExit);
    function done(err: Error | undefined, p?: number) {
      clearTimeout(timer);
      clearInterval(poll);
      server.off('exit', onExit);
      if (err) reject(err);
      else resolve(p!);
    }
  });
  return {
    root,
    port,
    env: (name) => {
      const p = `RCLONE_CONFIG_${name.toUpperCase()}_`;
      return {
        [`${p}TYPE`]: 's3',
        [`${p}PROVIDER`]: 'Other',
        [`${p}ENDPOINT`]: `http://127.0.0.1:${port}`,
        [`${p}ACCESS_KEY_ID`]: key,
        [`${p}SECRET_ACCESS_KEY`]: secret,
        AWS_CA_BUNDLE: '',
      };
    },
    // "serve s3: GET OBJECT …", "serve s3: LIST BUCKET": one line per request
    requests: () => (o.countRequests ? (log().match(/serve s3: (?:GET|PUT|HEAD|POST|DELETE|LIST|COPY|CREATE)\b/g)?.length ?? 0) : 0),
    stop: async () => {
      server.removeAllListeners('exit');
      if (server.exitCode === null) {
        const exited = new Promise((r) => server.once('exit', r));
        server.kill();
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
