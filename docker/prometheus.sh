#!/usr/bin/env bash
# Prometheus and promtool for the E2E suite (a real server scraping the container, and
# `promtool check metrics|rules`, `promtool test rules`): built once from the Go module proxy
# into a cache outside the repository and reused; prints the directory that holds them.
# Nothing is downloaded but Go modules. The first build is long (about PROMETHEUS_BUILD_NOTE
# below); later runs take no time.
#   PROMETHEUS_VERSION (v0.316.0), S6GATE_PROMETHEUS_DIR (~/.cache/s6gate/prometheus-VERSION), GO
set -euo pipefail
ver="${PROMETHEUS_VERSION:-v0.316.0}"
dir="${S6GATE_PROMETHEUS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/s6gate/prometheus-$ver}"
if [ -x "$dir/prometheus" ] && [ -x "$dir/promtool" ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
# One build at a time: .ci/run starts one in the background at idle priority while the other
# tests run; a second caller waits for it here and then finds the binaries.
exec 9>"$dir/.lock"
flock 9
if [ -x "$dir/prometheus" ] && [ -x "$dir/promtool" ]; then
  echo "$dir"
  exit 0
fi
t0=$SECONDS
echo "prometheus: building prometheus and promtool $ver into $dir (once)" >&2
CGO_ENABLED=0 GOBIN="$dir" nice -n "${PROMETHEUS_NICE:-10}" "${GO:-go}" install -trimpath \
  "github.com/prometheus/prometheus/cmd/prometheus@$ver" "github.com/prometheus/prometheus/cmd/promtool@$ver" >&2
echo "prometheus: built in $((SECONDS - t0)) s" >&2
echo "$dir"
