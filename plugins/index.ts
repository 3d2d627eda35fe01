// Every datastore plugin, listed by hand.
import type { DatastorePlugin } from '../agent/plugin.ts';
import { mariadbPlugin } from './mariadb/index.ts';
import { volumePlugin } from './volume/index.ts';

export const plugins: Record<string, DatastorePlugin<any>> = {
  volume: volumePlugin,
  mariadb: mariadbPlugin,
};

export function pluginNames(): string[] {
  return Object.keys(plugins);
}
