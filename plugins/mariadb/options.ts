// Job options of the mariadb plugin (plugins/mariadb/README.md "Options and labels").
import { z } from 'zod';

export const optionsSchema = z.strictObject({
  /** Databases to dump; default: every database except the system schemas. */
  databases: z.array(z.string().min(1)).optional(),
  /** Account to dump with; default root, with the container's root password. */
  user: z.string().optional(),
  /** Take the password from this environment variable of the agent. */
  password_env: z.string().optional(),
  /** Take the password from this file on the agent's host. */
  password_file: z.string().optional(),
  /** Where the agent reaches the server for its checks (default: discovered). */
  host: z.string().optional(),
  port: z.int().positive().optional(),
  /** Non-transactional (MyISAM, Aria...) tables: "warn" (default) or "lock": dump with
   * --lock-all-tables (writes wait for the whole dump) when any exists. */
  non_transactional: z.enum(['warn', 'lock']).default('warn'),
});

export type MariadbOptions = z.output<typeof optionsSchema>;
