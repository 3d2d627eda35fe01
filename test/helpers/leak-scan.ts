// One secret-leak scan for the e2e tests: every form a secret takes once written (raw,
// JSON-escaped once and twice, \u-escaped, URL-encoded), looked for in texts (stdout,
// stderr, --json documents, received webhooks), in every byte of every file under a
// directory (target, state dir, metrics), and in the command line of every process on the
// machine, sampled (`ps -ewwo args`) every 100 ms while a run lasts. Written apart from
// the agent's own redaction (agent/secret-forms.ts) so that a form the agent forgets is
// still found here. `leaksIn` is the one-call form for a test's outputs and directories.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const pexec = promisify(execFile);

const inner = (s: string) => JSON.stringify(s).slice(1, -1);

/** The forms of `secret` a leak can take, each with its name. */
export function leakForms(secret: string): [string, string][] {
  const forms: [string, string][] = [
    ['raw', secret],
    ['JSON-escaped', inner(secret)],
    ['JSON-escaped twice', inner(inner(secret))],
    ['\\u-escaped', inner(secret).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)],
    ['URL-encoded', encodeURIComponent(secret)],
    ['URI-encoded', encodeURI(secret)],
    ['form-encoded', new URLSearchParams({ s: secret }).toString().slice(2)],
  ];
  return forms.filter(([, f], i) => forms.findIndex(([, g]) => g === f) === i);
}

export class LeakScan {
  /** "<secret name> (<form>) in <where>" for each hit. */
  readonly hits: string[] = [];
  private readonly needles: { name: string; form: string; bytes: Buffer }[];
  private samples = 0;

  /** `secrets`: a name for each secret value (the name is what a failure shows). */
  constructor(secrets: Record<string, string>) {
    this.needles = Object.entries(secrets).flatMap(([name, s]) => leakForms(s).map(([form, f]) => ({ name, form, bytes: Buffer.from(f) })));
  }

  /** Scans a text or bytes (an output, a document, a request body). */
  scan(where: string, content: string | Buffer): void {
    const buf = typeof content === 'string' ? Buffer.from(content) : content;
    for (const n of this.needles) if (buf.includes(n.bytes)) this.hits.push(`${n.name} (${n.form}) in ${where}`);
  }

  /** Scans every file under `dir` that `accept` takes (default: every byte of every
   * file, artifacts included); returns how many. */
  scanDir(dir: string, accept: (file: string) => boolean = () => true): number {
    const files = readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.join(e.parentPath, e.name))
      .filter(accept);
    for (const file of files) this.scan(file, readFileSync(file));
    return files.length;
  }

  /** Samples every process's command line every 100 ms until `until` settles; also scans
   * the CLI result's stdout and stderr when it has them. */
  async during<T>(what: string, until: Promise<T>): Promise<T> {
    let done = false;
    const result = until.finally(() => (done = true));
    const sample = async () => {
      const { stdout } = await pexec('ps', ['-ewwo', 'args'], { maxBuffer: 64 << 20 });
      this.samples++;
      this.scan(`ps during ${what}`, stdout);
    };
    while (!done) {
      await Promise.all([sample(), new Promise((r) => setTimeout(r, 100))]);
    }
    await sample();
    const r = await result;
    const out = r as { stdout?: unknown; stderr?: unknown };
    if (typeof out?.stdout === 'string') this.scan(`stdout of ${what}`, out.stdout);
    if (typeof out?.stderr === 'string') this.scan(`stderr of ${what}`, out.stderr);
    return r;
  }

  /** How many `ps` samples were taken (a test checks the sampler ran). */
  get psSamples(): number {
    return this.samples;
  }
}

/**
 * Every leak of `secrets` (by name; a list is named by position) in `outputs` (texts by
 * name, or a list) and in the files under `dirs` that `files` accepts (default: all):
 * "<secret> (<form>) in <where>" for each hit, [] when there is none.
 */
export function leaksIn(
  outputs: Record<string, string | Buffer> | (string | Buffer)[],
  secrets: Record<string, string> | string[],
  where: { dirs?: string[]; files?: (file: string) => boolean } = {},
): string[] {
  const named = (x: Record<string, string> | string[]) => (Array.isArray(x) ? Object.fromEntries(x.map((s, i) => [`secret ${i + 1}`, s])) : x);
  const scan = new LeakScan(named(secrets));
  for (const [name, text] of Array.isArray(outputs) ? outputs.map((o, i) => [`output ${i + 1}`, o] as const) : Object.entries(outputs)) scan.scan(name, text);
  for (const dir of where.dirs ?? []) scan.scanDir(dir, where.files);
  return scan.hits;
}

/** For `leaksIn`'s `files`: the JSON files only (manifests, check records, state). */
export const jsonFiles = (file: string): boolean => file.endsWith('.json');
