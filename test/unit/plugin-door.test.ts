// One door for plugins: a plugin imports from the agent only the plugin kit
// (agent/plugin/index.ts), never another plugin's folder; only the registry
// (plugins/index.ts) reaches into the folders, through their index.ts. Every plugin
// folder has the same shape (index.ts, options.ts, README.md), and the kit depends on
// nothing above it (no restore, backup or command code, no plugin).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

const root = path.resolve(import.meta.dirname, '../..');
const rel = (p: string) => path.relative(root, p).split(path.sep).join('/');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}

/** Every module specifier of a file: static imports and re-exports (also over several
 * lines), side-effect imports and dynamic import() of a string. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

const pluginsDir = path.join(root, 'plugins');
const folders = readdirSync(pluginsDir).filter((n) => statSync(path.join(pluginsDir, n)).isDirectory());
const KIT = 'agent/plugin/index.ts';

describe('one door for plugins', () => {
  it('finds the plugins and their imports', () => {
    assert.ok(folders.length >= 5, folders.join(', '));
    assert.ok(specifiers(path.join(pluginsDir, 'volume', 'index.ts')).includes('../../agent/plugin/index.ts'));
  });

  it('a plugin imports from the agent only the kit, and nothing of another plugin', () => {
    const bad: string[] = [];
    for (const file of tsFiles(pluginsDir)) {
      const own = rel(file).split('/')[1]!; // plugins/<folder>/... (or index.ts: the registry)
      const registry = rel(file) === 'plugins/index.ts';
      for (const s of specifiers(file)) {
        if (s.startsWith('node:')) continue;
        if (!s.startsWith('.')) {
          if (s.startsWith('/')) bad.push(`${rel(file)}: ${s}`);
          continue; // an npm package
        }
        const to = rel(path.resolve(path.dirname(file), s));
        if (to.startsWith('agent/')) {
          if (to !== KIT) bad.push(`${rel(file)} imports ${to} (only ${KIT})`);
        } else if (to.startsWith('plugins/')) {
          const folder = to.split('/')[1]!;
          if (registry ? !/^plugins\/[^/]+\/index\.ts$/.test(to) : folder !== own) bad.push(`${rel(file)} imports ${to} (another plugin's folder)`);
        } else {
          bad.push(`${rel(file)} imports ${to}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it('every plugin folder has index.ts, options.ts and README.md', () => {
    const missing = folders.flatMap((f) => ['index.ts', 'options.ts', 'README.md'].filter((n) => !existsSync(path.join(pluginsDir, f, n))).map((n) => `plugins/${f}/${n}`));
    assert.deepEqual(missing, []);
  });

  it('the kit depends on nothing above it', () => {
    const above = /^(agent\/(restore|backup|commands|observe|plan|targets|pipeline)\/|agent\/cli\.ts$|plugins\/)/;
    const bad = tsFiles(path.join(root, 'agent', 'plugin')).flatMap((file) =>
      specifiers(file)
        .filter((s) => s.startsWith('.'))
        .map((s) => rel(path.resolve(path.dirname(file), s)))
        .filter((to) => above.test(to))
        .map((to) => `${rel(file)} imports ${to}`),
    );
    assert.deepEqual(bad, []);
  });
});
