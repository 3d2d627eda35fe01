// Shared test harness: runs the real CLI and the real Docker CLI. Tests that need
// Docker fail (never skip) when no engine answers.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/** Fails loudly when the Docker Engine or the helper image is missing. */
export async function requireDocker(): Promise<void> {
  try {
    await pexec('docker', ['version', '--format', '{{.Server.Version}}']);
  } catch (err) {
    throw new Error(`these tests need a running Docker Engine (run \`make deps\`): ${(err as Error).message}`);
  }
  try {
    await pexec('docker', ['image', 'inspect', HELPER]);
  } catch {
    throw new Error(`image ${HELPER} is missing: run \`make images\``);
  }
}

/** A container command that stops promptly on SIGTERM (sleep as PID 1 would ignore it). */
export const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 600 & wait'];

export function uniq(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
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

export async function removeVolume(name: string): Promise<void> {
  await docker('volume', 'rm', '-f', name).catch(() => undefined);
}

export async function removeContainer(name: string): Promise<void> {
  await docker('rm', '-f', name).catch(() => undefined);
}
