// What catalog readers trust, from the config: the public keys in `trusted_keys`, this
// host's own key (when it has one: readers never make it) and the plugins this agent has.
import type { ConfigContext } from '../context.ts';
import type { CatalogTrust } from './manifest.ts';
import { existingHostKey, makeKeyring } from './signing.ts';

export async function catalogTrust(ctx: ConfigContext): Promise<CatalogTrust> {
  return { keys: makeKeyring(ctx.config.trusted_keys, await existingHostKey(ctx.config.stateDir)), plugins: Object.keys(ctx.registry) };
}
