// Job options of the mongo plugin (plugins/mongo/README.md "Options and labels").
import { z } from 'zod';

export const optionsSchema = z.strictObject({
  /** Back up only this database (mongodump --db); default: all databases. One job per
   * database when several are wanted: each then restores on its own. */
  database: z.string().min(1).optional(),
  /** Collections of `database` to leave out (mongodump --excludeCollection). */
  exclude_collections: z.array(z.string().min(1)).optional(),
  /** User to authenticate as; default the container's MONGO_INITDB_ROOT_USERNAME(_FILE). */
  user: z.string().optional(),
  /** Take the password from this environment variable of the agent. */
  password_env: z.string().optional(),
  /** Take the password from this file on the agent's host. */
  password_file: z.string().optional(),
  /** The database holding the user (default admin). */
  auth_source: z.string().default('admin'),
  /** Where the agent reaches the server for its checks (default: discovered). */
  host: z.string().optional(),
  port: z.int().positive().optional(),
  /** --oplog for a point-in-time dump: "auto" (default) when the server is a replica-set
   * member and all databases are dumped (mongodump allows it only then). */
  oplog: z.enum(['auto', 'never']).default('auto'),
  /** Also restore admin.system.users/roles (default: no; a full dump carries them, but
   * loading them into a running server replaces its accounts). */
  restore_users: z.boolean().default(false),
});

export type MongoOptions = z.output<typeof optionsSchema>;
