// Restore of a mariadb dump: every stored byte checked first (SQL cannot be staged), the
// dump fed to the container's client, then the restored tables dumped again the same
// way and compared with the manifest.
import { finished } from 'node:stream/promises';
import { type ContainerDetails, ExitCode, feedDraining, type Job, lastLines, type PluginContext, type RawInput, type RestoreOptions, type RestoreReport, runningContainer, SnapError, UsageError } from '../../agent/plugin/index.ts';
import { credentials, endpoint, optionFile } from './connection.ts';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm, compareStats, DumpCounter, type DumpStats } from './dump-stats.ts';
import { FORMAT, startTool, writeOptionFile } from './exec.ts';
import { DatabaseFilter } from './filter.ts';
import { LoadMarkers } from './markers.ts';
import { checkDumpNames } from './names.ts';
import type { MariadbOptions } from './options.ts';
import { probe } from './probe.ts';

export async function restoreDump(ctx: PluginContext, job: Job<MariadbOptions>, src: RawInput, opts: RestoreOptions): Promise<RestoreReport> {
  const expected = (opts.expected.databases ?? {}) as unknown as DumpStats;
  // Manifests from before `checksum` was recorded used sha1-xor.
  const algorithm = (opts.expected.checksum ?? 'sha1-xor') as ChecksumAlgorithm;
  if (!CHECKSUM_ALGORITHMS.includes(algorithm)) {
    throw new SnapError(`the backup's row checksums use "${algorithm}", which this snapagent does not know`, { hint: `it knows ${CHECKSUM_ALGORITHMS.join(', ')}: restore with the snapagent version that made the backup, or a newer one`, exitCode: ExitCode.integrity });
  }
  if (opts.collection || opts.renameTo) {
    throw new UsageError('the mariadb plugin restores whole databases under their own names', 'drop --collection/--rename-to; use --to-container to restore beside the original');
  }
  // The manifest's names reach the verification dumps' command lines.
  checkDumpNames(expected, "the backup's manifest", true);
  if (opts.database && !expected[opts.database]) {
    throw new UsageError(`the backup has no database "${opts.database}"`, `it has: ${Object.keys(expected).join(', ')}`);
  }
  const c = await runningContainer(ctx, opts.toContainer ?? job.container, 'restore', 'mariadb');
  const cred = await credentials(ctx, c, job.options);
  await probe(endpoint(c, job.options), cred, []); // fails early on a wrong password
  // SQL cannot be staged: check every stored byte before the first statement runs.
  await src.verify();
  const databases = opts.database ? [opts.database] : Object.keys(expected);
  const verifier = new Verifier(ctx, c, cred, algorithm);
  // --unbuffered: the client prints each marker's result as soon as it ran it.
  const client = await startTool(ctx, c.name, await writeOptionFile(ctx, c.name, optionFile(cred, c)), 'client', ['--unbuffered']);
  const markers = new LoadMarkers();
  let out = '';
  client.stdout.setEncoding('utf8').on('data', (text: string) => {
    const lines = (out + text).split('\n');
    out = lines.pop()!;
    for (const line of lines) {
      const t = markers.loaded(line);
      // Only tables the manifest lists: the dump's own markers name nothing else.
      if (t && expected[t.database]?.[t.table]) verifier.add(t.database, t.table);
    }
  });
  const input = src.stream();
  feedDraining((opts.database ? input.pipe(new DatabaseFilter(opts.database)) : input).pipe(markers), client.stdin!);
  try {
    const [res] = await Promise.all([client.done, opts.integrity]);
    if (res.exitCode !== 0) throw new SnapError(`the client in ${c.name} failed while loading the dump (exit code ${res.exitCode}): ${lastLines(res.stderr)}`);
  } catch (err) {
    verifier.stop();
    throw err;
  }
  // Tables verified while later ones loaded; now the rest.
  for (const db of databases) for (const t of Object.keys(expected[db] ?? {})) verifier.add(db, t);
  const actual = await verifier.finish();
  const diffs = compareStats(expected, actual, databases);
  if (diffs.length) {
    throw new SnapError(`restored data differs from the backup: ${diffs.slice(0, 10).join('; ')}`, { exitCode: ExitCode.integrity });
  }
  ctx.log.info({ databases, tables: databases.reduce((n, d) => n + Object.keys(actual[d] ?? {}).length, 0), verification_dumps: verifier.dumps, verified_during_load: verifier.early },
    'restored row counts and checksums match the backup');
  return { destination: `container ${c.name}`, stats: { databases: actual }, restarted: [] };
}

// Dumps restored tables again the same way and counts them: the comparison is exact.
// Tables are queued as the load finishes them; one dump at a time takes everything
// queued so far (one exec per database, not per table), so verification overlaps
// the rest of the load and its cost grows with rounds, not with the number of tables.
class Verifier {
  readonly stats: DumpStats = {};
  dumps = 0;
  early = 0;
  private readonly queued = new Map<string, Set<string>>();
  private readonly seen = new Set<string>();
  private running?: Promise<void>;
  private failure?: unknown;
  private stopped = false;
  private loading = true;
  private readonly ctx: PluginContext;
  private readonly c: ContainerDetails;
  private readonly cred: Parameters<typeof optionFile>[0];
  private readonly algorithm: ChecksumAlgorithm;

  constructor(ctx: PluginContext, c: ContainerDetails, cred: Parameters<typeof optionFile>[0], algorithm: ChecksumAlgorithm) {
    this.ctx = ctx;
    this.c = c;
    this.cred = cred;
    this.algorithm = algorithm;
  }

  add(database: string, table: string): void {
    const key = JSON.stringify([database, table]);
    if (this.seen.has(key) || this.stopped) return;
    this.seen.add(key);
    if (this.loading) this.early++;
    let set = this.queued.get(database);
    if (!set) this.queued.set(database, (set = new Set()));
    set.add(table);
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.queued.clear();
  }

  async finish(): Promise<DumpStats> {
    this.loading = false;
    while (this.running) await this.running;
    if (this.failure) throw this.failure;
    return this.stats;
  }

  private kick(): void {
    if (this.running || this.stopped || this.failure || this.queued.size === 0) return;
    const batch = [...this.queued];
    this.queued.clear();
    this.running = (async () => {
      try {
        for (const [db, tables] of batch) {
          if (this.stopped) return;
          const got = await dumpStats(this.ctx, this.c, this.cred, db, [...tables], this.algorithm);
          this.dumps++;
          const into = (this.stats[db] ??= {});
          for (const t of tables) if (got[db]?.[t]) into[t] = got[db][t];
        }
      } catch (err) {
        this.failure = err;
      } finally {
        this.running = undefined;
        this.kick();
      }
    })();
  }
}

async function dumpStats(ctx: PluginContext, c: ContainerDetails, cred: Parameters<typeof optionFile>[0], database: string, tables: string[], algorithm: ChecksumAlgorithm): Promise<DumpStats> {
  const run = await startTool(ctx, c.name, await writeOptionFile(ctx, c.name, optionFile(cred, c)), 'dump', ['--single-transaction', ...FORMAT, '--skip-add-drop-table', '--no-create-info', '--skip-routines', '--skip-events', '--skip-triggers', '--', database, ...tables]);
  const counter = new DumpCounter(algorithm, database);
  run.stdout.pipe(counter).resume();
  const [res] = await Promise.all([run.done, finished(counter)]);
  if (res.exitCode !== 0) throw new SnapError(`verification dump in ${c.name} failed (exit code ${res.exitCode}): ${lastLines(res.stderr)}`);
  return counter.stats();
}
