// A real S3-compatible server on 127.0.0.1: `rclone serve s3` (built by
// scripts/build-s3-server.sh, cached) over a temp directory, with a random key pair
// given through its environment (never its command line). The agent reaches it through
// RCLONE_CONFIG_<NAME>_* env vars, as an operator would configure a bucket.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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
  stop(): Promise<void>;
}

export async function startS3Server(): Promise<S3Server> {
  const { stdout } = await promisify(execFile)('bash', [path.join(ROOT, 'scripts', 'build-s3-server.sh')], { maxBuffer: 64 * 1024 * 1024 });
  const bin = stdout.trim().split('\n').pop()!;
  const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-s3-'));
  const root = path.join(dir, 'data');
  mkdirSync(root);
  const key = `AK${randomBytes(8).toString('hex')}`;
  const secret = randomBytes(20).toString('hex');
  // rclone reads list flags from the environment as CSV: quote the "key,secret" pair
  const server = spawn(bin, ['serve', 's3', '--addr', '127.0.0.1:0', '--config', path.join(dir, 'rclone.conf'), root], {
    env: { ...process.env, RCLONE_AUTH_KEY: `"${key},${secret}"` },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`rclone serve s3 did not start:\n${log}`)), 30_000);
    server.stderr!.on('data', (c) => {
      log += c;
      const m = /Starting s3 server on \[http:\/\/127\.0\.0\.1:(\d+)\//.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    server.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`rclone serve s3 exited (${code}):\n${log}`));
    });
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
