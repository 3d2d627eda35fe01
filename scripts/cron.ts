// `make install-cron` / `make uninstall-cron`: writes (or removes) a cron.d file with one
// line per tier of the config: `snapagent backup --tier T` at the tier's schedule, logging
// JSON lines to a file. The config is read (and validated) now, so the file matches it;
// re-run after changing tiers.
//   node scripts/cron.ts install   [--config F] [--file /etc/cron.d/snapagent] [--log F] [--user root] [--node PATH]
//   node scripts/cron.ts uninstall [--file /etc/cron.d/snapagent]
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../agent/config/load.ts';
import { SnapError } from '../agent/errors.ts';
import { describePolicy } from '../agent/catalog/retention.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const MARKER = '# snapagent cron file: written by `make install-cron`, removed by `make uninstall-cron`';

const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
// cron turns an unescaped % into a newline
const cronSafe = (s: string) => s.replaceAll('%', '\\%');

function cronFile(o: { config?: string; log: string; user: string; node: string }): string {
  const config = loadConfig(o.config);
  const lines = [MARKER, `# config: ${config.source}; edit the tiers there, then run make install-cron again`, 'SHELL=/bin/sh', ''];
  for (const [tier, t] of Object.entries(config.tiers)) {
    const fields = t.schedule.trim().split(/\s+/);
    if (!t.schedule.trim().startsWith('@') && fields.length !== 5) {
      throw new SnapError(`${config.source}: tiers.${tier}.schedule: "${t.schedule}" has a seconds field, which cron cannot run`, { exitCode: 2, hint: 'use 5 fields, or the daemon (`snapagent run`)' });
    }
    const cmd = [q(o.node), q(path.join(ROOT, 'bin', 'snapagent.js')), 'backup', ...(o.config ? ['--config', q(path.resolve(o.config))] : []), '--tier', q(tier)];
    lines.push(`# tier ${tier}: keep ${describePolicy(t.keep)}`);
    lines.push(cronSafe(`${t.schedule} ${o.user} cd ${q(ROOT)} && ${cmd.join(' ')} >> ${q(o.log)} 2>&1`));
  }
  return lines.join('\n') + '\n';
}

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      file: { type: 'string', default: '/etc/cron.d/snapagent' },
      log: { type: 'string', default: '/var/log/snapagent.log' },
      user: { type: 'string', default: 'root' },
      node: { type: 'string', default: process.execPath },
    },
  });
  const file = path.resolve(values.file);
  if (positionals[0] === 'uninstall') {
    if (!existsSync(file)) {
      process.stdout.write(`${file}: not installed\n`);
      return 0;
    }
    if (!readFileSync(file, 'utf8').startsWith(MARKER)) {
      process.stderr.write(`${file} was not written by snapagent: left alone\n`);
      return 4;
    }
    rmSync(file);
    process.stdout.write(`removed ${file}\n`);
    return 0;
  }
  if (positionals[0] !== 'install') {
    process.stderr.write('usage: node scripts/cron.ts install|uninstall [--config F] [--file F] [--log F] [--user U]\n');
    return 2;
  }
  const config = values.config ?? process.env.SNAPAGENT_CONFIG;
  const text = cronFile({ config, log: path.resolve(values.log), user: values.user, node: path.resolve(values.node) });
  if (existsSync(file) && !readFileSync(file, 'utf8').startsWith(MARKER)) {
    process.stderr.write(`${file} exists and was not written by snapagent: left alone (choose another CRON_FILE)\n`);
    return 4;
  }
  // cron.d files must be 0644 and not group/other-writable, or cron ignores them
  writeFileSync(`${file}.tmp`, text, { mode: 0o644 });
  renameSync(`${file}.tmp`, file);
  process.stdout.write(`wrote ${file}:\n${text}`);
  if (file.startsWith('/etc/cron.d/') && !['/usr/sbin/cron', '/usr/sbin/crond'].some((c) => existsSync(c))) {
    process.stdout.write('note: no cron daemon is installed (apt-get install cron), or run the agent as a daemon: snapagent run\n');
  }
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`install-cron: ${(err as Error).message}\n`);
  if (err instanceof SnapError && err.hint) process.stderr.write(`  next: ${err.hint}\n`);
  process.exitCode = err instanceof SnapError ? err.exitCode : 1;
}
