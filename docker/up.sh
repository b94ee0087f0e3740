#!/usr/bin/env bash
# Brings up the compose demo (docker/compose.yaml) and shows `gateway status`. On the first
# start it registers and starts a demo gateway as the unprivileged service user; on later
# starts the boot reconciler brings it back from the volume by itself.
set -euo pipefail
cd "$(dirname "$0")"
compose() { docker-compose -p s6gate -f compose.yaml "$@"; }
command -v docker-compose >/dev/null || { echo "up: docker-compose not found (apt-get install -y docker-compose)" >&2; exit 2; }
compose up -d
c=s6gate-demo
# The verbs wait for the boot themselves (the gateways' s6-svscan starts after cont-init).
if ! docker exec -u gateway "$c" gateway list --timeout 60s | grep -qx demo; then
  docker exec -u gateway "$c" gateway register demo --start -- \
    sh -c 'echo "demo gateway up as $(id -un)"; while :; do echo "demo tick $(date -u +%T)"; sleep 10; done'
fi
docker exec -u gateway "$c" gateway status
echo
echo "logs:   docker logs -f $c     |  stop: docker-compose -p s6gate -f docker/compose.yaml down"
echo "verbs:  docker exec -u gateway $c gateway stop -p demo   (then: docker restart $c)"
