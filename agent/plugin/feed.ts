// Feeding restored bytes into a consumer (tar, a SQL client) that may stop reading
// before the end (tar at its end-of-archive marker, a client that failed): the rest
// must still be read, or the agent could never finish checking the sha256 of every
// stored byte.
import type { Readable, Writable } from 'node:stream';
import type { HelperResult, HelperRun } from '../docker/client.ts';
import type { RawInput } from './contract.ts';

export function feedDraining(src: Readable, dest: Writable): void {
  const drain = () => {
    src.unpipe(dest);
    src.resume();
  };
  dest.on('error', drain);
  dest.on('close', () => src.readableEnded || drain());
  src.pipe(dest);
}

/** Feeds a stored artifact into a helper container started with data "in": zstd
 * writes into the helper's named pipe itself when there is one, else the bytes go to
 * its stdin (drained to the end, see feedDraining). Resolves with the helper's result
 * once it exited and every byte matched the manifest; kills the helper when either
 * fails. */
export async function feedHelper(helper: HelperRun, src: RawInput, integrity: Promise<void>): Promise<HelperResult> {
  helper.stdout.resume();
  if (helper.openPipe) {
    const feed = helper.openPipe().then((fh) => src.toHandle(fh));
    feed.catch(() => void helper.kill());
  } else {
    const input = src.stream();
    input.on('error', () => void helper.kill());
    // tar may stop at the end-of-archive marker, before the record padding
    feedDraining(input, helper.stdin!);
  }
  try {
    const [res] = await Promise.all([helper.done, integrity]);
    return res;
  } catch (err) {
    await helper.kill();
    throw err;
  }
}

/** Feeds one earlier backup of an incremental chain into its own helper (data "in"),
 * every stored byte read: through the named pipe it resolves once the piece's bytes
 * matched their manifest (so the piece's own check says first what was wrong with it);
 * through the attach stream once they were all sent, and the restore's `integrity`
 * covers them before live data changes. Kills the helper when either side fails. */
export async function feedPiece(helper: HelperRun, input: RawInput): Promise<HelperResult> {
  helper.stdout.resume();
  let fed: Promise<void>;
  if (helper.openPipe) {
    fed = helper.openPipe().then((fh) => input.toHandle(fh));
  } else {
    const s = input.stream();
    fed = new Promise<void>((resolve, reject) => {
      s.on('end', resolve);
      s.on('close', resolve);
      s.on('error', reject);
    });
    feedDraining(s, helper.stdin!);
  }
  fed.catch(() => void helper.kill());
  try {
    const [res] = await Promise.all([helper.done, fed]);
    return res;
  } catch (err) {
    await helper.kill();
    throw err;
  }
}
