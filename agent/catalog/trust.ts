// What catalog readers trust, from the config: the public keys in `trusted_keys`, this
// host's own key (when it has one: readers never make it) and the plugins this agent has.
import type { Config } from '../config/load.ts';
import type { CatalogTrust } from './manifest.ts';
import { existingHostKey, makeKeyring } from './signing.ts';
import { pluginNames } from '../../plugins/index.ts';

export async function catalogTrust(config: Config): Promise<CatalogTrust> {
  return { keys: makeKeyring(config.trusted_keys, await existingHostKey(config.stateDir)), plugins: pluginNames() };
}
