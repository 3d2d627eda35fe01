// What a restore takes from a backup's manifest: WHAT to restore, nothing more. The
// remote is data, not instructions (SECURITY.md): connection settings, credentials,
// destinations, volume drivers and their options, drill images and database accounts
// come from the config, the plan or the command line. Where a fresh host must use a
// value the backup recorded (the volume's driver, the container's name, the drill's
// image), it has to match an allow-list of the config (`restore:`), or the operator
// gives it on the command line. Pure: no I/O.
import type { Config } from '../config/load.ts';
import { RefusedError } from '../errors.ts';
import type { Listed } from '../catalog/manifest.ts';
import type { Job, VolumeSpec } from '../plugin/contract.ts';
import { plugins } from '../../plugins/index.ts';

/** A manifest asked for something only the operator may decide; nothing was changed. */
export class UntrustedManifestError extends RefusedError {}

/** Glob match of a whole name: `*` any run of characters, `?` one character. */
export function globMatch(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's').test(value);
}

export const allowed = (patterns: readonly string[], value: string): boolean => patterns.some((p) => globMatch(p, value));

export interface Given {
  toVolume?: string;
  toContainer?: string;
  /** A drill: its destination is a throwaway volume or server, never the recorded one. */
  drill?: boolean;
}

/** The job to restore into: the planned one (config, labels) when there is one; else one
 * rebuilt from the manifest with only what the backup holds (the plugin's
 * `recordedOptions`), and a destination from the command line, or the recorded one when
 * `restore.destinations` allows it. */
export function jobFromManifest(config: Config, listed: Listed, planned: Job | undefined, given: Given = {}): Job {
  const m = listed.manifest;
  const plugin = plugins[m.plugin];
  const where = `backup ${m.job}/${m.id}`;
  if (!plugin) throw new UntrustedManifestError(`${where} was made by plugin "${m.plugin}", which this agent does not have; nothing was changed`);
  if (planned) {
    if (planned.plugin !== m.plugin) {
      throw new UntrustedManifestError(`${where}: its manifest says plugin ${m.plugin}, this host's job ${planned.name} is a ${planned.plugin} job; nothing was changed`, 'restore it on its own with --to-volume / --to-container, or fix the job');
    }
    return planned;
  }
  const raw = Object.fromEntries(plugin.recordedOptions.filter((k) => k in m.options).map((k) => [k, m.options[k]]));
  const job: Job = {
    name: m.job,
    plugin: m.plugin,
    tier: m.tier,
    origin: 'label',
    reason: `manifest ${listed.dir}`,
    stop: false,
    order: 0,
    targets: [listed.target.name],
    options: plugin.parseOptions(raw, `manifest ${listed.dir}`),
  };
  if (given.drill) return job;
  const kind = m.plugin === 'volume' ? 'volume' : 'container';
  const asked = kind === 'volume' ? given.toVolume : given.toContainer;
  if (asked) return job; // the command line names the destination
  const recorded = typeof m.source[kind] === 'string' ? (m.source[kind] as string) : undefined;
  if (recorded && allowed(config.restore.destinations, recorded)) return { ...job, [kind]: recorded };
  throw new UntrustedManifestError(
    `${where}: job ${m.job} is not in this host's plan, and its manifest's destination ${kind} ${recorded ? `"${recorded}"` : '(none)'} is not in restore.destinations; nothing was changed`,
    `name the destination (--to-${kind} NAME), add the job to the config, or allow the recorded name in restore.destinations`,
  );
}

const REDACTED = /^(\*+|<?\[?redacted\]?>?)$/i;

/** A local-driver mount of a host path: never taken from a manifest. */
export function bindLike(options: Record<string, unknown>): boolean {
  const o = typeof options.o === 'string' ? options.o : '';
  const device = typeof options.device === 'string' ? options.device : '';
  return options.type === 'none' || /(^|,)\s*r?bind\s*(,|$)/.test(o) || device.startsWith('/');
}

/** The spec to create `volume` with when it is missing: restore.volumes.<volume> of the
 * config; else, for the volume the backup was taken of, the recorded driver when
 * restore.volume_drivers allows it, with its recorded options only when
 * restore.driver_options allows them (and never bind-mount ones); else a plain local volume. */
export function volumeSpec(config: Config, volume: string, recordedVolume: boolean, source: Record<string, unknown>, where: string): VolumeSpec {
  const rawLabels = source.labels && typeof source.labels === 'object' ? (source.labels as Record<string, unknown>) : {};
  const labels = recordedVolume ? Object.fromEntries(Object.entries(rawLabels).filter((e): e is [string, string] => typeof e[1] === 'string')) : {};
  const own = config.restore.volumes[volume];
  if (own) return { driver: own.driver, options: own.driver_options, labels };
  if (!recordedVolume) return { driver: 'local', options: {}, labels: {} };
  const driver = typeof source.driver === 'string' ? source.driver : 'local';
  const opts = source.driver_options && typeof source.driver_options === 'object' ? (source.driver_options as Record<string, unknown>) : {};
  const hint = `give the volume's spec in the config (restore.volumes.${volume}: { driver, driver_options }), or restore into another volume (--to-volume)`;
  if (!allowed(config.restore.volume_drivers, driver)) {
    throw new UntrustedManifestError(`${where}: volume ${volume} would be recreated with driver "${driver}" (recorded in the manifest), which restore.volume_drivers does not allow; nothing was changed`, hint);
  }
  if (Object.keys(opts).length === 0) return { driver, options: {}, labels };
  if (bindLike(opts)) {
    throw new UntrustedManifestError(
      `${where}: volume ${volume} would be recreated as a bind mount of a host path (driver_options ${Object.entries(opts).map(([k, v]) => `${k}=${String(v)}`).join(' ')} recorded in the manifest): never taken from a manifest; nothing was changed`,
      hint,
    );
  }
  if (!config.restore.driver_options) {
    throw new UntrustedManifestError(`${where}: volume ${volume} would be recreated with driver options ${Object.keys(opts).join(', ')} recorded in the manifest, which the config does not allow (restore.driver_options); nothing was changed`, hint);
  }
  const bad = Object.entries(opts).filter(([, v]) => typeof v !== 'string' || REDACTED.test(v));
  if (bad.length) {
    throw new UntrustedManifestError(`${where}: volume ${volume}: driver option(s) ${bad.map(([k]) => k).join(', ')} are not in the manifest (redacted secrets); nothing was changed`, hint);
  }
  return { driver, options: opts as Record<string, string>, labels };
}

/** The image a drill of this backup starts: the operator's (--image), or the recorded one
 * when it is the image of the job's own container on this host or restore.drill_images
 * allows it. */
export function drillImage(config: Config, recorded: unknown, ownImage: string | undefined, given: string | undefined, where: string): string {
  if (given) return given;
  if (typeof recorded !== 'string' || !recorded) throw new UntrustedManifestError(`${where}: the manifest records no image (source.image): a drill needs the datastore's image`, 'pass --image IMAGE');
  if (recorded === ownImage || allowed(config.restore.drill_images, recorded)) return recorded;
  throw new UntrustedManifestError(
    `${where}: the drill would start image "${recorded}" (recorded in the manifest), which is neither the job's own container's image nor in restore.drill_images; nothing was started`,
    'allow it in the config (restore.drill_images), or pass --image IMAGE',
  );
}
