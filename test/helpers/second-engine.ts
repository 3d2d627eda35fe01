// A second, private Docker Engine (scripts/second-docker.sh): the fresh host of the
// disaster-recovery test, with nothing of the first engine visible to it.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { dockerAt, ROOT } from './harness.ts';

const pexec = promisify(execFile);
const SCRIPT = path.join(ROOT, 'scripts', 'second-docker.sh');

export interface SecondEngine {
  /** Its DOCKER_HOST value. */
  host: string;
  docker: (...args: string[]) => Promise<string>;
  /** Copies images from the first engine (skips those already there). */
  load(images: string[]): Promise<void>;
  /** Removes its containers and volumes and stops it. */
  stop(): Promise<void>;
}

async function run(args: string[]): Promise<void> {
  try {
    await pexec('bash', [SCRIPT, ...args], { maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`second-docker.sh ${args[0]}: ${e.stderr || e.message}`);
  }
}

export async function startSecondEngine(): Promise<SecondEngine> {
  // short: the engine's sockets live below it (unix socket paths are limited to 107 bytes)
  const dir = mkdtempSync('/tmp/sa-d2-');
  const host = `unix://${dir}/docker.sock`;
  try {
    await run(['start', dir]);
  } catch (err) {
    await run(['stop', dir]).catch(() => undefined);
    throw err;
  }
  return {
    host,
    docker: dockerAt(host),
    load: (images) => run(['load', dir, ...images]),
    stop: () => run(['stop', dir]),
  };
}
