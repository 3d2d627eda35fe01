// Shell run inside the helper container (GNU tar, coreutils, findutils). Paths come as
// positional arguments ("$@"), never spliced into the script.

/** Where helper containers mount the repository's volume. */
export const MOUNT = '/snapagent/repo-volume';

/** Stats of a repository directory (the current directory), printed on stderr. */
const STATS = `find . -type f -printf '%s\\n' | awk '{n++; b+=$1} END {printf "snapagent-stats files=%.0f bytes=%.0f\\n", n, b}' >&2`;

// What the repository holds (names, sizes, modification times), as one digest in $s:
// equal before and after a step means no file appeared, vanished or was rewritten
// meanwhile. Needs $t (a scratch directory of the helper's own) and the repository as
// the current directory.
const STATE = `digest() {
  find . -type f -printf '%P %s %T@\\n' > "$t/state" && LC_ALL=C sort -o "$t/state" "$t/state" && sha256sum < "$t/state" | cut -d' ' -f1
}
state() {
  s=$(digest)
  [ -n "$s" ] || exit 71
}`;

/** $1: the repository directory (read-only mount). Prints on stdout, NUL-terminated:
 * the state, "s <size> <path>" per file, "<sha256>  <path>" per file (sha256sum -z:
 * names unescaped), the state again (files.ts parseListing). */
export const LIST = `set -u
cd "$1" || exit 70
t=$(mktemp -d) || exit 70
${STATE}
state
printf 'state %s\\0' "$s"
find . -type f -printf 's %s %P\\0' || exit 71
find . -type f -printf '%P\\0' > "$t/names" || exit 71
xargs -0r -a "$t/names" sha256sum -z -- || exit 72
state
printf 'state %s\\0' "$s"`;

/** $1: the repository directory (read-only mount), $2: "all" (every file) or "list"
 * (the files named by the further arguments). Tar of those files to $SNAPAGENT_DATA,
 * then the repository's state on stderr ("snapagent-state <digest>"), to be compared
 * with the listing's. */
export const SHIP = `set -u
cd "$1" || exit 70
mode=$2
shift 2
t=$(mktemp -d) || exit 70
if [ "$mode" = all ]; then
  find . -type f -printf '%P\\0' > "$t/names" || exit 71
else
  for f in "$@"; do printf '%s\\0' "$f"; done > "$t/names"
fi
tar --create --file="$SNAPAGENT_DATA" --totals --format=posix --numeric-owner --pax-option=delete=atime,delete=ctime \\
  --no-recursion --null --verbatim-files-from --files-from="$t/names"
rc=$?
[ $rc -eq 0 ] || exit $rc
${STATE}
state
printf 'snapagent-state %s\\n' "$s" >&2
${STATS}`;

/** $1: the volume's mount point, $2: the staging repository dir (relative to $1), $3:
 * the directory whose owner the extracted files get (relative to $1; the path.repo dir,
 * which the image gave to Elasticsearch's user). Extracts $SNAPAGENT_DATA into $2. */
export const EXTRACT = `set -eu
cd "$1"
ref=$3
while [ ! -d "$ref" ]; do ref=$(dirname -- "$ref"); done
mkdir -p -- "$(dirname -- "$2")"
rm -rf -- "$2"
mkdir -- "$2"
# fd 3 stays open after tar stops at the end-of-archive marker, so every stored byte
# is still read (the sha256 check) without a broken pipe
if [ "$SNAPAGENT_DATA" = - ]; then exec 3<&0; else exec 3<"$SNAPAGENT_DATA"; fi
tar --extract --file=- --read-full-records --numeric-owner -C "$2" <&3
cat <&3 >/dev/null
chown -R --reference="$ref" -- "$2"
cd -- "$2"
${STATS}`;

// An incremental restore assembles the staged repository in three steps: STAGE makes
// the fresh directory and keeps the plan (files.ts assemble) in its work directory
// .snapagent, PIECE extracts one backup's listed files, CHECK compares every file with
// the plan's sha256 and removes the work directory.

/** $1: the volume's mount point, $2: the staging repository dir (relative to $1). Makes
 * $2 afresh and stores $SNAPAGENT_DATA (the plan) as $2/.snapagent/plan. */
export const STAGE = `set -eu
cd "$1"
mkdir -p -- "$(dirname -- "$2")"
rm -rf -- "$2"
mkdir -- "$2" "$2/.snapagent"
if [ "$SNAPAGENT_DATA" = - ]; then cat > "$2/.snapagent/plan"; else cat < "$SNAPAGENT_DATA" > "$2/.snapagent/plan"; fi`;

// Anything but files and directories (a symbolic link an archive held) is refused
// before the next piece could write through it.
const ONLY_FILES = `odd=$(find . -path ./.snapagent -prune -o ! -type f ! -type d -print | head -n 3 | tr '\\n' ' ')
if [ -n "$odd" ]; then echo "not a regular file: $odd" >&2; exit 65; fi`;

/** $1: the volume's mount point, $2: the staging repository dir, $3: the piece's number
 * in the plan. Extracts the plan's files of that piece from $SNAPAGENT_DATA (a tar), and
 * nothing else; every one must be in it. */
export const PIECE = `set -eu
cd "$1/$2"
awk -v p="$3" '$1 == "piece" && $2 == p { print $3 }' .snapagent/plan > .snapagent/names
# fd 3 stays open after tar stops at the end-of-archive marker, so every stored byte
# is still read (the sha256 check) without a broken pipe
if [ "$SNAPAGENT_DATA" = - ]; then exec 3<&0; else exec 3<"$SNAPAGENT_DATA"; fi
tar --extract --file=- --read-full-records --numeric-owner --verbatim-files-from --files-from=.snapagent/names <&3
cat <&3 >/dev/null
${ONLY_FILES}`;

/** $1: the volume's mount point, $2: the staging repository dir, $3: the directory
 * whose owner the files get (as EXTRACT). The staged repository must hold exactly the
 * plan's files, each with its sha256; then the work directory goes, the files get
 * Elasticsearch's owner, and the stats line is printed. */
export const CHECK = `set -eu
cd "$1"
ref=$3
while [ ! -d "$ref" ]; do ref=$(dirname -- "$ref"); done
cd -- "$2"
${ONLY_FILES}
awk '$1 == "check" { print $2 "  " $3 }' .snapagent/plan > .snapagent/sums
awk '$1 == "check" { print $3 }' .snapagent/plan | LC_ALL=C sort > .snapagent/want
find . -path ./.snapagent -prune -o -type f -printf '%P\\n' | LC_ALL=C sort > .snapagent/have
if ! cmp -s .snapagent/have .snapagent/want; then
  echo "files missing: $(comm -13 .snapagent/have .snapagent/want | head -n 3 | tr '\\n' ' ')not in the list: $(comm -23 .snapagent/have .snapagent/want | head -n 3 | tr '\\n' ' ')" >&2
  exit 66
fi
sha256sum --check --quiet --strict .snapagent/sums >&2 || exit 67
rm -rf .snapagent
cd "$1"
chown -R --reference="$ref" -- "$2"
cd -- "$2"
${STATS}`;

/** $1: the volume's mount point, $2: the directory to remove (relative to $1). */
export const REMOVE = `rm -rf -- "$1/$2"`;

