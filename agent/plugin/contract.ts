// The plugin contract. A plugin turns one job into raw bytes (backup) and raw bytes
// back into live data (restore); compression, encryption, hashing, progress, targets
// and manifests live once in the agent.
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { DockerClient } from '../docker/client.ts';
import type { SnapError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** A job as planned: where it came from and everything a plugin needs. */
export interface Job<O = unknown> {
  name: string;
  plugin: string;
  tier: string;
  /** "config" for jobs from the YAML file, "label" for jobs found by discovery. */
  origin: 'config' | 'label';
  /** Why the job is in the plan (shown by `plan`). */
  reason: string;
  container?: string;
  volume?: string;
  stop: boolean;
  order: number;
  targets: string[];
  options: O;
  /** Incremental backups (plugins with `incremental`): a backup may store only what
   * changed since an earlier one while its chain's full is younger than this duration
   * ("7d"); undefined: every backup is a full. From the config's `full_every` /
   * `incremental` (job, then tier) or the labels snapagent.full_every /
   * snapagent.incremental. */
  fullEvery?: string;
  /** Point-in-time recovery (plugins with `pitr`): the agent's daemon ships the server's
   * log (MongoDB's oplog) in slices of this many seconds, kept for `keep` ("24h") past
   * the newest backup older than that. From the config's `pitr`; undefined: off. */
  pitr?: { sliceSeconds: number; keep: string };
}

export interface PluginContext {
  docker: DockerClient;
  log: Logger;
  /** Aborted when the run is cancelled (SIGINT/SIGTERM) or a sibling step failed. */
  signal: AbortSignal;
  helperImage: string;
  host: string;
  /** The id of the backup being taken (set for `backup` only), e.g. for a snapshot name. */
  backupId?: string;
  /** Backup only, plugins with `incremental`: the committed backup this one may build on
   * (the job's newest, present and trusted on every target, its chain's full younger than
   * the job's fullEvery). Absent: take a full. */
  base?: IncrementalBase;
}

/** What an incremental backup may build on (agent/backup/base.ts chooses it). */
export interface IncrementalBase {
  id: string;
  /** The base's own depends_on: what it needs in turn, oldest first. */
  dependsOn: readonly string[];
  /** The index the base's plugin stored with it (BackupStream.index), raw bytes whose
   * sha256 matched the base's signed manifest. Data written by a backup of this job:
   * check it like any other input. */
  index: Buffer;
  stats: PluginStats;
}

/** The plugin's index of a backup: what the next backup needs to store only what changed
 * (GNU tar's snapshot file, a list of files and hashes). Stored beside the data artifact
 * as `index.<format>.zst[.age]`, listed in the signed manifest. */
export interface PluginIndex {
  format: string;
  bytes: Buffer;
  /** The earlier backups whose data this backup's restore needs, oldest first: empty for
   * a full. Every id must be the base's id or one of its dependsOn. */
  dependsOn: string[];
  /** Raw bytes of the whole state this backup represents (what a full would hold). */
  representedBytes?: number;
}

/** What a plugin counted about the data; recorded in the manifest. */
export type PluginStats = Record<string, unknown>;

export interface BackupStream {
  /** One artifact's raw bytes (e.g. a tar stream). Read lazily: only touched when
   * `openRaw` is absent or fails. */
  readonly stream: Readable;
  /** Optional fast path: opens a file handle (a named pipe) carrying the same bytes, so
   * the compressor can read them directly. The plugin then reports the byte count as
   * `stream_bytes` in its stats. */
  openRaw?: () => Promise<FileHandle>;
  /** Artifact name stem and format, e.g. { name: "volume", format: "tar" }. */
  artifact: { name: string; format: string };
  /** Settles after the producer exits: resolves with stats on success, rejects when it
   * failed or was cut short. The agent commits nothing unless it resolves. */
  done: Promise<PluginStats>;
  /** Describes the source for the manifest (image, volume labels...). No secrets. */
  source: Record<string, unknown>;
  /** Plugins with `incremental`: settles after `done` with the index of this backup and
   * what it depends on. Absent: a full without an index. */
  index?: Promise<PluginIndex>;
  /** Undo everything the backup started (containers, quiesce); idempotent. */
  abort(): Promise<void>;
  /** Called once after the backup was committed to at least one target (e.g. to prune
   * what the datastore keeps locally); a failure is logged, the backup stays committed. */
  committed?(): Promise<void>;
  /** Asked once `done` resolved and the run ended: an error when the backup is good but
   * left the datastore in a state that needs a hand (a sharded cluster whose balancer
   * could not be restarted). The backup stays committed and the job fails with this
   * error, so that alerts fire. */
  degraded?(): SnapError | undefined;
}

/** The raw bytes of a stored artifact, for a plugin's restore. Use one of the two. */
export interface RawInput {
  /** Reads the whole stored artifact once and checks its size and sha256, without
   * decompressing: for plugins that cannot stage data, before touching live data. */
  verify(): Promise<void>;
  stream(): Readable;
  /** Writes the bytes straight into `fh` (e.g. a helper's named pipe), closing our
   * copy of it; resolves once everything was written and verified. */
  toHandle(fh: FileHandle): Promise<void>;
}

export interface RestoreOptions {
  id: string;
  /** Restore into this volume instead of the job's own. */
  toVolume?: string;
  /** Restore into this container instead of the job's own (datastore plugins). */
  toContainer?: string;
  /** Restore only this database (datastore plugins that hold several). */
  database?: string;
  /** With `database`: only this collection (mongo). */
  collection?: string;
  /** Restore the selection (database, or collection) under this name. */
  renameTo?: string;
  /** Stop the containers that use the data during the restore, then restart them. */
  stop: boolean;
  /** Restore even though containers are using the data. */
  force: boolean;
  /** The manifest's stats for this artifact, to compare after the restore. */
  expected: PluginStats;
  /** The manifest's source description: data, never instructions (agent/restore/restore-trust.ts). */
  source: Record<string, unknown>;
  /** How to create `volume` when it is missing (the config's spec, or what it allows of
   * the manifest's); throws UntrustedManifestError when the manifest asks for more. */
  volumeSpec(volume: string): VolumeSpec;
  /** The operator asked to restore database accounts too (--restore-users). */
  restoreUsers: boolean;
  /** Resolves once every byte of `src` (and of every `chain` piece) matched its
   * manifest's size and sha256; rejects otherwise. A plugin must not alter live data
   * before it resolves. */
  integrity: Promise<void>;
  /** An incremental backup: the earlier backups it depends on (its manifest's depends_on),
   * oldest first, each to be read once (in this order or not at all, as the plugin needs);
   * `src` is the chosen backup's own data. Empty for a full. */
  chain: ChainPiece[];
  /** The chosen backup's index (BackupStream.index), when it has one: raw bytes whose
   * sha256 matched its signed manifest. */
  index?: Buffer;
  /** A restore to a point in time (plugins with `pitr`): the log to replay after the
   * backup's own data, every slice's bytes checked through `integrity` like `src`. */
  log?: LogReplay;
}

/** One earlier backup an incremental restore reads. */
export interface ChainPiece {
  id: string;
  input: RawInput;
  /** That backup's stats as its manifest recorded them. */
  stats: PluginStats;
}

/** How a missing volume is created (agent/restore/restore-trust.ts decides it). */
export interface VolumeSpec {
  driver: string;
  options: Record<string, string>;
  labels: Record<string, string>;
}

export interface RestoreReport {
  /** Where the data went, e.g. "volume app-data". */
  destination: string;
  /** What was counted after the restore; compared with the manifest by the plugin. */
  stats: PluginStats;
  /** Containers stopped and restarted for the restore. */
  restarted: string[];
}

/** A throwaway server for a restore drill: started from the image the backup's manifest
 * recorded (source.image), on the host network, each of `volumes` on a fresh volume;
 * removed with them after the drill whatever happened (agent/restore/drill.ts). */
export interface DrillServer<O = unknown> {
  /** Environment of the container (the official image's conventions; secrets are fine
   * here: they go through the Docker API, never a command line). */
  env: Record<string, string>;
  /** Arguments for the image's entrypoint (e.g. a port of its own on 127.0.0.1). */
  cmd: string[];
  user?: string;
  /** Paths in the container that each get a fresh volume. */
  volumes: string[];
  /** The job's options for the restore into this server: the live server's connection
   * settings (host, port, credentials) dropped. */
  options: O;
  /** Resolves once the server accepts a restore; rejects while it does not. Called about
   * every second until it succeeded twice in a row or the drill's startup timeout. */
  ready(ctx: PluginContext, container: string): Promise<void>;
}

/** A backup or restore of a plugin that was killed (kill -9) after it recorded, with
 * noteRepair, what it would have to undo; handed back to the plugin's repairKilled at the
 * next start of the agent (agent/runtime/recovery.ts). */
export interface KilledWork<O = unknown> {
  kind: 'backup' | 'restore';
  /** The job's name. */
  job: string;
  /** The backup being taken or restored (a valid backup id), when it was known. */
  id?: string;
  /** What the plugin recorded: data read back from a file, never a command; check every
   * value before use. */
  data: Record<string, string>;
  /** The job as the current plan has it (config or labels), when it still has it with
   * this plugin: e.g. how to connect. */
  planned?: Job<O>;
}

/** Where a restore drill restores: a fresh volume (`toVolume`), or a throwaway server
 * (`toContainer`). */
export type DrillPlan<O = unknown> = { kind: 'volume' } | { kind: 'server'; server: DrillServer<O> };

export interface DatastorePlugin<O = unknown> {
  readonly name: string;
  /** Option keys a restore takes from a manifest when the job is not in the plan: what
   * was backed up (databases, keyspaces, indices), never how to connect, where to write,
   * which tool settings to use or whose accounts to replace. */
  readonly recordedOptions: readonly string[];
  /** Validates a job's options (from YAML `options:` or labels); throws ConfigError naming `where`. */
  parseOptions(raw: Record<string, unknown>, where: string): O;
  /** Checks that the job's container/volume exists; throws SnapError saying what to fix. */
  check(ctx: PluginContext, job: Job<O>): Promise<void>;
  backup(ctx: PluginContext, job: Job<O>): Promise<BackupStream>;
  restore(ctx: PluginContext, job: Job<O>, src: RawInput, opts: RestoreOptions): Promise<RestoreReport>;
  /** How `snapagent verify --drill` proves a backup restores (its restore compares the
   * result with the manifest). `port` hands out free TCP ports on 127.0.0.1; `source` is
   * the manifest's description of what was backed up. */
  drill(job: Job<O>, port: () => Promise<number>, source: Record<string, unknown>): Promise<DrillPlan<O>>;
  /** Takes incremental backups: `ctx.base` may be set on backup, and its streams give an
   * `index`; restores get the `chain`. */
  readonly incremental?: boolean;
  /** Point-in-time recovery from the server's log (agent/pitr/): restores get `log`. */
  readonly pitr?: PointInTime<O>;
  /** Optional: undoes what a killed run of this plugin left (what it recorded with
   * noteRepair), at the next start: every killed backup's, and each killed restore's
   * that had not begun to change live data (noteLiveChange). Resolves true when done (or
   * nothing is left to do, or the record is refused), false to be called again at the
   * next start (e.g. the datastore's container is not running); a rejection is logged
   * and also tried again. Acts only through the datastore's container or helper
   * containers, never on paths opened from the host. */
  repairKilled?(ctx: PluginContext, killed: KilledWork<O>): Promise<boolean>;
}

/** A place in a server's log (MongoDB: an oplog entry's ts): `t` seconds since the
 * epoch, `i` the ordinal within that second. Positions order by (t, i). */
export interface LogPosition {
  t: number;
  i: number;
}

/** What one read of a server's log returned (PointInTime.openLog). */
export interface LogRead {
  /** The entries after the position asked for, oldest first, each one raw record (a BSON
   * document for mongo), about `maxBytes` at most. */
  entries: Buffer[];
  bytes: number;
  first?: LogPosition;
  /** The newest entry returned (undefined: none). */
  last?: LogPosition;
  /** More entries were there than `maxBytes` allowed: read again at once. */
  more: boolean;
}

/** A connection to one server's log, reused from slice to slice. */
export interface LogReader {
  /** Entries after `after` (exclusive), oldest first. Throws LogGapError when `after` is
   * no longer in the log (rolled over, or a different log: a restored or re-initiated
   * server). */
  read(after: LogPosition, maxBytes: number): Promise<LogRead>;
  close(): Promise<void>;
}

/** Point-in-time recovery: a plugin whose server keeps a log of every write (MongoDB's
 * oplog) lets the agent ship that log between backups (agent/pitr/) and restore to any
 * second it covers (RestoreOptions.log). */
export interface PointInTime<O = unknown> {
  /** The log position a committed backup's data is as of (mongo: its oplog window's last
   * entry); undefined: this backup cannot start a replay (e.g. dumped without oplog). */
  positionOf(stats: PluginStats): LogPosition | undefined;
  /** Opens the job's server's log; throws SnapError when it has none (not a replica set). */
  openLog(ctx: PluginContext, job: Job<O>): Promise<LogReader>;
  /** Format name of a slice's raw bytes (e.g. "bson"). */
  readonly format: string;
}

/** The log to replay after a backup for a restore to a point in time. */
export interface LogReplay {
  /** Replay the entries after `after` (the backup's own position) up to and including
   * `until`, each once, in order. */
  after: LogPosition;
  until: LogPosition;
  /** The point in time asked for. */
  at: string;
  /** The slices holding them, oldest first; each covers (its `after`, its `last`] and is
   * read once, in this order. Raw bytes: concatenated records as LogRead returned them. */
  pieces: { id: string; after: LogPosition; last: LogPosition; input: RawInput }[];
}

/** The plugins an agent has, by kind. The core is handed one (agent/commands/common.ts builds it
 * from plugins/index.ts; tests build their own) and never imports the concrete list. */
export type PluginRegistry = Readonly<Record<string, DatastorePlugin<any>>>;
