// Backup of a mariadb server: one consistent mariadb-dump of its databases, counted
// (rows and a checksum per table) from the dump stream itself.
import { finished } from 'node:stream/promises';
import { type BackupStream, type Job, lastLines, type PluginContext, runningContainer, SnapError } from '../../agent/plugin/index.ts';
import { credentials, endpoint, optionFile } from './connection.ts';
import { DumpCounter } from './dump-stats.ts';
import { FORMAT, startTool, writeOptionFile } from './exec.ts';
import { checkDatabase, checkDumpNames } from './names.ts';
import type { MariadbOptions } from './options.ts';
import { probe } from './probe.ts';

export async function backupDump(ctx: PluginContext, job: Job<MariadbOptions>): Promise<BackupStream> {
  const c = await runningContainer(ctx, job.container, `job ${job.name}`, 'mariadb');
  const cred = await credentials(ctx, c, job.options);
  const server = await probe(endpoint(c, job.options), cred, job.options.databases);
  if (server.databases.length === 0) throw new SnapError(`container ${c.name}: no database to back up`, { hint: 'create one, or list options.databases' });
  for (const d of server.databases) checkDatabase(d, `container ${c.name}`);
  let consistency = ['--single-transaction'];
  if (server.nonTransactional.length) {
    if (job.options.non_transactional === 'lock') {
      consistency = ['--lock-all-tables'];
      ctx.log.info({ tables: server.nonTransactional }, 'non-transactional tables: dumping under a global read lock');
    } else {
      ctx.log.warn({ tables: server.nonTransactional }, 'non-transactional tables are not covered by --single-transaction; set options.non_transactional: lock for a consistent copy');
    }
  }
  const cnf = await writeOptionFile(ctx, c.name, optionFile(cred, c));
  const run = await startTool(ctx, c.name, cnf, 'dump', [...consistency, ...FORMAT, '--databases', '--', ...server.databases]);
  const counter = new DumpCounter('row64-sum');
  run.stdout.pipe(counter);
  const done = (async () => {
    const res = await run.done;
    if (res.exitCode !== 0) throw new SnapError(`mariadb-dump in ${c.name} failed (exit code ${res.exitCode}): ${lastLines(res.stderr)}`);
    await finished(counter);
    // Table names come from the dump: checked before the backup can commit.
    const databases = counter.stats();
    checkDumpNames(databases, `container ${c.name}`);
    return { server_version: server.version, non_transactional: server.nonTransactional, checksum: 'row64-sum', databases };
  })();
  done.catch(() => undefined);
  return {
    stream: counter,
    artifact: { name: 'dump', format: 'sql' },
    done,
    source: { container: c.name, image: c.image, server_version: server.version, databases: server.databases },
    abort: async () => run.kill(),
  };
}
