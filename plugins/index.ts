// Every datastore plugin, listed by hand.
import type { DatastorePlugin } from '../agent/plugin/index.ts';
import { cassandraPlugin } from './cassandra/index.ts';
import { elasticsearchPlugin } from './elasticsearch/index.ts';
import { mariadbPlugin } from './mariadb/index.ts';
import { mongoPlugin } from './mongo/index.ts';
import { volumePlugin } from './volume/index.ts';

export const plugins: Record<string, DatastorePlugin<any>> = {
  volume: volumePlugin,
  mariadb: mariadbPlugin,
  elasticsearch: elasticsearchPlugin,
  mongo: mongoPlugin,
  cassandra: cassandraPlugin,
};

export function pluginNames(): string[] {
  return Object.keys(plugins);
}
