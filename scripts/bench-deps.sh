#!/usr/bin/env bash
# Installs what only the benchmarks need, from Debian's packages, when missing: restic and
# borgbackup, the peers bench/incremental-bench.ts runs side by side with snapagent. The
# tests do not need them, so `make deps` does not install them.
set -euo pipefail
need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "[bench-deps] missing: ${need[*]} — install them as root: apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "[bench-deps] apt-get install ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
