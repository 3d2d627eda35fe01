// One error type per kind of failure, each carrying the process exit code the CLI
// uses, so callers never parse messages to know what happened.

/** Exit codes of the CLI (documented in README "Exit codes"). */
export const ExitCode = {
  ok: 0,
  failed: 1, // a job or operation failed at run time
  usage: 2, // bad command line or configuration
  integrity: 3, // a stored backup failed its checksum/size/count checks
  refused: 4, // refused for safety (e.g. volume in use without --stop/--force)
} as const;

export class SnapError extends Error {
  readonly exitCode: number;
  /** What the operator should do next, printed after the message. */
  readonly hint?: string;
  constructor(message: string, opts: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.failed;
    this.hint = opts.hint;
  }
}

/** A configuration problem: names the file, the key and what was expected. */
export class ConfigError extends SnapError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.usage, hint });
  }
}

export class UsageError extends SnapError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.usage, hint });
  }
}

/** Stored bytes do not match what the manifest promises. */
export class IntegrityError extends SnapError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.integrity, hint });
  }
}

export class RefusedError extends SnapError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.refused, hint });
  }
}

/** A server's log no longer holds the position a capture or replay continues from (it
 * rolled over, or the server was restored or re-initiated): the entries between are lost. */
export class LogGapError extends SnapError {}

/** A target (local dir or rclone remote) could not be reached or written. */
export class TargetError extends SnapError {}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
