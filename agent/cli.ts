// The snapagent command line (README "Commands"). Exit codes: 0 everything asked for
// succeeded, 1 something failed, 2 bad usage/config, 3 integrity, 4 refused for safety.
import { Command, CommanderError, Option } from 'commander';
import { ExitCode, SnapError } from './errors.ts';
import { log, redact } from './log.ts';
import { startProcess } from './runtime/recovery.ts';
import { VERSION } from './version.ts';
import { registry } from './commands/common.ts';

const collect = (v: string, prev: string[]) => [...prev, v];

// Each command's module (and what only it needs: the daemon's scheduler, the backup and
// restore pipelines...) loads when that command runs, not with every command.

function globals(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'config file (default: $SNAPAGENT_CONFIG, else the built-in default)')
    .option('--json', 'print one JSON document on stdout (logs stay on stderr)');
}

export function buildCli(): Command {
  const program = new Command('snapagent')
    .version(VERSION)
    .description('Backups of Docker volumes and datastores, streamed, checksummed, restorable from the target alone.')
    .exitOverride()
    .showHelpAfterError()
    // every command first repairs what a killed run left (stopped containers, ...)
    .hook('preAction', (_program, action) => startProcess(action.opts().config as string | undefined, process.argv.slice(2).join(' '), registry));

  globals(program.command('plan').description('show what would be backed up, to where, and why')).action(async (o) => (await import('./commands/plan.ts')).planCommand(o));

  globals(program.command('backup').description('back up the planned jobs'))
    .option('-j, --job <name>', 'only this job (repeatable)', collect, [])
    .option('-t, --tier <tier>', "only this tier's jobs")
    .option('--target <name>', 'only this target')
    .action(async (o) => (await import('./commands/backup.ts')).backupCommand(o));

  globals(program.command('list').description('list committed backups (reads the targets only)'))
    .option('-j, --job <name>', 'only this job')
    .option('--target <name>', 'only this target')
    .option('--host <name>', "another host's backups (default: this host)")
    .action(async (o) => (await import('./commands/list.ts')).listCommand(o));

  globals(program.command('restore').description('restore a backup (verified before live data changes)'))
    .option('-j, --job <name>', 'the job to restore')
    .option('--id <id>', 'backup id, or "latest"', 'latest')
    .option('--target <name>', 'read from this target (default: the configured targets, first match)')
    .option('--host <name>', "restore another host's backup (disaster recovery)")
    .option('--to-volume <volume>', 'restore into this volume instead of the original')
    .addOption(new Option('--to-container <container>', 'restore into this container (datastore plugins)'))
    .option('--database <name>', 'restore only this database (mariadb, mongo) or keyspace (cassandra)')
    .option('--collection <name>', 'with --database: restore only this collection (mongo) or table (cassandra)')
    .option('--rename-to <name>', 'restore the selection under another name: a database, or with --collection a collection (mongo)')
    .option('--stop', 'stop the containers using the data during the restore, then restart them')
    .option('--force', 'restore even while containers use the data')
    .option('--restore-users', 'also restore the database accounts a backup holds (mongo: admin.system.users/roles)')
    .option('--before <time>', 'the newest backup at or before this time (ISO 8601; without a zone: local time)')
    .option('--at <time>', 'with --job: restore to this point in time (jobs with pitr: the newest dump before it, then the oplog replayed up to it)')
    .option('--all', 'restore the latest backup of every job: volumes, then the compose stack (config compose), then datastores')
    .option('--pick', 'choose jobs and backups on the terminal')
    .option('--insecure-unsigned', 'accept backups whose manifest has no signature (made before snapagent signed them); warns naming each')
    .action(async (o) => (await import('./commands/restore.ts')).restoreCommand({ ...o, id: o.all || o.pick ? undefined : o.id }));

  globals(program.command('status').description('is every job backed up recently enough? exit 1 when one is stale, failing or never backed up'))
    .action(async (o) => (await import('./commands/status.ts')).statusCommand(o));
  globals(program.command('verify').description('check stored backups against their manifests; --drill: restore them into throwaway copies'))
    .option('-j, --job <name>', 'only this job')
    .option('--id <id>', 'backup id, "latest" (the newest of each job on each target) or "all"', 'latest')
    .option('-t, --tier <tier>', "only this tier's backups")
    .option('--target <name>', 'only this target')
    .option('--host <name>', "another host's backups (default: this host)")
    .option('--drill', 'restore into a throwaway volume or server of the same image, compare, remove it')
    .option('--image <image>', 'with --drill: start the throwaway server from this image (default: the recorded one, when the config allows it)')
    .option('--insecure-unsigned', 'accept backups whose manifest has no signature (made before snapagent signed them); warns naming each')
    .action(async (o) => (await import('./commands/verify.ts')).verifyCommand(o));
  globals(program.command('prune').description("remove old backups by each job's retention policy (never the newest one)"))
    .option('-j, --job <name>', 'only this job (repeatable)', collect, [])
    .option('--target <name>', 'only this target')
    .option('-n, --dry-run', 'show what would be removed and what stays, and why; remove nothing')
    .option('--insecure-unsigned', 'accept backups whose manifest has no signature (made before snapagent signed them); warns naming each')
    .action(async (o) => (await import('./commands/prune.ts')).pruneCommand(o));

  globals(program.command('key').description("print this host's public signing key (for trusted_keys elsewhere); made if the host has none"))
    .action(async (o) => (await import('./commands/key.ts')).keyCommand(o));

  program
    .command('run')
    .description('daemon: run each tier at its schedule (and a missed slot once on start) until SIGTERM')
    .option('-c, --config <file>', 'config file (default: $SNAPAGENT_CONFIG, else the built-in default)')
    .action(async (o) => (await import('./commands/run.ts')).runCommand(o));

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildCli();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return (process.exitCode as number | undefined) ?? ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (err instanceof SnapError) {
      process.stderr.write(`snapagent: ${redact(err.message)}\n`);
      if (err.hint) process.stderr.write(`  next: ${redact(err.hint)}\n`);
      return err.exitCode;
    }
    log.error({ err }, 'unexpected error');
    process.stderr.write(`snapagent: unexpected error: ${redact(String((err as Error)?.stack ?? err))}\n`);
    return ExitCode.failed;
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
