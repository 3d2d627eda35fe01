// Running the datastore's own tools inside its container, with the credentials in an
// option file the container writes for itself (0600, removed afterwards): passwords
// never appear on a command line.
import { type ExecRun, type PluginContext, writePrivateFile } from '../../agent/plugin/index.ts';

/** Writes the option file inside the container; returns its path there. */
export function writeOptionFile(ctx: PluginContext, container: string, content: string): Promise<string> {
  return writePrivateFile(ctx, container, content, '.cnf');
}

// $1: option file (removed on exit), $2: which tool ("dump" or "client"), then its args.
// The client reads a dump that came out of a container, i.e. text an attacker may have
// written: --binary-mode stops it from running client commands (\! / system, source,
// connect, tee, pager...) found in piped input, leaving only DELIMITER and \C; where
// the client has it, --sandbox (MariaDB 10.5.25+, 10.6.18+, 10.11.8+) or --commands=OFF
// (MySQL 8.0.40+) refuses them outright as well. Probed with --no-defaults --version so
// the dump is never fed to a client that rejects the option.
const TOOL = `f="$1"; kind="$2"; shift 2
trap 'rm -f "$f"' EXIT
if [ "$kind" = dump ]; then tool=$(command -v mariadb-dump || command -v mysqldump); else tool=$(command -v mariadb || command -v mysql); fi
[ -n "$tool" ] || { echo "neither mariadb-$kind nor its mysql name is installed in this container" >&2; exit 127; }
if [ "$kind" = client ]; then
  for o in --sandbox --commands=OFF; do
    if "$tool" --no-defaults "$o" --version >/dev/null 2>&1; then set -- "$o" "$@"; break; fi
  done
  set -- --binary-mode "$@"
fi
"$tool" --defaults-extra-file="$f" "$@"`;

/** Starts mariadb-dump (or mysqldump) / mariadb (or mysql) with the option file. Names
 * in `args` must follow a "--": a database named like an option is then only a name. */
export function startTool(ctx: PluginContext, container: string, optionFile: string, kind: 'dump' | 'client', args: string[]): Promise<ExecRun> {
  return ctx.docker.exec(container, { cmd: ['sh', '-c', TOOL, 'snapagent', optionFile, kind, ...args], stdin: kind === 'client', bulk: kind === 'client' ? 'stdin' : 'stdout' });
}

// The same text options for the backup dump and the verification dump, so that both
// print every row identically.
export const FORMAT = ['--routines', '--events', '--triggers', '--hex-blob', '--add-drop-database', '--default-character-set=utf8mb4', '--skip-dump-date'];
