// What the oplog capture of a job last did (agent/pitr/capture.ts writes it, `status`
// reads it): kept apart so that reading it loads nothing of the capture.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { redactedJson } from '../log.ts';
import type { LogPosition } from '../plugin/contract.ts';

/** What the capture of one job last did, in <state_dir>/pitr/<host>--<job>.json (status
 * shows it; the targets stay the truth for what is restorable). */
export interface CaptureState {
  format: 'snapagent.pitr-capture/1';
  job: string;
  /** The newest log position shipped. */
  position?: LogPosition;
  last_slice_at?: string;
  last_slice_id?: string;
  /** The last attempt's error, cleared by the next success. */
  error?: string;
  /** The latest gap found, and when a backup closed it. */
  gap?: { found_at: string; after?: LogPosition; reason: string; closed_by?: string; closed_at?: string };
}

export function captureStateFile(stateDir: string, host: string, job: string): string {
  return path.join(stateDir, 'pitr', `${host}--${job}.json`);
}

/** The capture state recorded for a job, if any (an unreadable file: none). */
export async function readCaptureState(file: string): Promise<CaptureState | undefined> {
  try {
    const s = JSON.parse(await readFile(file, 'utf8')) as CaptureState;
    return s.format === 'snapagent.pitr-capture/1' ? s : undefined;
  } catch {
    return undefined;
  }
}

export async function saveState(file: string, state: CaptureState): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, redactedJson(state), { mode: 0o600 });
  await rename(tmp, file);
}

