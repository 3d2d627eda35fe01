// Shared test harness: runs the real CLI and the real Docker CLI. Tests that need
// Docker fail (never skip) when no engine answers.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const pexec = promisify(execFile);
export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const HELPER = 'snapagent/helper:latest';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json?: any;
}

/** Runs `snapagent ...args` as a user would (bin/snapagent.js), with optional env. */
export function snapagent(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'snapagent.js'), ...args], {
      env: { ...process.env, SNAPAGENT_LOG_FORMAT: 'json', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.stdin.end(stdin ?? '');
    child.on('error', reject);
    child.on('close', (code) => {
      let json: unknown;
      if (args.includes('--json')) {
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
      }
      resolve({ code: code ?? -1, stdout, stderr, json });
    });
  });
}

// libfaketime (Debian package "faketime") moves the agent's clock: Node's Date.now() and
// its timers follow it. The agent has no clock override of its own.
function faketimeLibrary(): string {
  const dirs = ['/usr/lib/faketime', ...readdirSync('/usr/lib').filter((d) => d.endsWith('-linux-gnu')).map((d) => `/usr/lib/${d}/faketime`)];
  const lib = dirs.map((d) => `${d}/libfaketime.so.1`).find((f) => existsSync(f));
  if (!lib) throw new Error('libfaketime is missing: apt-get install faketime (make deps installs it)');
  return lib;
}

/** Env for a CLI process whose clock starts at `at` (e.g. "2030-01-08 23:59:56", in zone `tz`) and ticks on. */
export function fakeClock(at: string, tz = 'UTC'): Record<string, string> {
  return { LD_PRELOAD: faketimeLibrary(), FAKETIME: `@${at}`, TZ: tz };
}

/** Env for a CLI process that sees the clock `seconds` ahead of the real one. */
export function fakeClockAhead(seconds: number): Record<string, string> {
  return { LD_PRELOAD: faketimeLibrary(), FAKETIME: `+${seconds}s` };
}

export interface Running {
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** stdout alone (the --json document). */
  stdout(): string;
  /** Resolves with the exit code (or 128 + signal). */
  exited: Promise<number>;
  /** Resolves once a JSON log line matches (rejects after `timeoutMs`, or if the process exits first). */
  waitForLog(match: (line: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
}

/** Starts `snapagent ...args` in the background (the daemon, or a run to race against). */
export function startSnapagent(args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'snapagent.js'), ...args], {
    env: { ...process.env, SNAPAGENT_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  const waiters: (() => void)[] = [];
  const onData = (c: Buffer) => {
    out += c;
    for (const w of waiters) w();
  };
  child.stdout!.on('data', (c: Buffer) => ((stdout += c), onData(c)));
  child.stderr!.on('data', onData);
  const exited = new Promise<number>((resolve) => child.on('close', (code, sig) => resolve(code ?? 128 + (sig === 'SIGKILL' ? 9 : 15))));
  const waitForLog = (match: (line: Record<string, any>) => boolean, timeoutMs = 60_000) =>
    new Promise<Record<string, any>>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error, hit?: Record<string, any>) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(hit!);
      };
      const check = () => {
        const hit = logLines(out).find(match);
        if (hit) finish(undefined, hit);
      };
      const timer = setTimeout(() => finish(new Error(`no matching log line within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
      waiters.push(check);
      void exited.then(() => setImmediate(() => (check(), finish(new Error(`the agent exited before a matching log line; output:\n${out}`)))));
      check();
    });
  return { child, output: () => out, stdout: () => stdout, exited, waitForLog };
}

/** The JSON log lines in a CLI output. */
export function logLines(text: string): Record<string, any>[] {
  return text.split('\n').flatMap((l) => {
    try {
      const v = JSON.parse(l);
      return v && typeof v === 'object' && 'msg' in v ? [v as Record<string, any>] : [];
    } catch {
      return [];
    }
  });
}

/** Runs `make ...args` in the repo as an operator would (JSON logs, `env` added): `out` is
 * stdout and stderr together, as a terminal shows them. */
export function make(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('make', ['--no-print-directory', '-C', ROOT, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SNAPAGENT_LOG_FORMAT: 'json', ...env } });
    let out = '';
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => ((out += c), (stdout += c)));
    child.stderr.on('data', (c) => ((out += c), (stderr += c)));
    child.on('close', (code) => resolve({ code: code ?? -1, out, stdout, stderr }));
  });
}

export async function docker(...args: string[]): Promise<string> {
  return dockerAt(undefined)(...args);
}

/** The Docker CLI against the engine at `host` (a DOCKER_HOST value; undefined: the default one). */
export function dockerAt(host: string | undefined): (...args: string[]) => Promise<string> {
  const env = host ? { ...process.env, DOCKER_HOST: host } : process.env;
  return async (...args) => {
    try {
      const { stdout } = await pexec('docker', args, { maxBuffer: 256 * 1024 * 1024, env });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`docker ${args.join(' ')}${host ? ` (at ${host})` : ''}: ${e.stderr || e.message}`);
    }
  };
}

/** Fails loudly (never skips) when the Docker Engine, the helper image or one of
 * `images` is missing. */
export async function requireDocker(...images: string[]): Promise<void> {
  try {
    await pexec('docker', ['version', '--format', '{{.Server.Version}}']);
  } catch (err) {
    throw new Error(`these tests need a running Docker Engine (run \`make deps\`): ${(err as Error).message}`);
  }
  for (const image of [HELPER, ...images]) {
    try {
      await pexec('docker', ['image', 'inspect', image]);
    } catch {
      throw new Error(`image ${image} is missing: run \`make images\``);
    }
  }
}

/** A container command that stops promptly on SIGTERM (sleep as PID 1 would ignore it). */
export const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 600 & wait'];

export function uniq(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** The backup directories in a local target's job directory, sorted (not the job's
 * catalog index, catalog.json[.sig], nor anything else not named like a backup id). */
export function backupIds(jobDir: string): string[] {
  return readdirSync(jobDir).filter((n) => /^\d{8}T\d{6}Z(-[A-Za-z0-9_.-]+)?$/.test(n)).sort();
}

/** Runs a shell script in a throwaway helper container with the volume at /v. */
export async function inVolume(volume: string, script: string, readOnly = false): Promise<string> {
  return docker('run', '--rm', '--network', 'none', '-v', `${volume}:/v${readOnly ? ':ro' : ''}`, HELPER, 'bash', '-c', script);
}

export interface Workspace {
  dir: string;
  config: string;
  backups: string;
  cleanup(): void;
}

/** A temp dir with a config file; `yaml` may use ${BACKUPS} and ${STATE}. */
export function workspace(yaml: string): Workspace {
  const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-test-'));
  const backups = path.join(dir, 'backups');
  const config = path.join(dir, 'snapagent.yml');
  writeFileSync(config, yaml.replaceAll('${BACKUPS}', backups).replaceAll('${STATE}', path.join(dir, 'state')));
  return { dir, config, backups, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A workspace whose config has one job (`container` or `volume` by plugin) and a local target. */
export function jobWorkspace(job: string, plugin: string, source: string): Workspace {
  return workspace(`
targets: [{ name: local, type: local, path: \${BACKUPS} }]
jobs: [{ name: ${job}, plugin: ${plugin}, ${plugin === 'volume' ? 'volume' : 'container'}: ${source} }]
discovery: { labels: false }
state_dir: \${STATE}
`);
}

/** Whether the container is running now. */
export async function isRunning(container: string): Promise<boolean> {
  return (await docker('inspect', '--format', '{{.State.Running}}', container)).trim() === 'true';
}

export async function removeVolume(name: string): Promise<void> {
  await docker('volume', 'rm', '-f', name).catch(() => undefined);
}

export async function removeContainer(name: string): Promise<void> {
  await docker('rm', '-f', name).catch(() => undefined);
}

/** Damages a stored file: inverts the bits of its middle byte. */
export function flipByte(file: string, mask = 0xff): void {
  const fd = openSync(file, 'r+');
  const pos = Math.floor(statSync(file).size / 2);
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, pos);
  b[0] = b[0]! ^ mask;
  writeSync(fd, b, 0, 1, pos);
  closeSync(fd);
}
