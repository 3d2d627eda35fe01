#!/usr/bin/env bash
# `make demo`: starts the example stack (compose/docker-compose.yml: an app on two
# labelled volumes, MariaDB, Mongo, Elasticsearch, Cassandra), waits for its
# healthchecks, puts a little data in each datastore, shows the plan, backs it all up,
# lists the backups. Passwords are made once into compose/demo.env (mode 0600).
# `compose/demo.sh down` removes the stack and its volumes (demo.env stays).
set -euo pipefail
cd "$(dirname "$0")"
command -v docker-compose >/dev/null || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null; }
if [ ! -s demo.env ]; then
  (umask 077; for v in DEMO_MARIADB_ROOT_PASSWORD DEMO_MONGO_ROOT_PASSWORD; do
    echo "$v=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; done >demo.env)
fi
compose() { docker-compose -p snapagent-demo -f docker-compose.yml --env-file demo.env "$@"; }
snapagent() { node ../bin/snapagent.js "$@"; }
if [ "${1:-}" = down ]; then compose down -v; exit 0; fi
compose up -d
echo "== waiting for the datastores' healthchecks (Elasticsearch and Cassandra take a minute)"
for _ in $(seq 300); do
  [ "$(compose ps | grep -c '(healthy)')" -ge 4 ] && break
  sleep 2
done
compose ps
docker run --rm --network none -v snapagent-demo_app-config:/c snapagent/helper:latest sh -c 'echo "greeting: hello" > /c/app.yml'
node seed-demo.ts demo.env
echo "== plan"; snapagent plan --config snapagent.yml
echo "== backup"; snapagent backup --config snapagent.yml
echo "== list"; snapagent list --config snapagent.yml
echo
echo "Restore the data volume (the app is stopped and restarted around it):"
echo "  make restore CONFIG=compose/snapagent.yml JOB=snapagent-demo_app-data STOP=1"
echo "Disaster recovery (docs/restore-and-disaster-recovery.md): on a host without the stack,"
echo "  make restore CONFIG=compose/snapagent.yml"
echo "Remove the demo: make demo-down"
