// Job options of the volume plugin (plugins/volume/README.md).
import { z } from 'zod';
import { seconds } from '../../agent/plugin/index.ts';

export const optionsSchema = z.strictObject({
  /** tar --exclude patterns, relative to the volume root (e.g. "./cache"). */
  exclude: z.array(z.string()).default([]),
  /** Seconds Docker waits for a container to stop before killing it. */
  stop_timeout: seconds().default(30),
});
export type VolumeOptions = z.output<typeof optionsSchema>;
