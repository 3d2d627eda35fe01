// Feeding restored bytes into a consumer (tar, a SQL client) that may stop reading
// before the end (tar at its end-of-archive marker, a client that failed): the rest
// must still be read, or the agent could never finish checking the sha256 of every
// stored byte.
import type { Readable, Writable } from 'node:stream';

export function feedDraining(src: Readable, dest: Writable): void {
  const drain = () => {
    src.unpipe(dest);
    src.resume();
  };
  dest.on('error', drain);
  dest.on('close', () => src.readableEnded || drain());
  src.pipe(dest);
}
