#!/usr/bin/env bash
# Builds the local images snapagent and its tests need, from Debian's packages only
# (no container registry is reachable). Each image carries a label with the hash of
# its inputs; an image whose hash matches is reused, so a second run takes seconds.
#   build.sh [base|helper|agent|busybox|fakes|mariadb|<name>|all]...
# An image folder with an image.sh defines build_<name> (sourced below): that is how
# images needing more than a Dockerfile (artifacts fetched from Maven Central or built
# from the Go module proxy, cached in $cache) join `all` and the command line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SNAPAGENT_CACHE:-/var/cache/snapagent}
mkdir -p "$cache"

log() { printf '[images] %s\n' "$*" >&2; }

current_hash() { docker image inspect --format '{{ index .Config.Labels "snapagent.build-hash" }}' "$1" 2>/dev/null || true; }

mirror() {
  # The Debian mirror apt already uses on this machine.
  local m
  m=$(grep -rhE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
  echo "${m:-http://deb.debian.org/debian}"
}

# Debian bookworm minbase, imported from a debootstrap tree (cached as a tarball).
build_base() {
  local tag=snapagent/debian:bookworm hash
  hash=bookworm-minbase-v1
  [ "$(current_hash $tag)" = "$hash" ] && { log "$tag up to date"; return; }
  local tarball=$cache/debian-bookworm-minbase.tar
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >&2
    local dir; dir=$(mktemp -d)
    log "debootstrap bookworm from $(mirror) (about 30 s)"
    debootstrap --variant=minbase bookworm "$dir" "$(mirror)" >&2
    # apt inside the image uses the same mirror as the host
    cp /etc/apt/sources.list "$dir/etc/apt/sources.list" 2>/dev/null || true
    rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"*
    tar -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  docker import --change "LABEL snapagent.build-hash=$hash" --change 'CMD ["/bin/bash"]' "$tarball" "$tag" >&2
  log "$tag imported"
}

# Build a Dockerfile folder; the hash covers the folder's files and the base image id.
build_dir() {
  local name=$1 tag=$2 base=${3:-snapagent/debian:bookworm} hash
  hash=$( (cd "$here/$name" && find . -type f -print0 | sort -z | xargs -0 sha256sum; docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-16)
  [ "$(current_hash "$tag")" = "$hash" ] && { log "$tag up to date"; return; }
  log "building $tag"
  docker build --network host --label "snapagent.build-hash=$hash" -t "$tag" "$here/$name" >&2
}

# The manual method users run today needs a busybox image: Debian's static busybox.
build_busybox() {
  local tag=snapagent-test/busybox:latest hash
  command -v busybox >/dev/null || [ -x /bin/busybox ] || apt-get install -y -q busybox-static >&2
  hash=$(sha256sum /bin/busybox | cut -c1-16)
  [ "$(current_hash $tag)" = "$hash" ] && { log "$tag up to date"; return; }
  local dir; dir=$(mktemp -d)
  mkdir -p "$dir/bin" "$dir/tmp"
  cp /bin/busybox "$dir/bin/busybox"
  for a in sh tar gzip cat ls mkdir rm; do ln -s busybox "$dir/bin/$a"; done
  tar -C "$dir" -cf - . | docker import --change "LABEL snapagent.build-hash=$hash" --change 'CMD ["/bin/sh"]' - "$tag" >&2
  rm -rf "$dir"
  log "$tag imported"
}

# The agent itself (compose/agent/Dockerfile): its context is the repository's runtime
# files, plus the host's CA bundle for npm behind a TLS-intercepting proxy.
build_agent() {
  local tag=snapagent/agent:latest root hash ctx rc=0
  root=$(cd "$here/../.." && pwd)
  hash=$( (cd "$root" && find package.json package-lock.json bin agent plugins compose/agent/Dockerfile -type f -print0 | sort -z | xargs -0 sha256sum; docker image inspect --format '{{.Id}}' snapagent/debian:bookworm) | sha256sum | cut -c1-16)
  [ "$(current_hash "$tag")" = "$hash" ] && { log "$tag up to date"; return; }
  log "building $tag"
  ctx=$(mktemp -d)
  (cd "$root" && cp -a package.json package-lock.json bin agent plugins "$ctx/")
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/build-ca.crt" 2>/dev/null || true
  docker build --network host --label "snapagent.build-hash=$hash" -f "$root/compose/agent/Dockerfile" -t "$tag" "$ctx" >&2 || rc=$?
  rm -rf "$ctx"
  return $rc
}

# Extra images: compose/images/<name>/image.sh defines build_<name>.
extra=()
for f in "$here"/*/image.sh; do
  [ -e "$f" ] || continue
  # shellcheck source=/dev/null
  source "$f"
  extra+=("$(basename "$(dirname "$f")")")
done

# The extra images at once: their costs differ in kind (Go compiles on the host's cores,
# Maven and apt downloads, dpkg in a build container), so on a fresh machine they overlap
# instead of queueing. Each line is prefixed with its image's name; any failure fails all.
build_extras() {
  local x pids=() rc=0
  for x in "$@"; do
    ( "build_$x" 2>&1 | sed -u "s/^/[$x] /" >&2 ) &
    pids+=($!)
  done
  for x in "${pids[@]}"; do wait "$x" || rc=1; done
  return $rc
}

targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(all)
for t in "${targets[@]}"; do
  case $t in
    base) build_base ;;
    helper) build_base; build_dir helper snapagent/helper:latest ;;
    agent) build_base; build_agent ;;
    busybox) build_busybox ;;
    fakes) build_dir fake-failing-tar snapagent-test/fake-failing-tar:latest snapagent/helper:latest ;;
    mariadb) build_base; build_dir mariadb snapagent-test/mariadb:latest ;;
    all)
      build_base
      build_dir helper snapagent/helper:latest
      build_agent
      build_dir mariadb snapagent-test/mariadb:latest
      build_busybox
      build_dir fake-failing-tar snapagent-test/fake-failing-tar:latest snapagent/helper:latest
      build_extras "${extra[@]}"
      ;;
    *)
      if declare -F "build_$t" >/dev/null && [[ " ${extra[*]} " == *" $t "* ]]; then build_base; "build_$t"
      else echo "unknown image: $t (expected base, helper, agent, busybox, fakes, mariadb, ${extra[*]:+${extra[*]// /, }, }or all)" >&2; exit 2; fi
      ;;
  esac
done
