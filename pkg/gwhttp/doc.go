// Package gwhttp is s6gate's read-only HTTP endpoint (gw-http, enabled by GATEWAY_HTTP_ADDR):
// what a Prometheus server and a Kubernetes kubelet want to know without `docker exec`.
//
//	/metrics  the Prometheus text format: every gateway (label profile), the container's own
//	          services, liveness, readiness, build info, and the endpoint's own process
//	/healthz  liveness (package probe): 200 "live", else 503 and the reason
//	/readyz   readiness (package probe): 200 "ready", else 503 and the reason
//	/status   what `gateway status --json` prints
//
// It changes nothing: there are no verbs over HTTP. Only GET and HEAD are served (else 405),
// only these four paths (else 404). The server bounds what a client can hold (header and
// body read time-outs, idle time-out, header size) and the metrics handler serves a few
// scrapes at a time (503 beyond); the gateways' status behind /metrics and /status is read
// at most once per second and shared by the requests of that second, so a scraper that calls
// a thousand times a second costs one status read a second and no memory that grows.
//
// The exposition format is written by github.com/prometheus/client_golang (registry,
// promhttp), so its escaping, types and content negotiation are the ecosystem's own. The
// package is linked only into gw-http, not the multi-call s6gate binary that every gateway
// runs: client_golang and protobuf would add their size and their package initialisation to
// every gateway process (docs/metrics.md, "Size").
package gwhttp
