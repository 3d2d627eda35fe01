// The configuration contract (README "Configuration" documents every key).
// Unknown keys are rejected so that a typo never silently disables a backup.
import { z } from 'zod';

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'a name of letters, digits, "_", "." or "-" (starting with a letter or digit)');

export const keepSchema = z.strictObject({
  last: z.int().min(0).optional(),
  daily: z.int().min(0).optional(),
  weekly: z.int().min(0).optional(),
  monthly: z.int().min(0).optional(),
  yearly: z.int().min(0).optional(),
});

export const tierSchema = z.strictObject({
  schedule: z.string().min(1),
  keep: keepSchema,
  /** Restore drills of the tier's latest backups (`runDrills`, fired by the daemon):
   * a cron schedule like the tier's own. */
  drill: z.strictObject({ schedule: z.string().min(1) }).optional(),
});

// age recipients: native X25519 ("age1…", also plugin recipients "age1yubikey1…") or
// SSH public keys. Public keys only: the identity (private key) is never in the config.
const ageRecipient = z
  .string()
  .regex(/^(age1[0-9a-z]+|ssh-(ed25519|rsa) [A-Za-z0-9+/]+=*( .*)?)$/, 'an age recipient ("age1…") or an SSH public key ("ssh-ed25519 AAAA…")');

export const encryptionSchema = z.strictObject({
  /** Every artifact is encrypted to all of these (age -R); anyone of them can decrypt. */
  age_recipients: z.array(ageRecipient).default([]),
  /** A file of more recipients, one per line (age's recipients-file format). */
  age_recipients_file: z.string().min(1).optional(),
  /** The identity (private key) file: needed only to restore or drill encrypted backups,
   * never to back up or verify. $SNAPAGENT_AGE_IDENTITY_FILE is used when unset. */
  age_identity_file: z.string().min(1).optional(),
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
  timeout_seconds: z.int().positive().default(3600),
  /** Further attempts (after 2 s, 4 s, ... randomized) of a listing, read, move, delete or
   * manifest write that failed in a way that may pass (network error, 5xx), after rclone's
   * own per-request retries. Never for refused credentials, a missing bucket or a bad
   * rclone config (they fail at once), nor for a streamed upload (its bytes cannot be
   * produced again: the backup fails and the next run starts over). */
  retries: z.int().min(0).max(10).default(2),
});

export const targetSchema = z.discriminatedUnion('type', [localTarget, rcloneTarget]);

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
  /** Encrypt every artifact with age (after zstd): see README "Encryption". */
  encryption: encryptionSchema.optional(),
  /** Restore drills (`snapagent verify --drill`). */
  drill: z
    .strictObject({
      /** Seconds a drill's throwaway server may take to answer before the drill fails. */
      startup_timeout: z.int().positive().default(300),
    })
    .default({ startup_timeout: 300 }),
  /** node_exporter textfile collector output (README "Metrics"); absent: no metrics file. */
  metrics: z
    .strictObject({
      /** The collector's directory (node_exporter --collector.textfile.directory). */
      textfile_dir: z.string().min(1),
      /** File name in that directory; must end in ".prom" to be collected. */
      file: z.string().regex(/^[A-Za-z0-9_.-]+\.prom$/, 'a file name ending in ".prom"').default('snapagent.prom'),
    })
    .optional(),
  /** Messages after each job's run (README "Notifications"); never fail a backup. */
  notifications: z
    .strictObject({
      /** Which job outcomes are sent. */
      on: z.array(z.enum(['failure', 'success'])).min(1).default(['failure']),
      /** Seconds before one delivery (webhook request or command) is given up. */
      timeout_seconds: z.number().positive().default(10),
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
  /** Where the agent keeps its own small state (locks, last run of each job). */
  state_dir: z.string().optional(),
});

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type TargetConfig = z.output<typeof targetSchema>;
export type JobConfig = z.output<typeof jobSchema>;
export type TierConfig = z.output<typeof tierSchema>;
export type MetricsConfig = NonNullable<ParsedConfig['metrics']>;
export type NotificationsConfig = NonNullable<ParsedConfig['notifications']>;
export type EncryptionConfig = z.output<typeof encryptionSchema>;
