// Fault injection for the fault suite (test/e2e/faults-*.test.ts): the real CLI frozen at
// a named point of its data path (agent/testing.ts, $SNAPAGENT_TEST_PAUSE_AT), then
// killed with SIGKILL or let go on.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, type CliResult } from './harness.ts';

export interface Paused {
  pid: number;
  /** Where it stopped: { point, pid, bytes }. */
  at: { point: string; bytes: number };
  /** SIGKILL, as `kill -9` would; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Lets the frozen process go on; `result` then settles with its exit. */
  resume(): void;
  result: Promise<CliResult>;
}

/**
 * Runs `snapagent ...args` until it reaches `point` ("name" or "name:bytes") and freezes
 * there. Fails with the output when the process exits without reaching it.
 */
export async function runUntil(point: string, args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<Paused> {
  const dir = mkdtempSync(path.join(tmpdir(), 'snapagent-pause-'));
  const file = path.join(dir, 'paused');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'snapagent.js'), ...args], {
    env: { ...process.env, SNAPAGENT_LOG_FORMAT: 'json', ...env, SNAPAGENT_TEST_PAUSE_AT: point, SNAPAGENT_TEST_PAUSE_FILE: file },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  let exited = false;
  const result = new Promise<CliResult>((resolve) =>
    child.on('close', (code, sig) => {
      exited = true;
      rmSync(dir, { recursive: true, force: true });
      let json: unknown;
      try {
        json = args.includes('--json') ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? (sig === 'SIGKILL' ? 137 : -1), stdout, stderr, json });
    }),
  );
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (exited) throw new Error(`the agent exited before reaching ${point}:\n${stdout}\n${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the agent did not reach ${point} within ${timeoutMs} ms:\n${stderr}`);
    }
    await sleep(50);
  }
  let at: Paused['at'] = { point, bytes: 0 };
  for (let i = 0; i < 20; i++) {
    try {
      at = JSON.parse(readFileSync(file, 'utf8'));
      break;
    } catch {
      await sleep(50); // written meanwhile
    }
  }
  return {
    pid: child.pid!,
    at,
    kill: async () => {
      child.kill('SIGKILL');
      await result;
    },
    resume: () => writeFileSync(`${file}.resume`, ''),
    result,
  };
}

/** Runs `snapagent ...args` until `point`, then SIGKILLs it there, as `kill -9` would;
 * resolves with where it stopped and its pid once it is gone. */
export async function killAt(point: string, args: string[], env: Record<string, string> = {}): Promise<{ pid: number; at: Paused['at'] }> {
  const p = await runUntil(point, args, env);
  await p.kill();
  return { pid: p.pid, at: p.at };
}
