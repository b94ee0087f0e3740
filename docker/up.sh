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
for _ in $(seq 1 100); do
  docker exec "$c" test -p /run/service/.s6-svscan/control 2>/dev/null && \
    docker exec -u gateway "$c" gateway list >/dev/null 2>&1 && break
  sleep 0.1
done
if ! docker exec -u gateway "$c" gateway list | grep -qx demo; then
  docker exec -u gateway "$c" gateway register demo --start -- \
    sh -c 'echo "demo gateway up as $(id -un)"; while :; do echo "demo tick $(date -u +%T)"; sleep 10; done'
fi
docker exec -u gateway "$c" gateway status
echo
echo "logs:   docker logs -f $c     |  stop: docker-compose -p s6gate -f docker/compose.yaml down"
echo "verbs:  docker exec -u gateway $c gateway stop -p demo   (then: docker restart $c)"
