// Shell run inside the mongo container. Paths and arguments come as positional
// arguments ("$@"), never spliced into the script.

// $1: --config file (removed on exit), $2: the tool, then its args. The archive goes
// through stdout (mongodump) or stdin (mongorestore).
export const TOOL = `f="$1"; tool="$2"; shift 2
trap 'rm -f "$f"' EXIT
command -v "$tool" >/dev/null || { echo "$tool is not installed in this container (the official mongo image has it)" >&2; exit 127; }
"$tool" --config="$f" "$@"`;
