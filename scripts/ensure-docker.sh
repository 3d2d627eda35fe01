#!/usr/bin/env bash
# Makes sure a Docker Engine answers on $DOCKER_HOST or /var/run/docker.sock. When none
# runs and we are root (CI, a fresh VM without systemd), starts dockerd in the
# background with no bridge network (tests use --network host or none).
set -euo pipefail
if docker version >/dev/null 2>&1; then exit 0; fi
if [ -n "${DOCKER_HOST:-}" ] || [ "$(id -u)" != 0 ]; then
  echo "[docker] no Docker Engine answers at ${DOCKER_HOST:-/var/run/docker.sock}: start it (systemctl start docker) or fix DOCKER_HOST" >&2
  exit 1
fi
if command -v systemctl >/dev/null && systemctl start docker >/dev/null 2>&1 && docker version >/dev/null 2>&1; then exit 0; fi
echo "[docker] starting dockerd (log: /var/log/snapagent-dockerd.log)" >&2
# a dockerd that died (killed, OOM) leaves its pid file, and a new one refuses to start
pidfile=/var/run/docker.pid
if [ -f "$pidfile" ] && ! { pid=$(cat "$pidfile") && [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; }; then
  echo "[docker] removing the stale $pidfile of a dockerd that is gone" >&2
  rm -f "$pidfile"
fi
# fds 3-9 closed: a caller's lock file (flock) must not stay held by the daemon forever
nohup dockerd --bridge=none --iptables=false </dev/null >/var/log/snapagent-dockerd.log 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
for _ in $(seq 60); do
  docker version >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "[docker] dockerd did not come up; see /var/log/snapagent-dockerd.log" >&2
tail -20 /var/log/snapagent-dockerd.log >&2 || true
exit 1
