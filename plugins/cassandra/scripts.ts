// Shell run inside the Cassandra container (sh, GNU tar, find: the official image has
// them). Names and paths are passed as positional arguments ("$@"), never spliced into
// the script, and reach each tool after "--" (tar: --add-file=, or a list it reads with
// --verbatim-files-from), so that none can be read as an option; the names themselves are checked first (names.ts). nodetool starts a
// JVM per call (1-1.5 s): each script calls it as few times as it can.
import { runIn, type PluginContext } from '../../agent/plugin/index.ts';
import type { TableRef } from './cql.ts';

/** names.ts FILE as find's -regex (posix-extended, the whole path from "."). */
const FILE_RE = String.raw`\./(\.[A-Za-z0-9_]+/)?[A-Za-z0-9][A-Za-z0-9_.+-]*`;

/** $1: snapshot tag, then nodetool snapshot's selection ("--" and keyspaces, or -kt ks.t,...).
 * `nodetool snapshot` flushes the memtables of what it snapshots first (no --skip-flush). */
export const SNAPSHOT = `tag=$1; shift
exec nodetool snapshot -t "$tag" "$@"`;

/** $1: snapshot tag. Removes that snapshot from every keyspace of the node. */
export const CLEAR = `exec nodetool clearsnapshot -t "$1"`;

/** $1: data dir, $2: snapshot tag, then <ks>/<table>-<id> dirs. For each snapshot dir of
 * the tag that exists: "snapagent-dir <path> <files> <bytes>", then its schema.cql as
 * "snapagent-schema <path> <base64>" (one line: the file's text cannot forge lines), then
 * each file as "snapagent-size <n> <bytes> <name>" and "snapagent-sum <n> <sha256>  ./<name>"
 * (n: the dir's place among the arguments, from 1) and "snapagent-odd <n> <count>": files
 * named unlike a snapshot's (FILE_RE) are counted, never printed, for the same reason.
 * Then "snapagent-stale <tag>" for other snapshots named like a backup id, left by a
 * run that was killed. */
export const LIST = `set -u
cd "$1" || exit 70
tag=$2; shift 2
safe='${FILE_RE}'
n=0
for d in "$@"; do
  n=$((n + 1))
  s="$d/snapshots/$tag"
  [ -d "$s" ] || continue
  printf 'snapagent-dir %s %s\\n' "$s" "$(find "./$s" -type f -printf '%s\\n' | awk '{n++; b+=$1} END {printf "%d %.0f", n, b}')"
  if [ -f "$s/schema.cql" ]; then printf 'snapagent-schema %s %s\\n' "$s" "$(base64 -w0 -- "$s/schema.cql")"; fi
  (cd "./$s" || exit 71
    find . -type f -regextype posix-extended -regex "$safe" -printf '%s %P\\n' | sed "s/^/snapagent-size $n /"
    find . -type f -regextype posix-extended -regex "$safe" -exec sha256sum -- {} + | sed "s/^/snapagent-sum $n /"
    printf 'snapagent-odd %s %s\\n' "$n" "$(find . -type f -regextype posix-extended ! -regex "$safe" -printf x | wc -c)") || exit 71
done
# only names shaped like a backup id: a name holding a newline would forge lines above
find . -mindepth 4 -maxdepth 4 -type d -regextype posix-extended -regex '[.]/[^/]*/[^/]*/snapshots/[0-9]{8}T[0-9]{6}Z[-A-Za-z0-9_.]*' ! -name "$tag" -printf '%f\\n' | sort -u | sed 's/^/snapagent-stale /'`;

/** $1: data dir, $2: the schema file, $3: the list of files to ship, one a line, relative
 * to the data dir (<ks>/<table>-<id>/snapshots/<tag>/<name>; both files in /tmp, removed
 * on exit). Writes a tar to stdout: schema.cql first, then tables/<ks>/<table>/<name> of
 * each listed file. */
export const TAR = `set -u
dd=$1; schema=$2; list=$3
trap 'rm -f "$schema" "$list"' EXIT
tar --create --file=- --totals --format=posix --pax-option=delete=atime,delete=ctime --numeric-owner \\
  --transform='s,^snapagent-[^/]*[.]cql$,schema.cql,' \\
  --transform='s,^\\([^/]*\\)/\\([^/]*\\)-[0-9a-f]\\{32\\}/snapshots/[^/]*,tables/\\1/\\2,' \\
  -C "$(dirname -- "$schema")" --add-file="$(basename -- "$schema")" \\
  -C "$dd" --verbatim-files-from --files-from="$list"`;

/** $1: staging dir, $2: whose owner the files get (the data dir), $3: "fresh" (the dir is
 * created anew) or "add" (more files into it), $4: the members to extract, one a line
 * (a file in /tmp, removed on exit; never empty: tar would take every member). Reads the
 * tar on stdin; prints "snapagent-extracted". A listed member missing from the tar fails. */
export const EXTRACT = `set -eu
stage=$1; owner=$(stat -c %u:%g -- "$2"); mode=$3; list=$4
trap 'rm -f "$list"' EXIT
[ -s "$list" ] || exit 64
if [ "$mode" = fresh ]; then rm -rf -- "$stage"; mkdir -p -- "$stage"; fi
tar --extract --file=- --read-full-records --numeric-owner --directory="$stage" --verbatim-files-from --files-from="$list"
# the rest of the stream (record padding) is read too, so the writer finishes
cat >/dev/null
chown -R "$owner" "$stage"
echo snapagent-extracted`;

/** $1: staging dir. The sha256 of each staged table file, as sha256sum prints it
 * (relative to the staging dir), and "snapagent-odd <count>" of files named otherwise. */
export const SUMS = `set -u
cd "$1" || exit 70
safe='tables/[A-Za-z0-9_]+/[A-Za-z0-9_]+/${FILE_RE.slice(3)}'
[ -d tables ] || { echo 'snapagent-odd 0'; exit 0; }
find tables -type f -regextype posix-extended -regex "$safe" -exec sha256sum -- {} + || exit 71
printf 'snapagent-odd %s\\n' "$(find tables -type f -regextype posix-extended ! -regex "$safe" -printf x | wc -c)"`;

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

/** What LIST printed of each snapshot dir's files, by the dir's place (from 1): sizes and
 * sha256 by name, and how many files it left out for their names. */
export interface ListedFiles {
  sizes: Map<string, number>;
  sums: Map<string, string>;
  odd: number;
}

export function parseFiles(out: string): Map<number, ListedFiles> {
  const dirs = new Map<number, ListedFiles>();
  const dir = (n: string) => {
    const k = Number(n);
    if (!dirs.has(k)) dirs.set(k, { sizes: new Map(), sums: new Map(), odd: 0 });
    return dirs.get(k)!;
  };
  for (const l of out.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^snapagent-size (\d+) (\d+) (\S+)$/.exec(l))) dir(m[1]!).sizes.set(m[3]!, Number(m[2]));
    else if ((m = /^snapagent-sum (\d+) ([0-9a-f]{64}) {2}\.\/(\S+)$/.exec(l))) dir(m[1]!).sums.set(m[3]!, m[2]!);
    else if ((m = /^snapagent-odd (\d+) (\d+)$/.exec(l))) dir(m[1]!).odd += Number(m[2]);
  }
  return dirs;
}

/** SUMS' output: the sha256 of each staged file by its path under the staging dir, and
 * the count of files named otherwise (-1: a line it could not read). */
export function parseSums(out: string): { sums: Map<string, string>; odd: number } {
  const sums = new Map<string, string>();
  let odd = -1;
  for (const l of out.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^([0-9a-f]{64}) {2}(tables\/\S+)$/.exec(l))) sums.set(m[2]!, m[1]!);
    else if ((m = /^snapagent-odd (\d+)$/.exec(l))) odd = Number(m[1]);
    else if (l !== '') return { sums, odd: -1 };
  }
  return { sums, odd };
}
