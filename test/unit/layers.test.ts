// The layers of agent/, from the imports of every agent/**/*.ts (parsed by TypeScript's
// own parser): the commands (agent/commands/) are the CLI's edge and nothing in the core
// imports them; only the CLI's wiring (agent/commands/common.ts) picks the plugins
// (plugins/index.ts), the core is handed them in a Context; and agent/ has no import
// cycle among the imports that load a module (`import type` is erased when Node strips
// the types, so it cannot make a loading cycle).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PLUGIN_LIST = 'plugins/index.ts';
const WIRING = 'agent/commands/common.ts';
/** Core files allowed to import the plugin list besides the wiring: none. */
const PLUGIN_LIST_EXCEPTIONS: string[] = [];

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return e.isFile() && e.name.endsWith('.ts') ? [rel] : [];
  });
}

interface Import {
  /** Repo-relative path of the imported file. */
  file: string;
  /** `import type` / `export type`: erased, never loaded. */
  typeOnly: boolean;
}

/** The repo-relative files a source imports (static imports and re-exports, and
 * import() of a literal); packages are left out. */
function importsOf(file: string, text = readFileSync(path.join(ROOT, file), 'utf8')): Import[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: { spec: string; typeOnly: boolean }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) found.push({ spec: node.moduleSpecifier.text, typeOnly: Boolean(node.importClause?.isTypeOnly) });
    else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) found.push({ spec: node.moduleSpecifier.text, typeOnly: node.isTypeOnly });
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) found.push({ spec: node.arguments[0].text, typeOnly: false });
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found.filter((i) => i.spec.startsWith('.')).map((i) => ({ file: path.posix.normalize(path.posix.join(path.posix.dirname(file), i.spec)), typeOnly: i.typeOnly }));
}

const files = sources('agent');
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const importersOf = (target: (f: string) => boolean) => [...graph].filter(([, deps]) => deps.some((d) => target(d.file))).map(([f]) => f).sort();

/** Every cycle's files, one entry per strongly connected component of more than one file
 * (or a file that imports itself). */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || g.get(v)!.includes(v)) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) connect(v);
  return out;
}

describe('layers of agent/', () => {
  it('the import parser sees every form of import', () => {
    const text = "import a from './a.ts';\nimport type { B } from '../b.ts';\nimport {\n  c,\n  d,\n} from './c/d.ts';\nimport './side.ts';\nexport { e } from './e.ts';\nexport * from './f.ts';\nconst g = await import('./g.ts');\nimport x from 'node:fs';\n// import z from './comment.ts';\n";
    assert.deepEqual(
      importsOf('agent/x/y.ts', text).map((i) => `${i.file}${i.typeOnly ? ' (type)' : ''}`),
      ['agent/x/a.ts', 'agent/b.ts (type)', 'agent/x/c/d.ts', 'agent/x/side.ts', 'agent/x/e.ts', 'agent/x/f.ts', 'agent/x/g.ts'],
    );
    assert.ok(files.length > 50 && files.includes(WIRING), `found ${files.length} files under agent/`);
  });

  it('nothing outside agent/commands/ imports a command, but the CLI (agent/cli.ts)', () => {
    const outside = importersOf((d) => d.startsWith('agent/commands/')).filter((f) => !f.startsWith('agent/commands/') && f !== 'agent/cli.ts');
    assert.deepEqual(outside, [], 'the core must not reach into the commands: move what it needs into the core');
    // bin/ starts the CLI, and only the CLI
    const bin = readFileSync(path.join(ROOT, 'bin/snapagent.js'), 'utf8');
    assert.doesNotMatch(bin, /agent['"/,\s]+commands/);
  });

  it(`only ${WIRING} imports ${PLUGIN_LIST}: the core is handed the plugin registry`, () => {
    const importers = importersOf((d) => d === PLUGIN_LIST);
    assert.ok(importers.includes(WIRING), `${WIRING} no longer imports ${PLUGIN_LIST}: update this test`);
    assert.deepEqual(
      importers.filter((f) => f !== WIRING && !PLUGIN_LIST_EXCEPTIONS.includes(f)),
      [],
      'take the registry from the Context (agent/context.ts) instead',
    );
  });

  it('has no import cycle', () => {
    const loads = new Map([...graph].map(([f, deps]) => [f, deps.filter((d) => !d.typeOnly).map((d) => d.file)]));
    assert.deepEqual(cycles(loads), []);
    // the detector itself finds one
    assert.deepEqual(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), [['a', 'b', 'c']]);
  });
});
