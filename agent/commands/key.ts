// snapagent key: this host's public signing key, for `trusted_keys` on the hosts that
// restore, verify or prune its backups (docs/design.md "Signed manifests"). Makes the key when
// the host has none yet, as its first backup would.
import { loadConfig } from '../config/load.ts';
import { log } from '../log.ts';
import { hostKey } from '../catalog/signing.ts';
import { output, type GlobalOptions } from './common.ts';

export async function keyCommand(opts: GlobalOptions): Promise<void> {
  const config = loadConfig(opts.config);
  const k = await hostKey(config.stateDir);
  // the private key's file is named, its content never shown
  log.info({ key_id: k.id, file: k.file }, 'host signing key');
  output(Boolean(opts.json), { host: config.host, key_id: k.id, public_key: `${k.line} snapagent@${config.host}`, private_key_file: k.file }, () => `${k.line} snapagent@${config.host}`);
}
