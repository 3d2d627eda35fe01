// What a run leaves behind: drill containers and volumes still on the engine, files
// with loose modes, secrets in anything written, and the command lines of every process
// that ran meanwhile (secrets must never be on one).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { docker } from './harness.ts';

/** Containers and volumes whose name starts with `snapagent-drill-<job>-`. */
export async function drillLeftovers(job: string): Promise<string[]> {
  const prefix = `snapagent-drill-${job.toLowerCase()}-`;
  const containers = (await docker('ps', '-a', '--format', '{{.Names}}')).split('\n');
  const volumes = (await docker('volume', 'ls', '--format', '{{.Name}}')).split('\n');
  return [...containers, ...volumes].filter((n) => n.startsWith(prefix));
}

/** Whether a container or volume of this name still exists. */
export async function exists(name: string): Promise<boolean> {
  const c = await docker('container', 'inspect', name).then(() => true, () => false);
  return c || (await docker('volume', 'inspect', name).then(() => true, () => false));
}

/** Files and directories under `dir` whose mode is not 0600 (files) / 0700 (dirs). */
export function looseModes(dir: string): string[] {
  const out: string[] = [];
  const check = (p: string) => {
    const st = statSync(p);
    const mode = st.mode & 0o777;
    if ((st.isDirectory() && mode !== 0o700) || (st.isFile() && mode !== 0o600)) out.push(`${p} ${mode.toString(8)}`);
  };
  check(dir);
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) check(path.join(e.parentPath, e.name));
  return out;
}

/** The text of every small file under `dir` (artifacts excluded: they hold the data). */
export function allText(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !/\.(zst|age)$/.test(e.name) && statSync(path.join(e.parentPath, e.name)).size < 10 << 20)
    .map((e) => `${path.join(e.parentPath, e.name)}\n${readFileSync(path.join(e.parentPath, e.name), 'utf8')}`)
    .join('\n');
}

/** Samples the command line of every process on the machine until `until` settles. */
export async function commandLinesDuring<T>(until: Promise<T>): Promise<{ result: T; lines: Set<string> }> {
  const lines = new Set<string>();
  let done = false;
  const result = until.finally(() => (done = true));
  while (!done) {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        lines.add(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { result: await result, lines };
}
