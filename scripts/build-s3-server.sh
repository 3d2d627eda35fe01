#!/usr/bin/env bash
# Builds the S3-compatible server the disaster-recovery test uses as its remote: the
# real `rclone serve s3` (Debian's rclone 1.60 predates it; it came in 1.65), from the
# Go module proxy, with only the local backend (test/helpers/rclone-s3/main.go).
# Cached in $SNAPAGENT_CACHE (default /var/cache/snapagent): a second run prints the
# path at once. Prints the binary's path on stdout.
set -euo pipefail
version=v1.73.5
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${SNAPAGENT_CACHE:-/var/cache/snapagent}
src=$here/test/helpers/rclone-s3
key=$( (echo "$version"; cat "$src/main.go") | sha256sum | cut -c1-12)
out=$cache/rclone-s3/$version-$key/rclone
if [ -x "$out" ]; then echo "$out"; exit 0; fi
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || { echo "[s3-server] needs Go (golang-go or /usr/local/go) to build rclone serve s3" >&2; exit 1; }
gobin=$(command -v go || echo /usr/local/go/bin/go)
export GOTOOLCHAIN=local GOFLAGS='-mod=mod -buildvcs=false' CGO_ENABLED=0 \
  GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src/main.go" "$work/"
echo "[s3-server] building rclone $version serve s3 (Go, a few minutes the first time)" >&2
(cd "$work" && "$gobin" mod init snapagent.test/rclone-s3 >/dev/null 2>&1 \
  && "$gobin" get "github.com/rclone/rclone@$version" >&2 \
  && nice "$gobin" build -trimpath -ldflags="-s -w -X github.com/rclone/rclone/fs.Version=$version" -o "$work/rclone" . >&2)
"$work/rclone" serve s3 --help >/dev/null || { echo "[s3-server] the built rclone has no serve s3" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
mv "$work/rclone" "$out.tmp" && mv "$out.tmp" "$out"
echo "$out"
