// A sharded cluster's balancer, stopped while mongodump reads through a mongos: a chunk
// migrating between shards during the dump can be read twice or not at all. The runbooks'
// order: note whether the balancer runs (balancerStatus), stop it (balancerStop waits for
// the running round), check that no round runs any more, dump, restart it — only if it
// ran before (a balancer the operator turned off stays off), whatever became of the dump,
// over a fresh connection (the dump may take hours: the first one is closed at once).
// A stopped balancer is noted for the repair after a kill -9 (repair.ts) before the stop,
// and the note dropped once it runs again.
import type { MongoClient } from 'mongodb';
import { type Logger, SnapError } from '../../agent/plugin/index.ts';

/** How long balancerStop may wait for the running round (a chunk migration) to end. */
export const STOP_WAIT_MS = 5 * 60_000;

/** What the manifest records (stats.balancer). */
export interface BalancerStats {
  /** balancerStatus's mode before the backup: "full" (running) or "off" (or a mode of an
   * older server, e.g. "autoSplitOnly", which moves no chunk and is left alone). */
  was: string;
  /** When balancerStop returned; absent when the balancer did not run. */
  stopped_at?: string;
  /** Whether the backup restarted it (false also when it did not run). */
  restarted: boolean;
}

export interface StoppedBalancer {
  readonly was: string;
  /** Restarts the balancer if it ran before; once, whoever asks first (the dump's end, an
   * abort). Never throws: a failure is logged and in `failure`. */
  restart(): Promise<BalancerStats>;
  /** Set once a restart failed: the cluster is left with its balancer off. */
  failure?: SnapError;
}

type Open = () => Promise<MongoClient>;

/** What the run records for the next start (noteRepair): called before balancerStop with
 * true, and with false once the balancer runs again. */
export type NoteStopped = (stopped: boolean) => Promise<void>;

const HINT = 'the data of the dump is good, but the cluster does not balance: run sh.startBalancer() in mongosh against the mongos (or db.adminCommand({balancerStart: 1}))';

/** Stops the balancer of the mongos `open` connects to, if it runs. Throws, and leaves the
 * balancer as it found it, when it cannot be stopped: then no dump may start. */
export async function stopBalancer(open: Open, where: string, log: Logger, note: NoteStopped = async () => undefined): Promise<StoppedBalancer> {
  const client = await open();
  let was: string;
  let stoppedAt: string | undefined;
  try {
    const admin = client.db('admin');
    was = String(
      (
        await admin.command({ balancerStatus: 1 }).catch((err: unknown) => {
          throw new SnapError(`${where}: could not read the balancer's state (balancerStatus: ${(err as Error).message}); nothing was dumped`, { hint: 'the backup of a mongos needs a user that may run balancerStatus/balancerStop/balancerStart (e.g. the clusterManager role)' });
        })
      ).mode,
    );
    if (was === 'full') {
      await note(true);
      try {
        await admin.command({ balancerStop: 1, maxTimeMS: STOP_WAIT_MS });
        const after = await admin.command({ balancerStatus: 1 });
        if (after.mode !== 'off' || after.inBalancerRound) throw new Error(`balancerStatus still reports mode "${String(after.mode)}"${after.inBalancerRound ? ' in a round' : ''}`);
      } catch (err) {
        // balancerStop turns the balancer off before it waits for the round: undo that.
        const back = await admin.command({ balancerStart: 1 }).then(
          async () => (await note(false), 'it is running again'),
          (e: unknown) => `and could not be restarted (${(e as Error).message}): it is stopped; run sh.startBalancer()`,
        );
        throw new SnapError(`${where}: could not stop the balancer (${(err as Error).message}), ${back}; nothing was dumped`, {
          hint: 'a chunk migration may outlast the wait: retry later, or stop the balancer by hand before the backup window',
        });
      }
      stoppedAt = new Date().toISOString();
      log.info({ balancer: was }, 'balancer stopped for the dump (no chunk moves between shards meanwhile)');
    } else log.info({ balancer: was }, 'the balancer is not running: left as it is');
  } finally {
    await client.close().catch(() => undefined);
  }
  let restarted: Promise<BalancerStats> | undefined;
  const stopped: StoppedBalancer = {
    was,
    restart: () =>
      (restarted ??= (async (): Promise<BalancerStats> => {
        if (!stoppedAt) return { was, restarted: false };
        try {
          const again = await open();
          try {
            await again.db('admin').command({ balancerStart: 1 });
          } finally {
            await again.close().catch(() => undefined);
          }
          log.info('balancer restarted');
          await note(false);
          return { was, stopped_at: stoppedAt, restarted: true };
        } catch (err) {
          stopped.failure = new SnapError(`${where}: the balancer is stopped: restarting it after the dump failed (${(err as Error).message}); run sh.startBalancer()`, { hint: HINT });
          log.warn({ balancer: 'off' }, stopped.failure.message);
          return { was, stopped_at: stoppedAt, restarted: false };
        }
      })()),
  };
  return stopped;
}

/** The error a dump that failed with `err` ends with, once the balancer restart was
 * tried: `err` itself, or, when the balancer could not be restarted either, an error
 * naming both (the stopped balancer first: it is what needs a hand now). */
export async function restartAfterFailure(b: StoppedBalancer, err: unknown): Promise<unknown> {
  await b.restart();
  if (!b.failure) return err;
  return new SnapError(`${b.failure.message}; and the backup failed: ${(err as Error).message}`, { hint: b.failure.hint, cause: err });
}

/** Runs `body` with the balancer stopped (when it ran), then restarts it. The body's
 * error wins; a failed restart after a good body is in `balancer.failure`. */
export async function withBalancerStopped<T>(open: Open, where: string, log: Logger, body: () => Promise<T>, note?: NoteStopped): Promise<{ value: T; stats: BalancerStats; failure?: SnapError }> {
  const b = await stopBalancer(open, where, log, note);
  let value: T;
  try {
    value = await body();
  } catch (err) {
    throw await restartAfterFailure(b, err);
  }
  const stats = await b.restart();
  return { value, stats, ...(b.failure ? { failure: b.failure } : {}) };
}
