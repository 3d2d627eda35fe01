#!/usr/bin/env bash
# A second, private Docker Engine on this machine: the "fresh host" of the
# disaster-recovery test. It has its own data root, exec root, pid file and socket, so
# nothing of the first engine (containers, volumes, networks) is visible to it.
#
#   second-docker.sh start DIR            start it; its socket is DIR/docker.sock
#   second-docker.sh load DIR IMAGE...    copy images from the first engine (docker save |
#                                         docker load), skipping those already there
#   second-docker.sh stop DIR             remove its containers and volumes, stop it,
#                                         remove DIR
#
# Images stay between runs (data root in $SNAPAGENT_CACHE/second-engine, like a host
# whose registry mirror is warm); containers and volumes never do: start and stop both
# remove every one of them. The pid file lives there too, so only one such engine runs
# at a time (dockerd refuses a live pid file). As for the first engine: no bridge, no
# iptables (tests use the host network or none). Needs root.
set -euo pipefail
cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|load|stop DIR [IMAGE...]" >&2; exit 2; }
shift 2
cache=${SNAPAGENT_CACHE:-/var/cache/snapagent}
root=$cache/second-engine
sock=$dir/docker.sock
log() { printf '[second-docker] %s\n' "$*" >&2; }
d2() { DOCKER_HOST=unix://$sock docker "$@"; }

# Removes every container and volume, after making sure the socket is this engine's.
wipe() {
  local where
  where=$(d2 info --format '{{.DockerRootDir}}' 2>/dev/null) || return 0
  [ "$where" = "$root/data" ] || { log "refusing to wipe: $sock is the engine of $where, not $root/data"; return 1; }
  d2 ps -aq | xargs -r env DOCKER_HOST="unix://$sock" docker rm -f >/dev/null
  d2 volume ls -q | xargs -r env DOCKER_HOST="unix://$sock" docker volume rm -f >/dev/null
}

case $cmd in
  start)
    [ "$(id -u)" = 0 ] || { log "needs root (it starts dockerd)"; exit 1; }
    mkdir -p "$root" "$dir/exec"
    echo '{}' >"$dir/daemon.json" # not /etc/docker/daemon.json: that one is the first engine's
    if [ -s "$root/docker.pid" ] && kill -0 "$(cat "$root/docker.pid")" 2>/dev/null; then
      log "a second engine already runs (pid $(cat "$root/docker.pid"), $root/docker.pid): stop it first"
      exit 1
    fi
    log "starting dockerd (data root $root/data, socket $sock, log $dir/dockerd.log)"
    nohup dockerd --config-file "$dir/daemon.json" --data-root "$root/data" --exec-root "$dir/exec" \
      --pidfile "$root/docker.pid" -H "unix://$sock" --bridge=none --iptables=false --ip-masq=false \
      >"$dir/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 60); do
      d2 version >/dev/null 2>&1 && { wipe; exit 0; }
      sleep 1
    done
    log "dockerd did not come up; see $dir/dockerd.log"
    tail -20 "$dir/dockerd.log" >&2 || true
    exit 1
    ;;
  load)
    missing=()
    for image in "$@"; do
      want=$(docker image inspect --format '{{.Id}}' "$image")
      have=$(d2 image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
      [ "$want" = "$have" ] || missing+=("$image")
    done
    [ ${#missing[@]} -eq 0 ] && { log "images already loaded"; exit 0; }
    log "loading ${missing[*]}"
    docker save "${missing[@]}" | d2 load -q >&2
    ;;
  stop)
    if [ -S "$sock" ]; then wipe || true; fi
    if [ -s "$root/docker.pid" ]; then
      pid=$(cat "$root/docker.pid")
      # only the dockerd this DIR started (its exec root), never another one
      if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--exec-root $dir/exec"; then
        kill "$pid"
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        kill -0 "$pid" 2>/dev/null && { log "dockerd $pid did not stop in 60 s: killing it"; kill -9 "$pid"; }
      fi
    fi
    # dockerd leaves its network namespace file (netns/default) mounted below the exec root
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|load|stop DIR [IMAGE...]" >&2
    exit 2
    ;;
esac
