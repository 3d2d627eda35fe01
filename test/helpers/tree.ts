// Builds a volume full of awkward entries and takes a comparable snapshot of a tree
// (paths, types, modes, owners, symlink targets, hardlink groups, mtimes, content hashes).
import { docker, inVolume } from './harness.ts';

/** Fills /v with every kind of entry the volume plugin must preserve. */
export const AWKWARD_TREE = String.raw`set -euo pipefail
cd /v
mkdir -p 'dir with spaces/nested' empty-dir 'ünïcødé-目录' deep/a/b/c/d/e
printf 'hello\n' > 'dir with spaces/file one.txt'
printf 'line\nbreak' > $'name\nwith newline'
: > empty-file
printf 'ünïcødé' > 'ünïcødé-目录/файл.txt'
head -c 3000000 /dev/urandom > deep/a/b/c/d/e/random.bin
seq 1 200000 > deep/numbers.txt
ln -s 'dir with spaces/file one.txt' link-to-file
ln -s /nonexistent/target dangling-link
ln -s deep link-to-dir
ln deep/numbers.txt hardlink-1
ln deep/numbers.txt 'dir with spaces/hardlink 2'
mkfifo a-fifo
chown 1001:1002 'dir with spaces/file one.txt'
chown -h 2001:2002 link-to-file
chown 65534:65534 empty-dir
chmod 4755 deep/a/b/c/d/e/random.bin
chmod 1777 empty-dir
chmod 0600 empty-file
chmod 2750 'ünïcødé-目录'
setfattr -n user.snapagent -v kept empty-file
# a sparse file over 1 GiB with data at a few offsets
truncate -s 1200M big-sparse.img
printf 'start' | dd of=big-sparse.img conv=notrunc status=none
printf 'middle' | dd of=big-sparse.img bs=1 seek=629145600 conv=notrunc status=none
printf 'end' | dd of=big-sparse.img bs=1 seek=1258291197 conv=notrunc status=none
touch -h -d '2001-02-03 04:05:06.123456789' link-to-file
touch -d '2010-01-01 00:00:00.5' 'dir with spaces/file one.txt' deep/numbers.txt
touch -d '1999-12-31 23:59:59' empty-dir 'dir with spaces/nested'
chmod 0750 /v
touch -d '2020-02-02 02:02:02' /v
`;

/** NUL-separated records: type mode uid gid mtime size inode nlink, path, link target; then file hashes; then xattrs. */
const SNAPSHOT = String.raw`set -euo pipefail
cd /v
find . -printf '%y %m %U %G %T@ %s %i %n\0%p\0%l\0'
printf '\0--hashes--\0'
find . -type f -print0 | sort -z | xargs -0 -r sha256sum --zero
printf '\0--xattrs--\0'
getfattr -h -d -m 'user\.' -R . 2>/dev/null | tr '\n' '\0' || true
`;

export interface Snapshot {
  entries: Record<string, string>;
  hardlinkGroups: string[];
  hashes: Record<string, string>;
  xattrs: string;
}

export async function snapshot(volume: string): Promise<Snapshot> {
  const out = await inVolume(volume, SNAPSHOT, true);
  const [meta, rest] = out.split('\0--hashes--\0') as [string, string];
  const [hashPart, xattrs] = rest.split('\0--xattrs--\0') as [string, string];
  const fields = meta.split('\0');
  const entries: Record<string, string> = {};
  const inodes = new Map<string, string[]>();
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const [type, mode, uid, gid, mtime, size, inode, nlink] = fields[i]!.split(' ');
    const p = fields[i + 1]!;
    const link = fields[i + 2]!;
    // a directory's size is filesystem bookkeeping, not content
    entries[p] = [type, mode, uid, gid, mtime, type === 'd' ? '-' : size, link].join(' ');
    if (type === 'f' && Number(nlink) > 1) inodes.set(inode!, [...(inodes.get(inode!) ?? []), p]);
  }
  const hashes: Record<string, string> = {};
  for (const rec of hashPart.split('\0').filter(Boolean)) {
    const m = /^([0-9a-f]{64}) [ *](.*)$/s.exec(rec);
    if (m) hashes[m[2]!] = m[1]!;
  }
  const hardlinkGroups = [...inodes.values()].map((g) => g.sort().join(' | ')).sort();
  return { entries, hardlinkGroups, hashes, xattrs: xattrs.split('\0').filter(Boolean).join('\n') };
}

/** Creates `volume` (`docker volume create` with `createArgs`, e.g. labels), fills it by
 * running `script` with the volume at /v, and returns its snapshot. */
export async function filledVolume(volume: string, script: string, createArgs: string[] = []): Promise<Snapshot> {
  await docker('volume', 'create', ...createArgs, volume);
  await inVolume(volume, script);
  return snapshot(volume);
}
