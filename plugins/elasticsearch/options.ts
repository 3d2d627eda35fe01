// Job options of the elasticsearch plugin (plugins/elasticsearch/README.md "Options and
// labels"). Everything is optional: a container following the official image's
// conventions needs none.
import { z } from 'zod';
import { seconds } from '../../agent/plugin/index.ts';

const restoreSchema = z.strictObject({
  /** Indices (names or wildcards) to restore; default: every index of the snapshot
   * except dot-indices. `--database a,b*` on the command line wins. */
  indices: z.array(z.string().min(1)).optional(),
  /** ES rename_pattern / rename_replacement (Java regex, $1 references). */
  rename_pattern: z.string().min(1).optional(),
  rename_replacement: z.string().optional(),
  /** An index of the same name already in the target cluster: "fail" (default: refused,
   * nothing changed), "close" it (restored over, in place) or "delete" it first.
   * `--force` on the command line means "delete". */
  existing: z.enum(['fail', 'close', 'delete']).default('fail'),
  /** Keep the extracted repository registered (read-only) after the restore. */
  keep_repository: z.boolean().default(false),
});

export const optionsSchema = z.strictObject({
  /** User for the REST API when security is on; default elastic. */
  user: z.string().min(1).default('elastic'),
  /** The password from this environment variable of the agent / file on its host;
   * default: the container's ELASTIC_PASSWORD(_FILE). */
  password_env: z.string().optional(),
  password_file: z.string().optional(),
  /** Where the agent reaches the REST API (default: discovered from the container). */
  host: z.string().optional(),
  port: z.int().positive().optional(),
  scheme: z.enum(['http', 'https']).optional(),
  /** PEM file (on the agent's host) of the CA that signed the HTTP certificate; default:
   * the container's config/certs/http_ca.crt. */
  ca_file: z.string().optional(),
  /** false: accept any certificate (no verification). */
  tls_verify: z.boolean().default(true),
  /** Name of the fs snapshot repository the agent registers and uses. */
  repository: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'a lowercase repository name').default('snapagent'),
  /** Its location inside the container (under path.repo); default <first path.repo>/<repository>. */
  location: z.string().min(1).optional(),
  /** Indices to snapshot (names or wildcards); default: all. */
  indices: z.array(z.string().min(1)).optional(),
  /** Also snapshot the cluster state (templates, persistent settings, feature states). */
  include_global_state: z.boolean().default(true),
  /** Snapshots of this job kept in the live repository after a committed backup. */
  keep_snapshots: z.int().min(1).default(1),
  /** Upper bound for a snapshot or a restore to finish. */
  timeout_seconds: seconds().default(3600),
  restore: restoreSchema.default({ existing: 'fail', keep_repository: false }),
});

export type EsOptions = z.output<typeof optionsSchema>;
