// age encryption of artifacts, after zstd: the `age` binary as a filter process, like
// zstd. Recipients reach it in a recipients file (-R), the identity in its own file
// (-i): no key is ever on a command line. A stored artifact is a standard age file, so
// `age -d -i key.txt volume.tar.zst.age | zstd -d | tar -x` recovers it without snapagent.
// The manifest's size and sha256 are of the encrypted bytes: verifying needs no key.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import type { Config } from '../config/load.ts';
import { ConfigError, errorMessage, IntegrityError, SnapError, UsageError } from '../errors.ts';
import { registerSecret, runId } from '../log.ts';
import type { Target } from '../targets/target.ts';
import { startFilter, type Fd, type FilterProcess } from './filter-process.ts';

export const IDENTITY_ENV = 'SNAPAGENT_AGE_IDENTITY_FILE';

export interface Recipients {
  /** Recipients files for `age -R`. */
  files: string[];
  /** The public recipients, recorded in the manifest to find the matching identity. */
  list: string[];
  /** Removes the temporary recipients file. */
  cleanup(): Promise<void>;
}

/** The configured recipients, checked by age itself; undefined when backups are not encrypted. */
export async function recipientsFor(config: Config): Promise<Recipients | undefined> {
  const enc = config.encryption;
  if (!enc || (enc.age_recipients.length === 0 && !enc.age_recipients_file)) return undefined;
  const list = [...enc.age_recipients];
  if (enc.age_recipients_file) {
    const text = await readFile(enc.age_recipients_file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(`${config.source}: encryption.age_recipients_file: cannot read ${enc.age_recipients_file} (${err.code ?? err.message})`);
    });
    list.push(...text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
  }
  // age reads recipients from files only here: the inline ones go to a private one
  const tmp = path.join(config.stateDir, 'tmp');
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(path.join(tmp, `age-${runId}-`)); // the run id: a killed run's is found
  const cleanup = () => rm(dir, { recursive: true, force: true });
  const files = enc.age_recipients_file ? [enc.age_recipients_file] : [];
  if (enc.age_recipients.length) {
    files.unshift(path.join(dir, 'recipients'));
    await writeFile(files[0]!, enc.age_recipients.join('\n') + '\n', { mode: 0o600 });
  }
  // Fails before any data moves: age missing, or a recipient it cannot parse.
  const { execa } = await import('execa'); // loaded only when encryption is used
  const probe = await execa('age', ['-e', ...files.flatMap((f) => ['-R', f])], { input: '', reject: false, encoding: 'buffer' });
  if (probe.failed) {
    await cleanup();
    if (probe.code === 'ENOENT') throw new SnapError('encryption: "age" is not installed', { hint: 'install it (Debian: apt-get install age) or run make deps' });
    throw new ConfigError(`${config.source}: encryption: age rejects the recipients: ${ageMessage(probe.stderr)}`);
  }
  return { files, list, cleanup };
}

export function ageEncrypt(recipientFiles: string[], signal?: AbortSignal): FilterProcess {
  return startFilter('age encryption', 'age', ['-e', ...recipientFiles.flatMap((f) => ['-R', f])], signal);
}

/** A small buffer (an index, an oplog slice) encrypted whole. */
export async function ageEncryptBytes(recipientFiles: string[], bytes: Buffer, signal: AbortSignal): Promise<Buffer> {
  const age = ageEncrypt(recipientFiles, signal);
  const chunks: Buffer[] = [];
  age.stdout.on('data', (c: Buffer) => chunks.push(c));
  age.stdin!.end(bytes);
  await Promise.all([age.done, finished(age.stdout)]);
  return Buffer.concat(chunks);
}

export function ageDecrypt(identityFile: string, signal?: AbortSignal, output?: Fd): FilterProcess {
  return startFilter('age decryption', 'age', ['-d', '-i', identityFile], signal, { stdout: output });
}

/** The identity file from the config or $SNAPAGENT_AGE_IDENTITY_FILE, if any. */
export function identityPath(config: Config, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return config.encryption?.age_identity_file ?? (env[IDENTITY_ENV] ? path.resolve(env[IDENTITY_ENV]) : undefined);
}

/** The identity file needed to decrypt `what`; a usage error (exit 2) when none is
 * configured or it holds no usable identity. Its secret lines are registered for
 * redaction. */
export async function requireIdentity(config: Config, what: string): Promise<string> {
  const file = identityPath(config);
  if (!file) {
    throw new UsageError(`${what} is encrypted with age and no identity is configured; nothing was changed`,
      `set encryption.age_identity_file in the config or $${IDENTITY_ENV} to the private key file that matches the backup's recipients`);
  }
  const key = config.encryption?.age_identity_file ? 'encryption.age_identity_file' : `$${IDENTITY_ENV}`;
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`${key}: cannot read the age identity ${file} (${err.code ?? err.message}); nothing was changed`);
  });
  const secrets = text.match(/AGE-(PLUGIN-[A-Z0-9]+-)?SECRET-KEY-[0-9A-Z]+|-----BEGIN [A-Z ]*PRIVATE KEY-----[^]*?-----END [A-Z ]*PRIVATE KEY-----/g) ?? [];
  for (const s of secrets) {
    registerSecret(s);
    for (const line of s.split('\n')) if (line.length >= 16 && !line.startsWith('-----')) registerSecret(line);
  }
  if (secrets.length === 0) {
    const hint = /age-encryption\.org|BEGIN AGE ENCRYPTED FILE/.test(text)
      ? 'it is passphrase-protected, which needs a terminal: decrypt it to a root-only file (age -d key.age > key.txt; chmod 600 key.txt)'
      : 'expected age-keygen output (AGE-SECRET-KEY-1…) or an unencrypted OpenSSH private key';
    throw new UsageError(`${key}: ${file} holds no usable age identity; nothing was changed`, hint);
  }
  return file;
}

// age's own lines, without its "report unexpected or unhelpful errors" footer.
function ageMessage(stderr: Uint8Array): string {
  const lines = Buffer.from(stderr).toString('utf8').split('\n').map((l) => l.replace(/^age: (error: )?/, '').trim());
  return lines.filter((l) => l && !/report unexpected or unhelpful errors/.test(l)).slice(0, 2).join('; ');
}

const PROBE_BYTES = 256 * 1024;

/** Checks that `identity` opens the stored artifact, from its first bytes only, so that a
 * wrong key fails before anything is restored. */
export async function checkIdentity(target: Target, key: string, identity: string, signal: AbortSignal): Promise<void> {
  const stop = new AbortController();
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of target.open(key, AbortSignal.any([signal, stop.signal])) as AsyncIterable<Buffer>) {
      chunks.push(c);
      n += c.length;
      if (n >= PROBE_BYTES) break;
    }
  } finally {
    stop.abort();
  }
  const { execa } = await import('execa');
  const res = await execa('age', ['-d', '-i', identity], { input: Buffer.concat(chunks).subarray(0, PROBE_BYTES), reject: false, encoding: 'buffer', cancelSignal: signal });
  // The whole file decrypted, or the first chunks came out before the cut: the key fits.
  if (!res.failed || res.stdout.length > 0) return;
  if (res.code === 'ENOENT') throw new SnapError('"age" is not installed', { hint: 'install it (Debian: apt-get install age) or run make deps' });
  const why = ageMessage(res.stderr);
  if (/no identity matched/i.test(why)) {
    throw new UsageError(`${key}: the age identity ${identity} does not match this backup's recipients; nothing was changed`, "use the private key of one of the recipients listed in the backup's manifest (artifacts[].recipients)");
  }
  throw new IntegrityError(`${key}: not a readable age file (${why || errorMessage(res)}); nothing was changed`);
}
