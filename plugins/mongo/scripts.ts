// Shell run inside the mongo container. Paths and arguments come as positional
// arguments ("$@"), never spliced into the script.

// $1: --config file (removed on exit), $2: the tool, then its args. The archive goes
// through stdout (mongodump) or stdin (mongorestore, read to its end).
export const TOOL = `f="$1"; tool="$2"; shift 2
trap 'rm -f "$f"' EXIT
command -v "$tool" >/dev/null || { echo "$tool is not installed in this container (the official mongo image has it)" >&2; exit 127; }
"$tool" --config="$f" "$@"
rc=$?
# a restore's archive is read to its end whatever mongorestore left of it: the agent
# checks every stored byte, and its zstd writes straight into this stdin
[ "$tool" != mongorestore ] || cat >/dev/null 2>&1
exit $rc`;
