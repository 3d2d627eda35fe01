// Shell run inside the Cassandra container (sh, GNU tar, find: the official image has
// them). Names and paths are passed as positional arguments ("$@"), never spliced into
// the script, and reach each tool after "--" (tar: --add-file=), so that none can be read
// as an option; the names themselves are checked first (names.ts). nodetool starts a
// JVM per call (1-1.5 s): each script calls it as few times as it can.
import { runIn, type PluginContext } from '../../agent/plugin/index.ts';
import type { TableRef } from './cql.ts';

/** $1: snapshot tag, then nodetool snapshot's selection ("--" and keyspaces, or -kt ks.t,...).
 * `nodetool snapshot` flushes the memtables of what it snapshots first (no --skip-flush). */
export const SNAPSHOT = `tag=$1; shift
exec nodetool snapshot -t "$tag" "$@"`;

/** $1: snapshot tag. Removes that snapshot from every keyspace of the node. */
export const CLEAR = `exec nodetool clearsnapshot -t "$1"`;

/** $1: data dir, $2: snapshot tag, then <ks>/<table>-<id> dirs. For each snapshot dir of
 * the tag that exists: "snapagent-dir <path> <files> <bytes>", then its schema.cql as
 * "snapagent-schema <path> <base64>" (one line: the file's text cannot forge lines).
 * Then "snapagent-stale <tag>" for other snapshots named like a backup id, left by a
 * run that was killed. */
export const LIST = `set -u
cd "$1" || exit 70
tag=$2; shift 2
for d in "$@"; do
  s="$d/snapshots/$tag"
  [ -d "$s" ] || continue
  printf 'snapagent-dir %s %s\\n' "$s" "$(find "./$s" -type f -printf '%s\\n' | awk '{n++; b+=$1} END {printf "%d %.0f", n, b}')"
  if [ -f "$s/schema.cql" ]; then printf 'snapagent-schema %s %s\\n' "$s" "$(base64 -w0 -- "$s/schema.cql")"; fi
done
# only names shaped like a backup id: a name holding a newline would forge lines above
find . -mindepth 4 -maxdepth 4 -type d -regextype posix-extended -regex '[.]/[^/]*/[^/]*/snapshots/[0-9]{8}T[0-9]{6}Z[-A-Za-z0-9_.]*' ! -name "$tag" -printf '%f\\n' | sort -u | sed 's/^/snapagent-stale /'`;

/** $1: data dir, $2: the schema file (in /tmp, removed on exit), then snapshot dirs
 * (<ks>/<table>-<id>/snapshots/<tag>) relative to the data dir. Writes a tar to stdout:
 * schema.cql first, then tables/<ks>/<table>/<files of the snapshot>. */
export const TAR = `set -u
dd=$1; schema=$2; shift 2
trap 'rm -f "$schema"' EXIT
n=$#
for p; do set -- "$@" --add-file="$p"; done
shift "$n"
[ $# -eq 0 ] || set -- -C "$dd" "$@"
tar --create --file=- --totals --format=posix --pax-option=delete=atime,delete=ctime --numeric-owner \\
  --transform='s,^snapagent-[^/]*[.]cql$,schema.cql,' \\
  --transform='s,^\\([^/]*\\)/\\([^/]*\\)-[0-9a-f]\\{32\\}/snapshots/[^/]*,tables/\\1/\\2,' \\
  -C "$(dirname -- "$schema")" --add-file="$(basename -- "$schema")" "$@"`;

/** $1: staging dir (created fresh), $2: whose owner the files get (the data dir), then
 * the members to extract. Reads the tar on stdin; prints "snapagent-extracted". */
export const EXTRACT = `set -eu
stage=$1; owner=$(stat -c %u:%g -- "$2"); shift 2
rm -rf -- "$stage"; mkdir -p -- "$stage"
tar --extract --file=- --read-full-records --numeric-owner --directory="$stage" "$@"
# the rest of the stream (record padding) is read too, so the writer finishes
cat >/dev/null
chown -R "$owner" "$stage"
echo snapagent-extracted`;

/** $1: staging dir, then ks.table names. nodetool import of each table's staged
 * SSTables; prints "snapagent-left <ks.table> <n>" with the Data files it did not take. */
export const IMPORT = `set -u
stage=$1; shift
for t in "$@"; do
  ks=\${t%%.*}; tb=\${t#*.}; dir="$stage/tables/$ks/$tb"
  if ls "$dir"/*-Data.db >/dev/null 2>&1; then
    nodetool import -- "$ks" "$tb" "$dir" >&2 || echo "snapagent-failed $t $?"
  fi
  printf 'snapagent-left %s %s\\n' "$t" "$(find "$dir" -maxdepth 1 -name '*-Data.db' | wc -l)"
done`;

/** ks.table names. This node's own statistics of those tables as JSON: SSTables and
 * memtable cells held here, whatever the other ring members hold. */
/** Table dirs of a staged restore: each one's schema.cql as "snapagent-schema <dir> <base64>". */
export const SCHEMAS = `for d; do b=$(base64 -w0 -- "$d/schema.cql") || exit 1; printf 'snapagent-schema %s %s\\n' "$d" "$b"; done`;

export const TABLESTATS = `exec nodetool tablestats -F json -- "$@"`;

/** $1: staging dir. */
export const DISCARD = `rm -rf -- "$1"`;

/** Runs one of these scripts in the container with its positional arguments. */
export async function sh(ctx: PluginContext, c: string, script: string, args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return runIn(ctx, c, ['sh', '-c', script, 'snapagent', ...args]);
}

/** A table's directory under the data dir: <keyspace>/<table>-<id without dashes>. */
export const dirOf = (t: TableRef) => `${t.keyspace}/${t.table}-${t.id.replaceAll('-', '')}`;

/** The "snapagent-dir"/"snapagent-stale" lines of a LIST output, and each schema.cql by
 * its dir (LIST and SCHEMAS print it base64-encoded on one line). */
export function parseSections(out: string): { lines: string[]; schemas: Map<string, string> } {
  const lines: string[] = [];
  const schemas = new Map<string, string>();
  for (const l of out.split('\n')) {
    const m = /^snapagent-schema (.+) ([A-Za-z0-9+/=]*)$/.exec(l);
    if (m) {
      if (!schemas.has(m[1]!)) schemas.set(m[1]!, Buffer.from(m[2]!, 'base64').toString('utf8'));
    } else if (/^snapagent-(dir|stale) /.test(l)) lines.push(l);
  }
  return { lines, schemas };
}
