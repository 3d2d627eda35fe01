// The plugin kit: the one module of the agent a plugin imports (test/unit/plugin-door.test.ts
// checks it). Everything a plugin may use of the agent is re-exported here: the contract,
// access to containers and their secrets, quiescing, feeding restored bytes, what a run
// records for the repair after a kill (noteStage, noteLiveChange, noteRepair), the shared
// tar helpers, name checks, option parsing, errors, and the types of the Docker client
// and logger. A plugin otherwise imports only its own folder, node: modules and npm
// packages, never another plugin.
export type {
  BackupStream,
  ChainPiece,
  DatastorePlugin,
  DrillPlan,
  DrillServer,
  IncrementalBase,
  Job,
  KilledWork,
  LogPosition,
  LogRead,
  LogReader,
  LogReplay,
  PluginContext,
  PluginRegistry,
  PluginIndex,
  PluginStats,
  PointInTime,
  RawInput,
  RestoreOptions,
  RestoreReport,
  VolumeSpec,
} from './contract.ts';
export {
  argValue,
  containerSecret,
  endpoint,
  freshPassword,
  lastLines,
  runIn,
  runningContainer,
  secretFromOptions,
  withoutConnection,
  writePrivateFile,
  type Endpoint,
  type SecretOptions,
} from './access.ts';
export { feedDraining, feedHelper, feedPiece } from './feed.ts';
export { stopInOrder, volumeUsers, type Quiesced } from './quiesce.ts';
export { checkName, checkNames, DOCKER_NAME, maxLength, patternRule, type CheckOptions, type NameRule } from './names.ts';
export { parseStats, toolMessages } from './tar-scripts.ts';
export { noteLiveChange, noteRepair, noteStage, type RepairData, type Stage } from '../runtime/inflight.ts';
export { comparePos, showPos } from '../pitr/position.ts';
export { ExitCode, IntegrityError, LogGapError, RefusedError, SnapError, UsageError } from '../errors.ts';
export { registerSecret, type Logger } from '../log.ts';
export { CREDENTIAL_NAME } from '../secret-forms.ts';
export { parseSchema } from '../config/load.ts';
export { seconds } from '../config/schema.ts';
export { BACKUP_ID, backupId } from '../catalog/manifest.ts';
export type { ContainerDetails, DockerClient, ExecRun, HelperCollect, HelperFile, HelperResult, HelperRun, HelperSpec, VolumeInfo } from '../docker/client.ts';
