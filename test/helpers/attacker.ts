// FAKE (the attacker, test infrastructure): an image derived from a datastore test image
// whose entrypoint first starts a loop, as root in the container, that races to turn
// every snapagent entry under /tmp into a symlink to a host path: the named pipe into a
// link to an existing host file (reading it would put it in an archive, writing it would
// truncate it) and the pipe's directory into a link to a host directory (writing there
// would create a host file). The server itself is the real one. The loop is off while
// /attack-off exists, so a test can take a clean backup first; drill servers started from
// the image attack from their first second. Each swap is logged to /attack.log.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { docker } from './harness.ts';

const ATTACK = String.raw`#!/bin/sh
T="$SNAPAGENT_ATTACK_TARGET"
(
  while :; do
    if [ -e /attack-off ]; then sleep 0.2; continue; fi
    for d in /tmp/snapagent-*; do
      [ -d "$d" ] && [ ! -L "$d" ] || continue
      case "$d" in *.x) continue ;; esac
      if [ -p "$d/data" ] && rm -f "$d/data" && ln -s "$T/canary" "$d/data"; then echo pipe >> /attack.log; fi
      if mv "$d" "$d.x" 2>/dev/null && ln -s "$T" "$d"; then echo dir >> /attack.log; fi
    done
    sleep 0.005
  done
) &
exec "$@"
`;

export interface Canary {
  /** The host directory the attacker's links point at. */
  dir: string;
  /** A marker that must never show up in an archive. */
  marker: string;
  /** Throws when anything in the canary directory was created, changed or read into `archives`. */
  assertIntact(archives: string[]): void;
  cleanup(): void;
}

/** A host directory holding one file with a unique marker, watched for changes. */
export function makeCanary(): Canary {
  const dir = mkdtempSync(path.join('/var/tmp', 'snapagent-canary-'));
  const marker = `SNAPAGENT-CANARY-${randomBytes(8).toString('hex')}`;
  const file = path.join(dir, 'canary');
  writeFileSync(file, `${marker}\n`.repeat(1000));
  const before = statSync(file);
  return {
    dir,
    marker,
    assertIntact(archives) {
      const now = readdirSync(dir).sort();
      if (now.join() !== 'canary') throw new Error(`the canary directory changed: ${now.join(', ')}`);
      const st = statSync(file);
      if (st.size !== before.size || st.mtimeMs !== before.mtimeMs || readFileSync(file, 'utf8') !== `${marker}\n`.repeat(1000)) throw new Error('the canary file was written');
      for (const a of archives) if (readFileSync(a).includes(marker)) throw new Error(`the canary was read into ${a}`);
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Builds `<base>-attacker:latest`, aimed at `canary`, keeping the base image's entrypoint and command. */
export async function attackerImage(base: string, canary: Canary): Promise<string> {
  const tag = `${base.replace(/:latest$/, '')}-attacker:latest`;
  const [cfg] = JSON.parse(await docker('image', 'inspect', '--format', '{{json .Config}}', base).then((s) => `[${s}]`)) as [{ Entrypoint: string[] | null; Cmd: string[] | null }];
  const ctx = mkdtempSync(path.join(tmpdir(), 'snapagent-attacker-'));
  try {
    writeFileSync(path.join(ctx, 'attack.sh'), ATTACK, { mode: 0o755 });
    mkdirSync(path.join(ctx, 'empty'));
    writeFileSync(path.join(ctx, 'Dockerfile'), [
      `FROM ${base}`,
      'COPY attack.sh /usr/local/bin/snapagent-attack',
      `ENV SNAPAGENT_ATTACK_TARGET=${canary.dir}`,
      `ENTRYPOINT ${JSON.stringify(['/usr/local/bin/snapagent-attack', ...(cfg.Entrypoint ?? [])])}`,
      ...(cfg.Cmd ? [`CMD ${JSON.stringify(cfg.Cmd)}`] : []),
      '',
    ].join('\n'));
    await docker('build', '--network', 'none', '-q', '-t', tag, ctx);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
  return tag;
}

/** How many swaps the attacker in `container` made. */
export async function attacks(container: string): Promise<number> {
  const log = await docker('exec', container, 'sh', '-c', 'cat /attack.log 2>/dev/null || true');
  return log.split('\n').filter(Boolean).length;
}
