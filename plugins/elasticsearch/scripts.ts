// Shell run inside the helper container (GNU tar, coreutils, findutils). Paths come as
// positional arguments ("$@"), never spliced into the script.

/** Where helper containers mount the repository's volume. */
export const MOUNT = '/snapagent/repo-volume';

/** Stats of a repository directory (the current directory), printed on stderr. */
const STATS = `find . -type f -printf '%s\\n' | awk '{n++; b+=$1} END {printf "snapagent-stats files=%.0f bytes=%.0f\\n", n, b}' >&2`;

/** $1: the repository directory (read-only mount). Tar of its contents to $SNAPAGENT_DATA. */
export const SHIP = `set -u
cd "$1" || exit 70
tar --create --file="$SNAPAGENT_DATA" --totals --format=posix --numeric-owner --pax-option=delete=atime,delete=ctime .
rc=$?
[ $rc -eq 0 ] || exit $rc
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

/** $1: the volume's mount point, $2: the directory to remove (relative to $1). */
export const REMOVE = `rm -rf -- "$1/$2"`;

