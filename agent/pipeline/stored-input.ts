// The raw bytes of one stored artifact, as a plugin consumes them on restore:
//   target file ─► sha256 + count ─► zstd -d ─► a stream, or straight into a file
//   handle (a named pipe) so the decompressed bytes never pass through the agent.
// `integrity` settles once every stored byte was read and checked against the manifest.
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError } from '../errors.ts';
import type { Artifact } from '../manifest.ts';
import type { RawInput } from '../plugin.ts';
import type { Target } from '../targets/target.ts';
import { zstdDecompress, type FilterProcess } from './filter-process.ts';
import { HashCounter } from './hash.ts';

export class StoredInput implements RawInput {
  readonly integrity: Promise<void>;
  readonly hash = new HashCounter();
  private resolve!: () => void;
  private reject!: (err: unknown) => void;
  private dec?: FilterProcess;
  private readonly target: Target;
  private readonly key: string;
  private readonly artifact: Artifact;
  private readonly signal: AbortSignal;

  constructor(target: Target, key: string, artifact: Artifact, signal: AbortSignal) {
    this.target = target;
    this.key = key;
    this.artifact = artifact;
    this.signal = signal;
    this.integrity = new Promise<void>((res, rej) => ((this.resolve = res), (this.reject = rej)));
    this.integrity.catch(() => undefined);
  }

  async verify(): Promise<void> {
    const check = new HashCounter();
    await pipeline(this.target.open(this.key, this.signal), check, async function* (src) {
      for await (const _ of src);
    });
    this.checkDigest(check);
  }

  stream(): Readable {
    return this.start().stdout;
  }

  async toHandle(fh: FileHandle): Promise<void> {
    this.start(fh.fd);
    await fh.close();
    await this.integrity;
  }

  /** Whether a consumer started reading (else `integrity` never settles). */
  get started(): boolean {
    return this.dec !== undefined;
  }

  kill(): void {
    this.dec?.kill();
  }

  private start(output?: number): FilterProcess {
    if (this.dec) throw new Error('the stored artifact can be read only once');
    const dec = (this.dec = zstdDecompress(this.signal, output));
    const src = this.target.open(this.key, this.signal);
    Promise.all([pipeline(src, this.hash, dec.stdin!, { signal: this.signal }).then(() => this.checkDigest(this.hash)), dec.done]).then(
      () => this.resolve(),
      this.reject,
    );
    return dec;
  }

  private checkDigest(h: HashCounter): void {
    const { artifact, key } = this;
    if (h.bytes !== artifact.size) {
      throw new IntegrityError(`${key}: ${h.bytes} bytes stored, the manifest says ${artifact.size}; the archive is truncated or damaged`);
    }
    if (h.sha256() !== artifact.sha256) {
      throw new IntegrityError(`${key}: sha256 ${h.sha256()} does not match the manifest's ${artifact.sha256}; the archive is damaged`);
    }
  }
}
