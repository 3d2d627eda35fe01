// Running the datastore's own tools inside its container, with the credentials in an
// option file the container writes for itself (0600, removed afterwards): passwords
// never appear on a command line.
import { SnapError } from '../../agent/errors.ts';
import type { ExecRun } from '../../agent/docker/client.ts';
import type { PluginContext } from '../../agent/plugin.ts';

/** Runs a short command and collects its output. */
export async function runIn(ctx: PluginContext, container: string, cmd: string[], input?: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const run = await ctx.docker.exec(container, { cmd, stdin: input !== undefined });
  let stdout = '';
  run.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  if (input !== undefined) run.stdin!.end(input);
  const res = await run.done;
  return { exitCode: res.exitCode, stdout, stderr: res.stderr };
}

/** Writes the option file inside the container; returns its path there. */
export async function writeOptionFile(ctx: PluginContext, container: string, content: string): Promise<string> {
  const res = await runIn(ctx, container, ['sh', '-c', 'umask 077; f=$(mktemp /tmp/snapagent-XXXXXX.cnf) && cat > "$f" && echo "$f"'], content);
  const file = res.stdout.trim();
  if (res.exitCode !== 0 || !file.startsWith('/tmp/')) throw new SnapError(`cannot write a client option file in the container: ${res.stderr.trim()}`);
  return file;
}

// $1: option file (removed on exit), $2: which tool ("dump" or "client"), then its args.
const TOOL = `f="$1"; kind="$2"; shift 2
trap 'rm -f "$f"' EXIT
if [ "$kind" = dump ]; then tool=$(command -v mariadb-dump || command -v mysqldump); else tool=$(command -v mariadb || command -v mysql); fi
[ -n "$tool" ] || { echo "neither mariadb-$kind nor its mysql name is installed in this container" >&2; exit 127; }
"$tool" --defaults-extra-file="$f" "$@"`;

/** Starts mariadb-dump (or mysqldump) / mariadb (or mysql) with the option file. */
export function startTool(ctx: PluginContext, container: string, optionFile: string, kind: 'dump' | 'client', args: string[]): Promise<ExecRun> {
  return ctx.docker.exec(container, { cmd: ['sh', '-c', TOOL, 'snapagent', optionFile, kind, ...args], stdin: kind === 'client', bulk: kind === 'client' ? 'stdin' : 'stdout' });
}
