// What this process has under way, kept in the state dir so that a kill -9 leaves a trace
// the next start acts on (agent/runtime/recovery.ts):
//   <state>/procs/<run>.json   this process: who it is (pid, start time, boot id, so that
//                              a pid reused after the kill is not mistaken for it), the
//                              backups and restores it runs (with what each stages, and
//                              what only its plugin can undo), the containers it stopped
//   <state>/restores/<host>--<job>.json   a restore a killed run left unfinished;
//                              removed by the job's next successful restore
// The record is rewritten atomically before a change takes effect (a container is
// recorded before it is stopped) and removed when the process exits with nothing under
// way. Without a record (unit tests, an unwritable state dir) these calls do nothing.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.ts';
import { log, redactedJson, runId } from '../log.ts';

export const PROC_FORMAT = 'snapagent.proc/1';
export const INTERRUPTED_FORMAT = 'snapagent.interrupted-restore/1';

// A restore's staging place: a directory the restore extracts into before it changes
// live data, named "<...>snapagent-restore-<backup id>" (the only names the next start
// removes). In a volume (`dir`, a name in its root), removed by a helper container; or a
// path inside a container's filesystem, removed by a command run in that container.
const STAGE_NAME = /^\.?snapagent-restore-[A-Za-z0-9_.:-]+$/;
export const stageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('volume'), volume: z.string().min(1), dir: z.string().regex(STAGE_NAME) }),
  z.object({
    kind: z.literal('container'),
    container: z.string().min(1),
    path: z.string().refine((p) => p.startsWith('/') && !p.split('/').some((s) => s === '..' || s === '.') && STAGE_NAME.test(path.posix.basename(p)), 'an absolute path ending in a snapagent-restore- directory'),
  }),
]);
export type Stage = z.infer<typeof stageSchema>;

// What only a plugin can undo after a kill (a Cassandra snapshot, a staged Elasticsearch
// repository): a few plain values the plugin records with noteRepair and gets back in its
// repairKilled at the next start, which checks them again before it acts on them. Data,
// never a command: short strings under lowercase keys.
export const repairSchema = z
  .record(z.string().regex(/^[a-z][a-z_]{0,31}$/), z.string().max(4096))
  .refine((r) => Object.keys(r).length <= 16, 'at most 16 values');
export type RepairData = z.infer<typeof repairSchema>;

const workSchema = z.object({
  kind: z.enum(['backup', 'restore']),
  job: z.string(),
  plugin: z.string(),
  tier: z.string(),
  since: z.string(),
  /** The backup being taken or restored, once known. */
  id: z.string().optional(),
  /** Restores: where the data goes, e.g. "volume app-data". */
  destination: z.string().optional(),
  targets: z.array(z.string()).default([]),
  /** Restores: where the plugin stages the data (noteStage), and whether it began to
   * change live data (noteLiveChange). A restore killed with a stage and before any
   * live change left the live data as it was. */
  stage: stageSchema.optional(),
  live: z.boolean().optional(),
  /** What the plugin would have to undo if the run were killed now (noteRepair). */
  repair: repairSchema.optional(),
});
export type Work = z.infer<typeof workSchema>;

const identity = { pid: z.int(), start: z.string().optional(), boot: z.string().optional() };

export const procSchema = z.object({
  format: z.literal(PROC_FORMAT),
  run: z.string(),
  ...identity,
  since: z.string(),
  command: z.string(),
  host: z.string(),
  work: z.array(workSchema),
  /** Containers this process stopped and has not restarted yet. */
  stopped: z.array(z.object({ id: z.string(), name: z.string(), at: z.string() })),
});
export type ProcRecord = z.infer<typeof procSchema>;

export const interruptedSchema = z.object({
  format: z.literal(INTERRUPTED_FORMAT),
  host: z.string(),
  job: z.string(),
  id: z.string().optional(),
  destination: z.string().optional(),
  since: z.string(),
  run: z.string(),
  pid: z.int(),
  found_at: z.string(),
  /** The restore was killed before it changed live data, and its staging directory was
   * removed: the data is as it was before the restore. */
  untouched: z.boolean().optional(),
});
export type InterruptedRestore = z.infer<typeof interruptedSchema>;

/** A process's start time (clock ticks after boot): with the pid, who it was. */
export function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Whether the process a record names still runs (same boot, same pid, same start time). */
export function processAlive(p: { pid: number; start?: string; boot?: string }): boolean {
  if (p.boot && p.boot !== bootId()) return false;
  try {
    process.kill(p.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const start = procStart(p.pid);
  return !(p.start && start && p.start !== start);
}

export const procsDir = (stateDir: string) => path.join(stateDir, 'procs');
export const restoresDir = (stateDir: string) => path.join(stateDir, 'restores');
const noteFile = (stateDir: string, host: string, job: string) => path.join(restoresDir(stateDir), `${host}--${job}.json`);

let mine: { file: string; stateDir: string; record: ProcRecord } | undefined;
let writes: Promise<void> = Promise.resolve();

// Writes are queued so that jobs running in parallel never interleave their updates.
function save(): Promise<void> {
  const m = mine;
  if (!m) return Promise.resolve();
  const text = redactedJson(m.record);
  writes = writes.then(() => writeFileAtomic(m.file, text)).catch((err: unknown) => log.warn({ file: m.file }, `cannot update the process record: ${String(err)}`));
  return writes;
}

/** Records this process in `stateDir` (once per process). */
export function openProcessRecord(stateDir: string, host: string, command: string): void {
  if (mine) return;
  const file = path.join(procsDir(stateDir), `${runId}.json`);
  const record: ProcRecord = { format: PROC_FORMAT, run: runId, pid: process.pid, start: procStart(process.pid), boot: bootId(), since: new Date().toISOString(), command, host, work: [], stopped: [] };
  try {
    mkdirSync(procsDir(stateDir), { recursive: true, mode: 0o700 });
    writeFileSync(`${file}.tmp`, redactedJson(record), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  } catch (err) {
    log.debug({ file }, `no process record: ${String(err)}`);
    return;
  }
  mine = { file, stateDir, record };
  // Kept when something is still under way (a second Ctrl-C quits at once): the next
  // start then restarts the containers and reports the jobs.
  process.on('exit', () => {
    if (mine && mine.record.work.length === 0 && mine.record.stopped.length === 0) rmSync(mine.file, { force: true });
  });
}

/** Records a backup or restore as under way; the returned function ends it (a restore
 * that ended `ok` also clears the job's interrupted-restore note). */
export async function startWork(w: Omit<Work, 'since'>): Promise<(ok: boolean) => Promise<void>> {
  if (!mine) return async () => undefined;
  const entry: Work = { ...w, since: new Date().toISOString() };
  mine.record.work.push(entry);
  await save();
  return async (ok) => {
    if (!mine) return;
    mine.record.work = mine.record.work.filter((x) => x !== entry);
    await save();
    if (ok && entry.kind === 'restore') await rm(noteFile(mine.stateDir, mine.record.host, entry.job), { force: true }).catch(() => undefined);
  };
}

/** Sets the backup id of a work entry once it is known. */
export async function workId(job: string, id: string): Promise<void> {
  const w = mine?.record.work.find((x) => x.job === job);
  if (!w) return;
  w.id = id;
  await save();
}

/** A restore of `job` stages its data at `stage` (call before the staging directory is
 * created): if the process is killed before noteLiveChange, the next start removes it. */
export async function noteStage(job: string, stage: Stage): Promise<void> {
  const w = mine?.record.work.find((x) => x.kind === 'restore' && x.job === job);
  if (!w) return;
  const parsed = stageSchema.safeParse(stage);
  if (!parsed.success) return log.warn({ job, stage }, 'not a staging place the next start may remove: it is not recorded');
  w.stage = parsed.data;
  await save();
}

/** A restore of `job` is about to change live data (call before the first change). */
export async function noteLiveChange(job: string): Promise<void> {
  const w = mine?.record.work.find((x) => x.kind === 'restore' && x.job === job);
  if (!w) return;
  w.live = true;
  await save();
}

/** A backup or restore of `job` leaves, if killed from now on, what `data` describes
 * (call before making it): the next start hands it to the plugin's repairKilled
 * (agent/plugin/contract.ts). Replaces what was noted before; undefined forgets it (it
 * was undone). */
export async function noteRepair(kind: Work['kind'], job: string, data: RepairData | undefined): Promise<void> {
  const w = mine?.record.work.find((x) => x.kind === kind && x.job === job);
  if (!w) return;
  if (data === undefined) delete w.repair;
  else {
    const parsed = repairSchema.safeParse(data);
    if (!parsed.success) return log.warn({ job }, 'not what a plugin may record for the next start: it is not recorded');
    w.repair = parsed.data;
  }
  await save();
}

/** Call before stopping a container: a kill before its restart leaves the record. */
export async function noteStopped(c: { id: string; name: string }): Promise<void> {
  if (!mine) return;
  mine.record.stopped.push({ id: c.id, name: c.name, at: new Date().toISOString() });
  await save();
}

export async function noteRestarted(id: string): Promise<void> {
  if (!mine) return;
  mine.record.stopped = mine.record.stopped.filter((s) => s.id !== id);
  await save();
}

/** Every process record in the state dir but this process's own, with its file; also
 * those being repaired ("<run>.json.recovering-<claimer run>"). */
export async function otherRecords(stateDir: string): Promise<{ file: string; record?: ProcRecord }[]> {
  const dir = procsDir(stateDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: { file: string; record?: ProcRecord }[] = [];
  for (const n of names.filter((n) => n !== `${runId}.json` && /\.json(\.recovering-[0-9a-f]+)?$/.test(n))) {
    const file = path.join(dir, n);
    const parsed = procSchema.safeParse(await readFile(file, 'utf8').then(JSON.parse).catch(() => undefined));
    out.push({ file, record: parsed.success ? parsed.data : undefined });
  }
  return out;
}

export async function writeInterrupted(stateDir: string, note: InterruptedRestore): Promise<void> {
  await mkdir(restoresDir(stateDir), { recursive: true, mode: 0o700 });
  await writeFileAtomic(noteFile(stateDir, note.host, note.job), redactedJson(note));
}

/** Restores of `host` left unfinished by killed runs, oldest first. */
export async function interruptedRestores(stateDir: string, host: string): Promise<InterruptedRestore[]> {
  const names = await readdir(restoresDir(stateDir)).catch(() => [] as string[]);
  const out: InterruptedRestore[] = [];
  for (const n of names.filter((n) => n.startsWith(`${host}--`) && n.endsWith('.json'))) {
    const parsed = interruptedSchema.safeParse(await readFile(path.join(restoresDir(stateDir), n), 'utf8').then(JSON.parse).catch(() => undefined));
    if (parsed.success) out.push(parsed.data);
  }
  return out.sort((a, b) => a.since.localeCompare(b.since));
}
