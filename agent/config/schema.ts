// The configuration contract (docs/configuration.md "Configuration" documents every key).
// Unknown keys are rejected so that a typo never silently disables a backup.
import { z } from 'zod';
import { isPublicKey, PUBLIC_KEY_EXPECTED } from '../catalog/signing.ts';

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'a name of letters, digits, "_", "." or "-" (starting with a letter or digit)');

/** The longest wait or timeout the config accepts. Node's timers overflow above 2^31-1 ms
 * (24.8 days) and fire at once; a week is already far beyond any sane timeout. */
export const MAX_SECONDS = 7 * 24 * 3600;
const TOO_LONG = `at most ${MAX_SECONDS} seconds (7 days)`;

/** A whole number of seconds for a wait or timeout, bounded by MAX_SECONDS (plugins use it too). */
export const seconds = (min: 0 | 1 = 1) => z.int().min(min).max(MAX_SECONDS, TOO_LONG);

/** A duration for `keep.within`: "36h", "7d", "2w", "1m" (months), "1y", or sums like "1y6m". */
export const DURATION = /^(\d+[hdwmy])+$/;

export const FULL_EVERY_EXPECTED = 'a duration such as "7d", "2w", "36h" or "1m" (months)';
/** A chain's full is renewed this often unless the config says otherwise. */
export const DEFAULT_FULL_EVERY = '7d';

// Retention, restic-style (docs/schedules-and-retention.md "Retention"): each calendar
// rule keeps the newest backup of each of the last N days/weeks/months/years that have
// one; rules are ORed. A policy with no rule above 0 keeps everything.
export const keepSchema = z.strictObject({
  /** The N newest backups. */
  last: z.int().min(0).optional(),
  /** The newest backup of each of the last N days (host's local zone) that have one. */
  daily: z.int().min(0).optional(),
  /** ... of each of the last N ISO weeks (Monday to Sunday). */
  weekly: z.int().min(0).optional(),
  /** ... of each of the last N calendar months. */
  monthly: z.int().min(0).optional(),
  /** ... of each of the last N calendar years. */
  yearly: z.int().min(0).optional(),
  /** Every backup started within this duration before the newest one, e.g. "7d". */
  within: z.string().regex(DURATION, 'a duration such as "36h", "7d", "2w", "1m" (months), "1y" or "1y6m"').optional(),
});

// A tier: when its jobs run (5-field cron, host's local zone; checked at load time) and
// what retention keeps. For the built-in tiers a missing key keeps its default.
export const tierSchema = z.strictObject({
  schedule: z.string().min(1).optional(),
  keep: keepSchema.optional(),
  /** Restore drills of the tier's latest backups (`runDrills`, fired by the daemon):
   * a cron schedule like the tier's own. */
  drill: z.strictObject({ schedule: z.string().min(1) }).optional(),
  /** Incremental backups (plugins that take them): false makes every backup a full. */
  incremental: z.boolean().optional(),
  /** How often an incremental chain starts over with a full, e.g. "7d" (the default). */
  full_every: z.string().regex(DURATION, FULL_EVERY_EXPECTED).optional(),
});

// age recipients: native X25519 ("age1…", also plugin recipients "age1yubikey1…") or
// SSH public keys. Public keys only: the identity (private key) is never in the config.
const ageRecipient = z
  .string()
  .regex(/^(age1[0-9a-z]+|ssh-(ed25519|rsa) [A-Za-z0-9+/]+=*( .*)?)$/, 'an age recipient ("age1…") or an SSH public key ("ssh-ed25519 AAAA…")');

// Recipients are required: an encryption block without any would back up in clear text
// while the config says "encrypted".
export const encryptionSchema = z.strictObject({
  /** Every artifact is encrypted to all of these (age -R); anyone of them can decrypt. */
  age_recipients: z.array(ageRecipient).default([]),
  /** A file of more recipients, one per line (age's recipients-file format). */
  age_recipients_file: z.string().min(1).optional(),
  /** The identity (private key) file: needed only to restore or drill encrypted backups,
   * never to back up or verify. $SNAPAGENT_AGE_IDENTITY_FILE is used when unset. */
  age_identity_file: z.string().min(1).optional(),
}).refine((e) => e.age_recipients.length > 0 || e.age_recipients_file !== undefined, {
  message: 'expected age_recipients (a non-empty list of public keys) or age_recipients_file: without recipients nothing would be encrypted',
});

const localTarget = z.strictObject({
  name,
  type: z.literal('local'),
  path: z.string().min(1),
});

const rcloneTarget = z.strictObject({
  name,
  type: z.literal('rclone'),
  remote: z.string().regex(/^[^:\s][^:]*:.*$/, 'an rclone remote path such as "s3:bucket/path" or "mysftp:backups"'),
  /** rclone.conf to use (default: rclone's own lookup and RCLONE_* env vars). */
  config: z.string().optional(),
  /** Extra rclone flags, e.g. ["--s3-upload-concurrency", "8"]. Never put secrets here. */
  flags: z.array(z.string()).default([]),
  /** Seconds before one rclone call is considered hung. */
  timeout_seconds: seconds().default(3600),
  /** Further attempts (after 2 s, 4 s, ... randomized) of a listing, read, move, delete or
   * manifest write that failed in a way that may pass (network error, 5xx), after rclone's
   * own per-request retries. Never for refused credentials, a missing bucket or a bad
   * rclone config (they fail at once), nor for a streamed upload (its bytes cannot be
   * produced again: the backup fails and the next run starts over). */
  retries: z.int().min(0).max(10).default(2),
});

export const targetSchema = z.discriminatedUnion('type', [localTarget, rcloneTarget]);

/** How long oplog slices are kept by default (pitr.keep). */
export const DEFAULT_PITR_KEEP = '24h';

export const jobSchema = z.strictObject({
  name,
  plugin: z.string().min(1),
  tier: z.string().default('critical'),
  container: z.string().optional(),
  volume: z.string().optional(),
  /** Stop the containers using the data for a consistent copy (restarted afterwards). */
  stop: z.boolean().default(false),
  /** Order among jobs and stopped containers: lower first. */
  order: z.int().default(0),
  /** Target names; default: every target. */
  targets: z.array(name).optional(),
  /** Plugin-specific options, validated by the plugin. */
  options: z.record(z.string(), z.unknown()).default({}),
  /** Retention for this job; default: its tier's keep. */
  keep: keepSchema.optional(),
  /** Incremental backups for this job (default: its tier's, else true). */
  incremental: z.boolean().optional(),
  /** How often its chain starts over with a full (default: its tier's, else "7d"). */
  full_every: z.string().regex(DURATION, FULL_EVERY_EXPECTED).optional(),
  /** Point-in-time recovery (plugins that have it: mongo on a replica set): the daemon
   * ships the server's log every `slice_seconds`; slices are kept for `keep` past the
   * newest backup older than that. */
  pitr: z
    .strictObject({
      enabled: z.boolean().default(true),
      slice_seconds: z.int().min(5, 'at least 5 seconds').max(3600, 'at most 3600 seconds (1 hour)').default(60),
      keep: z.string().regex(DURATION, 'a duration like "24h", "7d" or "2w"').default(DEFAULT_PITR_KEEP),
    })
    .optional(),
});

export const DEFAULT_TIERS = {
  critical: { schedule: '0 2 * * *', keep: { daily: 30 } },
  medium: { schedule: '0 3 * * 0', keep: { weekly: 4 } },
  low: { schedule: '0 4 1 * *', keep: { monthly: 3 } },
} as const;

export const configSchema = z.strictObject({
  host: name.optional(),
  targets: z.array(targetSchema).min(1).default([{ name: 'local', type: 'local', path: './backups' }]),
  tiers: z.record(name, tierSchema).default({}),
  jobs: z.array(jobSchema).default([]),
  discovery: z
    .strictObject({
      /** Add jobs from `snapagent.*` labels on containers and volumes. */
      labels: z.boolean().default(true),
      /** Also back up every named volume that has no snapagent label. */
      all_volumes: z.boolean().default(false),
      /** Tier for jobs found by discovery without a `snapagent.tier` label. */
      default_tier: z.string().default('critical'),
    })
    .default({ labels: true, all_volumes: false, default_tier: 'critical' }),
  docker: z
    .strictObject({
      /** Docker socket path (default: $DOCKER_HOST or /var/run/docker.sock). */
      socket: z.string().optional(),
      /** Image of the helper container that reads and writes volumes (GNU tar). */
      helper_image: z.string().default('snapagent/helper:latest'),
      /** How data crosses into helper containers: "fifo" (a named pipe in the state dir,
       * fastest; the state dir must be the same path for the agent and dockerd), "attach"
       * (through the Docker API, works everywhere), "auto" (fifo unless in a container). */
      transfer: z.enum(['auto', 'fifo', 'attach']).default('auto'),
    })
    .default({ helper_image: 'snapagent/helper:latest', transfer: 'auto' }),
  /** Public keys (Ed25519) whose signatures on manifests and check records are accepted
   * besides this host's own key: another host's `snapagent key`, e.g. the old host's on a
   * fresh one (docs/design.md "Signed manifests"). */
  trusted_keys: z.array(z.string().refine(isPublicKey, PUBLIC_KEY_EXPECTED)).default([]),
  /** Encrypt every artifact with age (after zstd): see docs/encryption.md "Encryption". */
  encryption: encryptionSchema.optional(),
  /** Restore drills (`snapagent verify --drill`). */
  drill: z
    .strictObject({
      /** Seconds a drill's throwaway server may take to answer before the drill fails. */
      startup_timeout: seconds().default(300),
    })
    .default({ startup_timeout: 300 }),
  /** What a restore may take from a backup's manifest (docs/restore-and-disaster-recovery.md
   * "What restore takes from a manifest"). The remote is data, not instructions: connection
   * settings, credentials, destinations, images and accounts come from this config and the
   * command line. */
  restore: z
    .strictObject({
      /** Drivers a volume recorded in a manifest may be recreated with (glob patterns). */
      volume_drivers: z.array(z.string().min(1)).default(['local']),
      /** Recreate a volume with the driver options its manifest recorded. Bind-mount style
       * options (type none, o bind, a device path) are never taken from a manifest. */
      driver_options: z.boolean().default(false),
      /** How to recreate a missing volume, by name: wins over the manifest. Secrets the
       * manifests leave out (e.g. a CIFS password) go here. */
      volumes: z
        .record(
          z.string().min(1),
          z.strictObject({ driver: z.string().min(1).default('local'), driver_options: z.record(z.string(), z.string()).default({}) }),
        )
        .default({}),
      /** Volumes and containers (glob patterns) that a job not in the plan (a fresh host,
       * --host, extra jobs of `restore --all`) may restore into because its manifest
       * names them; others need --to-volume / --to-container. */
      destinations: z.array(z.string().min(1)).default([]),
      /** Images (glob patterns, e.g. "mariadb:*") a drill may start because a manifest
       * recorded them; the image of the job's own running container is always allowed. */
      drill_images: z.array(z.string().min(1)).default([]),
    })
    .default({ volume_drivers: ['local'], driver_options: false, volumes: {}, destinations: [], drill_images: [] }),
  /** node_exporter textfile collector output (docs/operations.md "Metrics"); absent: no
   * metrics file. */
  metrics: z
    .strictObject({
      /** The collector's directory (node_exporter --collector.textfile.directory). */
      textfile_dir: z.string().min(1),
      /** File name in that directory; must end in ".prom" to be collected. */
      file: z.string().regex(/^[A-Za-z0-9_.-]+\.prom$/, 'a file name ending in ".prom"').default('snapagent.prom'),
    })
    .optional(),
  /** Messages after each job's run (docs/operations.md "Notifications"); never fail a backup. */
  notifications: z
    .strictObject({
      /** Which job outcomes are sent. */
      on: z.array(z.enum(['failure', 'success'])).min(1).default(['failure']),
      /** Seconds before one delivery (webhook request or command) is given up. */
      timeout_seconds: z.number().positive().max(MAX_SECONDS, TOO_LONG).default(10),
      /** POST of a Slack-compatible JSON event. The URL is a secret: prefer url_file or
       * url_env over url. Exactly one of the three. */
      webhook: z
        .strictObject({
          url: z.url({ protocol: /^https?$/ }).optional(),
          url_file: z.string().min(1).optional(),
          url_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
        })
        .refine((w) => [w.url, w.url_file, w.url_env].filter(Boolean).length === 1, 'expected exactly one of url, url_file, url_env')
        .optional(),
      /** A command (argv, no shell) that receives the event JSON on stdin. */
      command: z.array(z.string().min(1)).min(1).optional(),
    })
    .optional(),
  /** The host's Docker Compose stack, started by `restore --all` after the volumes are
   * restored and before the datastores are (disaster recovery onto a fresh host;
   * docs/restore-and-disaster-recovery.md "Disaster recovery"). Absent: the datastore
   * containers must already run. */
  compose: z
    .strictObject({
      /** The compose file (relative: from the config file). */
      file: z.string().min(1),
      /** Compose project name (-p); it must be the original host's, since volume names
       * and the labels compose checks derive from it. Default: compose's own (the file's
       * directory name). */
      project: name.optional(),
      /** An env file for the compose file's ${VARIABLES} (--env-file; relative: from the
       * config file), e.g. the datastores' passwords. */
      env_file: z.string().min(1).optional(),
      /** The compose command (argv). Default: `docker-compose` when installed, else
       * `docker compose`. */
      command: z.array(z.string().min(1)).min(1).optional(),
      /** Seconds a datastore restore waits while its container is starting (created,
       * restarting, or its healthcheck still "starting"). */
      wait_seconds: seconds().default(600),
    })
    .optional(),
  /** Where the agent keeps its own small state (locks, pipes, last run of each job, the
   * daemon's last slots). */
  state_dir: z.string().optional(),
  /** Jobs of one run backed up at the same time (jobs with stop: true still one at a
   * time). 2 suits a 2-core host: one job's container start, dump and upload waits
   * overlap the other's compression; more only queue for the same cores and memory. */
  concurrency: z.int().min(1).max(64).default(2),
  /** Seconds a run waits for a job locked by another run before it fails that job. */
  lock_wait_seconds: seconds(0).default(3600),
  /** `snapagent run` (the daemon). */
  daemon: z
    .strictObject({
      /** On start, run each tier's most recent slot once when it was missed (agent down). */
      catch_up: z.boolean().default(true),
    })
    .default({ catch_up: true }),
});

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type TargetConfig = z.output<typeof targetSchema>;
export type JobConfig = z.output<typeof jobSchema>;
export type MetricsConfig = NonNullable<ParsedConfig['metrics']>;
export type NotificationsConfig = NonNullable<ParsedConfig['notifications']>;
export type EncryptionConfig = z.output<typeof encryptionSchema>;
export type KeepPolicy = z.output<typeof keepSchema>;
/** A tier after defaults were applied (load.ts): both keys are always there. */
export interface TierConfig {
  schedule: string;
  keep: KeepPolicy;
  drill?: { schedule: string };
  incremental?: boolean;
  full_every?: string;
}
export type ComposeConfig = NonNullable<ParsedConfig['compose']>;
