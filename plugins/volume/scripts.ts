// Shell run inside the helper container (GNU tar, coreutils, findutils). Paths and
// patterns are passed as positional arguments ("$@"), never spliced into the script.

/** Where helper containers mount the volume. */
export const MOUNT = '/snapagent/volume';

/** Where the backup helper keeps GNU tar's snapshot file (the index of an incremental
 * backup): its own filesystem, never the volume. */
export const SNAR = '/snapagent/index/snar';

/** Prefix of the staging directory a restore extracts into, inside the volume. */
export const STAGE_PREFIX = '.snapagent-restore-';

const TAR_COMMON = '--numeric-owner --xattrs --xattrs-include=* --acls';

/** Counts entries the same way for backup and restore, printed on stderr. */
const STATS = statsLine('');

/** STATS, with more find predicates (each "-o -path PATTERN") of entries to leave out. */
function statsLine(more: string): string {
  return `find . -xdev \\( -path "./${STAGE_PREFIX}*"${more} \\) -prune -o -printf '%y %s\\n' | awk '{c[$1]++; if ($1=="f") b+=$2} END {printf "snapagent-stats files=%.0f dirs=%.0f symlinks=%.0f other=%.0f bytes=%.0f\\n", c["f"], c["d"], c["l"], NR-c["f"]-c["d"]-c["l"], b}' >&2`;
}

/** $1: the mounted volume; $2: the snapshot file of an incremental (a level-0 dump when
 * it is missing or empty, else the changes since the dump that wrote it; tar rewrites it),
 * empty for a plain full; $3...: tar --exclude patterns. Tar to $SNAPAGENT_DATA, stats on
 * stderr. The stats count the whole volume but the excludes, whatever the dump stored. */
export const BACKUP = `set -u
cd "$1" || exit 70
snar=$2
shift 2
set -- --exclude="./${STAGE_PREFIX}*" "$@"
# --no-check-device: the device number of a volume's filesystem may change between
# helpers (a reboot, a remount); the inode numbers still tell a renamed directory
if [ -n "$snar" ]; then mkdir -p -- "\${snar%/*}" && set -- --listed-incremental="$snar" --no-check-device "$@" || exit 70; fi
tar --create --file="$SNAPAGENT_DATA" --totals --format=posix --pax-option=delete=atime,delete=ctime --sparse --one-file-system ${TAR_COMMON} "$@" .
rc=$?
[ $rc -eq 0 ] || exit $rc
# the counts are what a restore brings back: the job's excludes are left out as tar left
# them out (tar's unanchored patterns: at any depth, or as given)
n=$#
for a in "$@"; do case $a in --exclude=*) p=\${a#--exclude=}; set -- "$@" -o -path "*/$p" -o -path "$p";; esac; done
shift $n
${statsLine(' "$@"')}`;

/** $1: the mounted volume, $2: staging dir name (empty: extract into the volume root,
 * for a volume the restore created), $3: "begin" (the first archive: makes the staging
 * dir) or "more" (a later piece of the chain, into the same dir), $4: "stats" to count the
 * result, else "-", $5: "incremental" for GNU tar's incremental archives (each one's
 * directory listings replay deletions and renames), else "plain". Extracts
 * $SNAPAGENT_DATA there. */
export const EXTRACT = `set -eu
step=$3 count=$4 mode=$5
cd "$1"
if [ "$step" = begin ]; then
  mtime=$(stat -c %y -- "$1")
  echo "snapagent-root-mtime $mtime" >&2
  # the root keeps its mtime while the staging dir exists, so that a restore killed before
  # the swap can be undone exactly (agent/runtime/recovery.ts)
  if [ -n "$2" ]; then rm -rf -- "$2"; mkdir -- "$2"; touch -d "$mtime" -- "$1"; fi
fi
if [ -n "$2" ]; then
  [ -d "$2" ] && [ ! -L "$2" ] || { echo "staging dir $2 is gone" >&2; exit 70; }
  cd -- "$2"
fi
set --
[ "$mode" != incremental ] || set -- --listed-incremental=/dev/null
# fd 3 stays open after tar stops at the end-of-archive marker, so the writer can finish
# (every stored byte must be read for the sha256 check) without a broken pipe
if [ "$SNAPAGENT_DATA" = - ]; then exec 3<&0; else exec 3<"$SNAPAGENT_DATA"; fi
tar --extract --file=- --read-full-records --same-owner --preserve-permissions --sparse ${TAR_COMMON} "$@" <&3
cat <&3 >/dev/null
[ "$count" != stats ] || ${STATS}`;

/** $1: the mounted volume, $2: staging dir name. Replaces the volume's content with the
 * staging dir's (renames within one filesystem), then gives the root its mode/owner/mtime. */
export const SWAP = `set -eu
cd "$1"
find . -mindepth 1 -maxdepth 1 ! -name "$2" -exec rm -rf -- {} +
mode=$(stat -c %a -- "$2"); owner=$(stat -c %u:%g -- "$2"); mtime=$(stat -c '%y' -- "$2")
find "$2" -mindepth 1 -maxdepth 1 -exec mv -t "$1" -- {} +
rmdir -- "$2"
chown -- "$owner" "$1"; chmod -- "$mode" "$1"; touch -d "$mtime" -- "$1"`;

/** $1: the mounted volume, $2: staging dir name, $3: the root's mtime before the restore
 * began (empty: unknown), so a refused restore leaves the volume exactly as it was. */
export const DISCARD = `rm -rf -- "$1/$2"
[ -z "$3" ] || touch -d "$3" -- "$1"`;

export function rootMtimeFrom(stderr: string): string {
  return /^snapagent-root-mtime (.+)$/m.exec(stderr)?.[1]?.trim() ?? '';
}
