// Checks the documentation's cross-references, from the repo root:
//   node scripts/check-doc-links.ts
// 1. every relative markdown link in README.md, SECURITY.md, docs/*.md and
//    plugins/*/README.md points to a file that exists, and its #anchor (GitHub's heading
//    slugs) to a heading of that file;
// 2. every reference of the form docs/<page>.md "<heading>" (also plugins/<name>/README.md,
//    README, SECURITY.md followed by a quoted heading) in code, tests, compose files,
//    scripts, the Makefile and the docs names a file that exists and one of its headings.
// Exits 1 listing each broken reference.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const root = process.cwd();
const problems: string[] = [];

function walk(dir: string, keep: (file: string) => boolean, out: string[] = []): string[] {
  for (const name of readdirSync(path.join(root, dir))) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const rel = path.join(dir, name);
    if (statSync(path.join(root, rel)).isDirectory()) walk(rel, keep, out);
    else if (keep(rel)) out.push(rel);
  }
  return out;
}

/** The headings of a markdown file (outside code fences), as text and as GitHub slugs. */
function headings(file: string): { texts: Set<string>; slugs: Set<string> } {
  const texts = new Set<string>();
  const slugs = new Set<string>();
  const seen = new Map<string, number>();
  let fence = false;
  for (const line of readFileSync(path.join(root, file), 'utf8').split('\n')) {
    if (line.startsWith('```')) fence = !fence;
    const m = !fence && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1] ?? '';
    texts.add(text);
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    slugs.add(n === 0 ? base : `${base}-${n}`);
  }
  return { texts, slugs };
}

const cache = new Map<string, ReturnType<typeof headings>>();
const headingsOf = (file: string) => {
  if (!cache.has(file)) cache.set(file, headings(file));
  return cache.get(file)!;
};

// 1. markdown links
const docs = ['README.md', 'SECURITY.md', ...walk('docs', (f) => f.endsWith('.md')), ...walk('plugins', (f) => f.endsWith('README.md'))];
for (const file of docs) {
  let fence = false;
  readFileSync(path.join(root, file), 'utf8').split('\n').forEach((line, i) => {
    if (line.startsWith('```')) fence = !fence;
    if (fence) return;
    for (const m of line.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
      const href = m[1] ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(href)) continue; // https:, mailto:, file:
      const [target = '', anchor] = href.split('#');
      const dest = target ? path.normalize(path.join(path.dirname(file), target)) : file;
      const where = `${file}:${i + 1}: ${href}`;
      if (!existsSync(path.join(root, dest))) { problems.push(`${where}: no such file`); continue; }
      if (anchor !== undefined) {
        if (!dest.endsWith('.md')) { problems.push(`${where}: anchor on a non-markdown file`); continue; }
        if (!headingsOf(dest).slugs.has(anchor)) problems.push(`${where}: no heading #${anchor} in ${dest}`);
      }
    }
  });
}

// 2. "see <file> "Heading"" references in code and docs
const sources = [
  ...['agent', 'plugins', 'test', 'compose', 'scripts', 'bench', 'bin', 'docs'].flatMap((d) =>
    existsSync(path.join(root, d)) ? walk(d, (f) => /\.(ts|js|sh|yml|yaml|md|json|service|timer)$/.test(f)) : [],
  ),
  'Makefile', 'SECURITY.md', 'README.md',
].filter((f) => f !== path.join('scripts', 'check-doc-links.ts'));
const ref = /(docs\/[\w-]+\.md|plugins\/[\w-]+\/README\.md|SECURITY\.md|README(?:\.md)?)\s*\\?"([^"\\]+)\\?"/g;
for (const file of sources) {
  readFileSync(path.join(root, file), 'utf8').split('\n').forEach((line, i) => {
    if (/\]\(/.test(line)) return; // markdown links: checked above
    for (const m of line.matchAll(ref)) {
      const target = m[1] === 'README' ? 'README.md' : (m[1] ?? '');
      const heading = m[2] ?? '';
      const where = `${file}:${i + 1}: ${m[0]}`;
      if (!existsSync(path.join(root, target))) { problems.push(`${where}: no such file`); continue; }
      if (!headingsOf(target).texts.has(heading)) problems.push(`${where}: no heading "${heading}" in ${target}`);
    }
  });
}

if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`${problems.length} broken reference(s)`);
  process.exit(1);
}
console.log(`links ok: ${docs.length} markdown files, references in ${sources.length} files`);
