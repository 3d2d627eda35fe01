// Progress of long work: a live line per job on a terminal (bytes read, rate,
// elapsed), nothing extra otherwise (the logs carry start and end with sizes).
import type cliProgress from 'cli-progress';
import { createRequire } from 'node:module';

export interface Bar {
  update(bytes: number): void;
  stop(): void;
}

export interface Progress {
  /** `noun` says what the bytes are: "read" (raw input) or "stored" (compressed output). */
  start(label: string, noun?: string): Bar;
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

export function humanDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const silent: Bar = { update: () => undefined, stop: () => undefined };

// One live line per running job: jobs run in parallel (config `concurrency`), so the
// bars share one MultiBar, which exists while at least one bar runs.
export function makeProgress(enabled: boolean): Progress {
  if (!enabled) return { start: () => silent };
  let multi: cliProgress.MultiBar | undefined;
  let active = 0;
  return {
    start(label: string, noun = 'read'): Bar {
      // loaded with the first bar (on a terminal, during a transfer), not by every command
      const { MultiBar, Presets } = createRequire(import.meta.url)('cli-progress') as typeof cliProgress;
      multi ??= new MultiBar(
        {
          format: (_o, params, p: { label: string; noun: string; started: number }) => {
            const secs = (Date.now() - p.started) / 1000;
            const rate = secs > 0 ? params.value / secs : 0;
            return `${p.label}  ${humanBytes(params.value)} ${p.noun}  ${humanBytes(rate)}/s  ${humanDuration(secs)}`;
          },
          hideCursor: true,
          clearOnComplete: true,
          fps: 4,
          stream: process.stderr,
        },
        Presets.shades_classic,
      );
      const owner = multi;
      const bar = owner.create(Number.MAX_SAFE_INTEGER, 0, { label, noun, started: Date.now() });
      active++;
      let stopped = false;
      return {
        update: (n) => bar.update(n),
        stop: () => {
          if (stopped) return;
          stopped = true;
          owner.remove(bar);
          if (--active === 0) {
            owner.stop();
            multi = undefined;
          }
        },
      };
    },
  };
}
