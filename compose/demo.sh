#!/usr/bin/env bash
# `make demo`: starts the example stack (compose/docker-compose.yml), shows the plan,
# backs it up, lists the backups. `compose/demo.sh down` removes the stack and volumes.
set -euo pipefail
cd "$(dirname "$0")"
command -v docker-compose >/dev/null || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null; }
compose() { docker-compose -p snapagent-demo -f docker-compose.yml "$@"; }
snapagent() { node ../bin/snapagent.js "$@"; }
if [ "${1:-}" = down ]; then compose down -v; exit 0; fi
compose up -d
docker run --rm --network none -v snapagent-demo_app-config:/c snapagent/helper:latest sh -c 'echo "greeting: hello" > /c/app.yml'
sleep 2
echo "== plan"; snapagent plan --config snapagent.yml
echo "== backup"; snapagent backup --config snapagent.yml
echo "== list"; snapagent list --config snapagent.yml
echo
echo "Restore the data volume (the app is stopped and restarted around it):"
echo "  make restore CONFIG=compose/snapagent.yml JOB=snapagent-demo_app-data STOP=1"
echo "Remove the demo: make demo-down"
