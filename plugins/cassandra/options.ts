// Job options of the cassandra plugin (plugins/cassandra/README.md "Options and labels").
import { z } from 'zod';
import { seconds } from '../../agent/plugin/index.ts';
import { KEYSPACE, TABLE } from './names.ts';

export const optionsSchema = z
  .strictObject({
    /** Keyspaces to snapshot; default: every keyspace except the system ones. */
    keyspaces: z.array(z.string().regex(KEYSPACE, 'a keyspace name (letters, digits, _)')).min(1).optional(),
    /** Or only these tables, as "keyspace.table". */
    tables: z.array(z.string().regex(new RegExp(`^${KEYSPACE.source.slice(1, -1)}\\.${TABLE.source.slice(1, -1)}$`), '"keyspace.table"')).min(1).optional(),
    /** Count every table's rows (paged reads through CQL) for the manifest and the
     * restore's check. Costs a full read of the backed-up tables. */
    count_rows: z.boolean().default(true),
    /** Where the node keeps its SSTables inside the container (data_file_directories). */
    data_dir: z.string().regex(/^\/[^\0]*[^/]$/, 'an absolute path without a trailing /').default('/var/lib/cassandra/data'),
    /** CQL account; default: none when the server asks for no authentication, else
     * CASSANDRA_USER/CASSANDRA_PASSWORD(_FILE) of the container, else cassandra/cassandra. */
    user: z.string().min(1).optional(),
    password_env: z.string().optional(),
    password_file: z.string().optional(),
    /** Where the agent reaches CQL (default: discovered from the container). */
    host: z.string().optional(),
    port: z.int().positive().optional(),
    /** Seconds a CQL request may take (row counts page, so each page gets this long). */
    request_timeout: seconds().default(120),
  })
  .refine((o) => !(o.keyspaces && o.tables), { message: 'set either keyspaces or tables, not both', path: ['tables'] });

export type CassandraOptions = z.output<typeof optionsSchema>;

/** Keyspaces that belong to Cassandra itself: never backed up or restored. */
export const SYSTEM_KEYSPACES = ['system', 'system_schema', 'system_auth', 'system_distributed', 'system_traces', 'system_views', 'system_virtual_schema'];
