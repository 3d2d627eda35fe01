// What catalog readers trust, from the config: the public keys in `trusted_keys`, this
// host's own key (when it has one: readers never make it) and the plugins this agent has.
// With the host's key, readers also rewrite this host's stale catalog indexes.
import type { ConfigContext } from '../context.ts';
import type { CatalogTrust } from './manifest.ts';
import { existingSigner, makeKeyring } from './signing.ts';

export async function catalogTrust(ctx: ConfigContext): Promise<CatalogTrust> {
  const own = await existingSigner(ctx.config.stateDir);
  return {
    keys: makeKeyring(ctx.config.trusted_keys, own && { key: own.key, id: own.id, line: own.line }),
    plugins: Object.keys(ctx.registry),
    ...(own ? { writer: { host: ctx.config.host, key: own } } : {}),
  };
}
