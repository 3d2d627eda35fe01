// The storage contract every target implements. Keys are "/"-separated paths below
// the target root: <host>/<job>/<backup-id>/<file>. A target never interprets them.
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

export interface StoredFile {
  key: string;
  size: number;
  /** A stamp from the listing itself (no call per file) that changes when the file is
   * written again: its modification time as the storage reports it. Absent when the
   * target cannot tell without a further call. The catalog index compares it. */
  modified?: string;
}

export interface Target {
  readonly name: string;
  /** Human description without secrets, e.g. "local /srv/backups" or "rclone s3:bkp". */
  readonly description: string;
  /** Fails with TargetError when the target cannot be reached or written. */
  check(): Promise<void>;
  /** Streams `src` to a temporary name for `key`; nothing appears under `key` until
   * publish(). On error or abort the partial upload is removed and the promise rejects. */
  put(key: string, src: Readable, signal: AbortSignal): Promise<{ bytes: number }>;
  /** Optional fast path of put() for targets that are files on this machine: the
   * temporary file for `key`, whose descriptor a copier writes into directly. */
  openPartial?(key: string): Promise<PartialFile>;
  /** Optional fast path of open(): the stored file itself, held open for reading. */
  openStored?(key: string): Promise<FileHandle>;
  /** Makes a completed put() (or a finished PartialFile) visible under its key. */
  publish(key: string): Promise<void>;
  /** Writes a small file so that readers see either nothing or the whole file. */
  writeFile(key: string, data: Buffer): Promise<void>;
  readFile(key: string): Promise<Buffer>;
  /** Streams a stored file. Errors (missing, unreachable) surface on the stream. */
  open(key: string, signal: AbortSignal): Readable;
  /** Every file below `prefix` (recursive), including partial uploads: one call to the
   * storage however many files there are (the catalog index relies on it). */
  list(prefix: string): Promise<StoredFile[]>;
  /** Removes one file; no error when it is already gone. Durable when it resolves. */
  removeFile(key: string): Promise<void>;
  /** Removes `prefix` and everything below it (in no particular order); no error when
   * it is already gone. */
  removeDir(prefix: string): Promise<void>;
}

/** Suffix of files still being uploaded; never listed as part of a backup. */
export const PARTIAL_SUFFIX = '.partial';

/** An upload in progress as a file (Target.openPartial): nothing appears under its key
 * until it is finished and published. */
export interface PartialFile {
  readonly fd: number;
  /** Starts writing back what was written so far, without waiting for it, so that
   * finish() has little left to flush. */
  writeBack(): void;
  /** Makes the file durable (fsync) and closes it; rejects (with the target's error)
   * when it does not hold exactly `bytes` bytes. */
  finish(bytes: number): Promise<void>;
  /** Closes and removes the file (idempotent, never throws). */
  discard(): Promise<void>;
  /** `err` (a failed write into `fd`) as this target reports it. */
  error(err: unknown): Error;
}
