// Runs Prometheus' own checker (Debian package "prometheus", installed by `make deps`);
// fails loudly when it is missing.
import { spawn } from 'node:child_process';

export function promtool(args: string[], stdin = '', cwd?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('error', (err) => reject(new Error(`promtool is needed (apt-get install prometheus, or make deps): ${err.message}`)));
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
    child.stdin.end(stdin);
  });
}
