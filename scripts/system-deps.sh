#!/usr/bin/env bash
# Installs the system tools snapagent uses, from Debian's packages, when missing:
# docker.io (engine + client), zstd, age (encryption), rclone; and for the tests/bench:
# openssh-server, busybox-static, debootstrap, prometheus (for promtool: metrics and alert
# rules are checked with it), faketime (libfaketime moves the agent's clock in the
# retention, daemon and status tests), openssl (the benches' checksummed raw pipeline) and
# python3-mockupdb (a scripted wire-protocol server: the fake mongos of the balancer tests).
set -euo pipefail
need=()
command -v zstd >/dev/null || need+=(zstd)
command -v age >/dev/null || need+=(age)
command -v rclone >/dev/null || need+=(rclone)
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -x /bin/busybox ] || need+=(busybox-static)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -n "$(ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null)" ] || need+=(faketime)
command -v npm >/dev/null || need+=(npm)
command -v promtool >/dev/null || need+=(prometheus)
command -v faketime >/dev/null || need+=(faketime)
command -v openssl >/dev/null || need+=(openssl)
command -v docker-compose >/dev/null || need+=(docker-compose)
/usr/bin/python3 -c 'import mockupdb' 2>/dev/null || need+=(python3-mockupdb)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "[deps] missing: ${need[*]} — install them as root: apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "[deps] apt-get install ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
# The Debian package enables sshd at install time; snapagent's tests start their own.
systemctl disable --now ssh >/dev/null 2>&1 || true
# Likewise the Prometheus server: only its promtool is used.
systemctl disable --now prometheus >/dev/null 2>&1 || true
