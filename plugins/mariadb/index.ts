// mariadb: a hot, consistent logical dump (mariadb-dump, or mysqldump on MySQL images)
// run inside the datastore's container with --single-transaction --routines --events
// --triggers. The manifest records per database and table the row count and a checksum
// counted from the dump stream itself (dump-stats.ts); a restore feeds the dump to the
// container's client, then dumps the restored databases again and compares.
import { finished } from 'node:stream/promises';
import { parseSchema } from '../../agent/config/load.ts';
import type { ContainerDetails } from '../../agent/docker/client.ts';
import { ExitCode, SnapError, UsageError } from '../../agent/errors.ts';
import { feedDraining } from '../../agent/pipeline/feed.ts';
import type { BackupStream, DatastorePlugin, Job, PluginContext, RawInput, RestoreOptions, RestoreReport } from '../../agent/plugin.ts';
import { credentials, endpoint, optionFile } from './connection.ts';
import { compareStats, DumpCounter, type DumpStats } from './dump-stats.ts';
import { startTool, writeOptionFile } from './exec.ts';
import { DatabaseFilter } from './filter.ts';
import { optionsSchema, type MariadbOptions } from './options.ts';
import { probe } from './probe.ts';

// The same text options for the backup dump and the verification dump, so that both
// print every row identically.
const FORMAT = ['--routines', '--events', '--triggers', '--hex-blob', '--add-drop-database', '--default-character-set=utf8mb4', '--skip-dump-date'];

export const mariadbPlugin: DatastorePlugin<MariadbOptions> = {
  name: 'mariadb',

  parseOptions(raw, where) {
    return parseSchema(optionsSchema, raw, where);
  },

  async check(ctx, job) {
    await runningContainer(ctx, job.container, `job ${job.name}`);
  },

  async backup(ctx, job): Promise<BackupStream> {
    const c = await runningContainer(ctx, job.container, `job ${job.name}`);
    const cred = await credentials(ctx, c, job.options);
    const server = await probe(endpoint(c, job.options), cred, job.options.databases);
    if (server.databases.length === 0) throw new SnapError(`container ${c.name}: no database to back up`, { hint: 'create one, or list options.databases' });
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
    const run = await startTool(ctx, c.name, cnf, 'dump', [...consistency, ...FORMAT, '--databases', ...server.databases]);
    const counter = new DumpCounter();
    run.stdout.pipe(counter);
    const done = (async () => {
      const res = await run.done;
      if (res.exitCode !== 0) throw new SnapError(`mariadb-dump in ${c.name} failed (exit code ${res.exitCode}): ${lastLines(res.stderr)}`);
      await finished(counter);
      return { server_version: server.version, non_transactional: server.nonTransactional, databases: counter.stats() };
    })();
    done.catch(() => undefined);
    return {
      stream: counter,
      artifact: { name: 'dump', format: 'sql' },
      done,
      source: { container: c.name, image: c.image, server_version: server.version, databases: server.databases },
      abort: async () => run.kill(),
    };
  },

  restore(ctx, job, src, opts) {
    return restoreDump(ctx, job, src, opts);
  },
};

async function restoreDump(ctx: PluginContext, job: Job<MariadbOptions>, src: RawInput, opts: RestoreOptions): Promise<RestoreReport> {
  const expected = (opts.expected.databases ?? {}) as unknown as DumpStats;
  if (opts.database && !expected[opts.database]) {
    throw new UsageError(`the backup has no database "${opts.database}"`, `it has: ${Object.keys(expected).join(', ')}`);
  }
  const c = await runningContainer(ctx, opts.toContainer ?? job.container, 'restore');
  const cred = await credentials(ctx, c, job.options);
  await probe(endpoint(c, job.options), cred, []); // fails early on a wrong password
  // SQL cannot be staged: check every stored byte before the first statement runs.
  await src.verify();
  const client = await startTool(ctx, c.name, await writeOptionFile(ctx, c.name, optionFile(cred, c)), 'client', []);
  client.stdout.resume();
  const input = src.stream();
  const feed = opts.database ? input.pipe(new DatabaseFilter(opts.database)) : input;
  feedDraining(feed, client.stdin!);
  const [res] = await Promise.all([client.done, opts.integrity]);
  if (res.exitCode !== 0) throw new SnapError(`the client in ${c.name} failed while loading the dump (exit code ${res.exitCode}): ${lastLines(res.stderr)}`);

  const databases = opts.database ? [opts.database] : Object.keys(expected);
  const actual = await dumpStats(ctx, c, cred, databases);
  const diffs = compareStats(expected, actual, databases);
  if (diffs.length) {
    throw new SnapError(`restored data differs from the backup: ${diffs.slice(0, 10).join('; ')}`, { exitCode: ExitCode.integrity });
  }
  ctx.log.info({ databases, tables: databases.reduce((n, d) => n + Object.keys(actual[d] ?? {}).length, 0) }, 'restored row counts and checksums match the backup');
  return { destination: `container ${c.name}`, stats: { databases: actual }, restarted: [] };
}

// Dumps the restored databases the same way and counts them: the comparison is exact.
async function dumpStats(ctx: PluginContext, c: ContainerDetails, cred: Parameters<typeof optionFile>[0], databases: string[]): Promise<DumpStats> {
  const run = await startTool(ctx, c.name, await writeOptionFile(ctx, c.name, optionFile(cred, c)), 'dump', ['--single-transaction', ...FORMAT, '--databases', ...databases]);
  const counter = new DumpCounter();
  run.stdout.pipe(counter).resume();
  const [res] = await Promise.all([run.done, finished(counter)]);
  if (res.exitCode !== 0) throw new SnapError(`verification dump in ${c.name} failed (exit code ${res.exitCode}): ${lastLines(res.stderr)}`);
  return counter.stats();
}

async function runningContainer(ctx: PluginContext, name: string | undefined, what: string): Promise<ContainerDetails> {
  if (!name) throw new SnapError(`${what}: the mariadb plugin needs "container"`);
  const c = await ctx.docker.inspectContainer(name);
  if (!c) throw new SnapError(`${what}: container "${name}" does not exist`, { hint: 'check `docker ps -a`, or fix the job\'s "container" key' });
  if (!c.running) throw new SnapError(`${what}: container "${name}" is not running (${c.state})`, { hint: `start it: docker start ${name}` });
  return c;
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join('; ') || 'no message';
}
