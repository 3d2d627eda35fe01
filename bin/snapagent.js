#!/usr/bin/env node
// Entry point for `npx snapagent`. snapagent needs Node >= 24 (it runs its TypeScript
// sources directly). When started by an older system Node, re-run with the Node 24
// that `make deps` installs under .tools/, so `npx snapagent` works either way.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { enableCompileCache } from './compile-cache.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const major = Number(process.versions.node.split('.')[0]);
if (major >= 24) {
  enableCompileCache();
  await import(path.join(root, 'agent', 'cli.ts'));
} else {
  const local = path.join(root, '.tools', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(local)) {
    process.stderr.write(`snapagent: Node ${process.versions.node} is too old (needs 24). Run \`make deps\` in ${root} first.\n`);
    process.exit(2);
  }
  const child = spawn(local, [path.join(root, 'bin', 'snapagent.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
}
