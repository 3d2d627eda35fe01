// The plain list of target kinds (no registration magic).
import type { Config } from '../config/load.ts';
import type { TargetConfig } from '../config/schema.ts';
import { UsageError } from '../errors.ts';
import { LocalTarget } from './local.ts';
import { RcloneTarget } from './rclone.ts';
import type { Target } from './target.ts';

export function makeTarget(t: TargetConfig): Target {
  switch (t.type) {
    case 'local':
      return new LocalTarget(t.name, t.path);
    case 'rclone':
      return new RcloneTarget({ name: t.name, remote: t.remote, config: t.config, flags: t.flags, timeoutSeconds: t.timeout_seconds, retries: t.retries });
  }
}

/** The targets named by --target, or all of them. */
export function selectTargets(config: Config, name?: string): Target[] {
  const chosen = name ? config.targets.filter((t) => t.name === name) : config.targets;
  if (name && chosen.length === 0) {
    throw new UsageError(`unknown target "${name}"`, `configured targets: ${config.targets.map((t) => t.name).join(', ')}`);
  }
  return chosen.map(makeTarget);
}
