// Runs the FAKE mongos (fake-mongos.py: a scripted wire-protocol server on Debian's
// python3-mockupdb; no real sharded cluster can be had here) and collects the commands it
// received. Debian's python3, where the package installs (a python3 earlier on the PATH,
// e.g. pyenv's, does not see it). A missing package fails the test, never skips it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(import.meta.dirname, 'fake-mongos.py');
const MISSING = 'the fake mongos needs python3-mockupdb: apt-get install python3-mockupdb (scripts/system-deps.sh installs it)';

export interface Command {
  cmd: string;
  /** The client's port: one per connection. */
  conn: number;
  doc: Record<string, unknown>;
}

export interface FakeMongos {
  port: number;
  /** Stops the fake; every command it received, in order. */
  stop(): Promise<Command[]>;
}

/** The connection handshake and heartbeats, and the driver's session cleanup. */
export const DRIVER_HOUSEKEEPING = new Set(['hello', 'ismaster', 'isMaster', 'endSessions']);

export async function startFakeMongos(opts: { balancer?: 'full' | 'off'; fail?: string[] } = {}): Promise<FakeMongos> {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing; ${MISSING}`);
  const args = [SCRIPT, '--balancer', opts.balancer ?? 'full', ...(opts.fail ?? []).flatMap((c) => ['--fail', c])];
  const child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const commands: Command[] = [];
  let port = 0;
  const lines = createInterface({ input: child.stdout });
  const listening = new Promise<number>((resolve, reject) => {
    lines.on('line', (l) => {
      const j = JSON.parse(l);
      if (!port) resolve((port = j.port));
      else commands.push(j);
    });
    child.on('error', reject);
    void exited.then((code) => reject(new Error(`the fake mongos exited (${code}) before listening: ${stderr.trim()}${/mockupdb/.test(stderr) ? `; ${MISSING}` : ''}`)));
  });
  return {
    port: await listening,
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      return commands;
    },
  };
}
