// What the manifest of a cassandra backup records per keyspace and table (the plugin's
// stats; a restore reads them back from the manifest).

/** What the manifest records per table. */
export interface TableStats {
  id: string;
  files: number;
  bytes: number;
  rows?: number;
}

export interface KeyspaceStats {
  cql: string;
  types?: string[];
  tables: Record<string, TableStats>;
}
