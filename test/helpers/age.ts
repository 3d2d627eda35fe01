// age keys for the tests, made by the real age-keygen: the identity file (0600), its
// public recipient and the secret key itself (to look for it in everything a run wrote).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

export interface AgeKey {
  identity: string;
  recipient: string;
  secret: string;
}

export async function ageKey(dir: string, name = 'key.txt'): Promise<AgeKey> {
  const identity = path.join(dir, name);
  const { stderr } = await promisify(execFile)('age-keygen', ['-o', identity]);
  const recipient = /age1[0-9a-z]+/.exec(stderr)?.[0];
  const secret = /AGE-SECRET-KEY-1[0-9A-Z]+/.exec(readFileSync(identity, 'utf8'))?.[0];
  if (!recipient || !secret) throw new Error(`age-keygen gave no key: ${stderr}`);
  return { identity, recipient, secret };
}
