# s6gate — build, test and benchmark targets. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := bin
CMDS := s6gate gateway gw-reconcile gw-render gw-mark gw-svscan gw-http with-contenv printcontenv init s6-rc s6util
# The version and commit every binary prints (`gateway version`), stamped at link time; a plain
# `go build` falls back to what Go's build info holds (internal/cli/version.go).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
STAMP := -X github.com/s6gate/s6gate/internal/cli.version=$(VERSION) -X github.com/s6gate/s6gate/internal/cli.commit=$(COMMIT)
GOFLAGS_BUILD := -trimpath -ldflags='-s -w -buildid= $(STAMP)'
PKGS := ./pkg/... ./internal/... ./cmd/...
# The E2E suite is its own module (e2e/go.mod), so testcontainers-go and the moby client stay
# out of the root module; its go commands run from its directory.
E2E := e2e
STATICCHECK = $(shell $(GO) env GOPATH)/bin/staticcheck

FUZZTIME ?= 10s
# Image tags (override to test side by side: make image-minimal IMAGE_TAG=s6gate:wip MINIMAL_TAG=s6gate:minimal-wip).
IMAGE_TAG ?= s6gate:latest
MINIMAL_TAG ?= s6gate:minimal

.PHONY: help deps build base image image-minimal peer-image image-overlay up down test test-stress fuzz bench bench-smoke lint clean

# The s6-overlay peer: a real s6-overlay compiled offline from S6_OVERLAY_PEER's sources into
# S6_OVERLAY_DIST (ignored by git), and the image PEER_IMAGE made of it (docker/s6-overlay/).
S6_OVERLAY_PEER ?= ../shared/peers/s6-overlay
S6_OVERLAY_DIST ?= build/s6-overlay-dist
PEER_IMAGE ?= s6gate-peer:s6-overlay-3.2.3.0
OVERLAY_IMAGE ?= s6gate:overlay
export S6_OVERLAY_PEER S6_OVERLAY_DIST PEER_IMAGE
# The E2E scenarios that also run against OVERLAY_IMAGE (s6gate inside a real s6-overlay).
OVERLAY_TESTS := ^(TestRestartAfterADeepTree|TestRunningGatewaySurvivesDockerRestart|TestStoppedGatewayStaysDownAfterDockerRestart|TestKillThenStartBringsRunningGatewayBack|TestDockerStopIsPromptAndPersistsRunning|TestComposeForceRecreate)$$

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## static binaries into bin/
	@mkdir -p $(BIN)
	@for c in $(CMDS); do \
	  if [ -d cmd/$$c ]; then CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/$$c ./cmd/$$c || exit 1; fi; \
	done

# What the goals need from Debian's packages (docker/deps.sh): as root it installs what is
# missing and says so; otherwise it stops with one line naming the command to run.
DEPS = $(if $(filter test test-stress peer-image image-overlay,$(MAKECMDGOALS)),test,$(if $(filter up,$(MAKECMDGOALS)),up,base))
deps: ## check (as root: install from Debian's packages) what the goals need
	@GO=$(GO) docker/deps.sh $(DEPS)

base: deps ## local Debian base image with s6 (debootstrap + docker import; reused when present and current)
	docker/mkbase.sh

image: build base ## the s6gate:latest image (Debian base, s6, the multi-call binary)
	@b=$${BASE_IMAGE:-s6gate-base:bookworm}; t0=$$SECONDS; echo "image: docker build -t $(IMAGE_TAG) on $$b"; \
	docker build -q -t $(IMAGE_TAG) --build-arg BASE_IMAGE=$$b . >/dev/null && \
	docker image ls $(IMAGE_TAG) --format "image: built {{.Repository}}:{{.Tag}} ({{.Size}}) in $$((SECONDS - t0)) s"

image-minimal: image ## the s6gate:minimal image (FROM scratch: s6gate, s6, dash; Dockerfile.minimal)
	@t0=$$SECONDS; echo "image-minimal: docker build -t $(MINIMAL_TAG) from $(IMAGE_TAG)"; \
	docker build -q -t $(MINIMAL_TAG) --build-arg FULL_IMAGE=$(IMAGE_TAG) -f Dockerfile.minimal . >/dev/null && \
	docker image ls $(MINIMAL_TAG) --format "image-minimal: built {{.Repository}}:{{.Tag}} ({{.Size}}) in $$((SECONDS - t0)) s"

peer-image: deps base ## the s6-overlay peer image (compiled from source once; reused when present)
	docker/s6-overlay/mkpeer.sh image

# s6gate inside a real s6-overlay: FROM the peer image, the recipe of docs/s6-overlay-image.md.
image-overlay: build peer-image ## the s6gate:overlay image (s6gate on a real s6-overlay)
	@t0=$$SECONDS; echo "image-overlay: docker build -t $(OVERLAY_IMAGE) on $(PEER_IMAGE)"; \
	docker build -q -t $(OVERLAY_IMAGE) --build-arg S6_OVERLAY_IMAGE=$(PEER_IMAGE) -f docker/s6-overlay/Dockerfile . >/dev/null && \
	docker image ls $(OVERLAY_IMAGE) --format "image-overlay: built {{.Repository}}:{{.Tag}} ({{.Size}}) in $$((SECONDS - t0)) s"

up: deps image ## build everything and start the compose demo, then show gateway status
	docker/up.sh

down: ## stop the compose demo (the volume stays)
	cd docker && docker-compose -p s6gate -f compose.yaml down

# The E2E suite needs the images (full and minimal); they are built when an engine answers.
# Without an engine the E2E tests skip locally and fail under CI=true.
# The restart scenarios run a second time against OVERLAY_IMAGE (s6gate inside a real
# s6-overlay); the differential tests compare s6gate's /init with the peer's.
# Prometheus and promtool (the E2E scrape, `promtool check metrics|rules`, `promtool test
# rules`) are built once from the module proxy into ~/.cache/s6gate (docker/prometheus.sh):
# the first build takes minutes (26 min on a busy 2-core machine), later ones nothing.
test: deps build ## every test: unit, real-s6 integration, and E2E against the images
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image-minimal image-overlay; \
	 else echo "make test: no Docker engine answers; E2E tests will skip (fail under CI=true)"; fi
	@GO=$(GO) docker/prometheus.sh >/dev/null
	@rc=0; set -x; \
	CGO_ENABLED=1 TESTCONTAINERS_RYUK_DISABLED=true $(GO) test -race -count=1 -timeout 30m $(PKGS) || rc=1; \
	cd $(E2E) && CGO_ENABLED=1 TESTCONTAINERS_RYUK_DISABLED=true S6GATE_IMAGE=$(IMAGE_TAG) S6GATE_MINIMAL_IMAGE=$(MINIMAL_TAG) \
	  $(GO) test -race -count=1 -timeout 45m ./... || rc=1; \
	CGO_ENABLED=1 TESTCONTAINERS_RYUK_DISABLED=true S6GATE_IMAGE=$(OVERLAY_IMAGE) $(GO) test -race -count=1 -timeout 30m -run '$(OVERLAY_TESTS)' ./ || rc=1; \
	exit $$rc

# Every fuzz target (func FuzzX in pkg/), each for FUZZTIME; an input that fails is kept in the
# package's testdata/fuzz/ by `go test`, so plain `go test` reproduces it. Go 1.26's engine can
# end a clean run with a bare "context deadline exceeded" (go.dev/issue/75804): such a run, with
# no failing input written, is retried once.
fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for f in $$(grep -l '^func Fuzz' $$(find pkg -name '*_test.go')); do \
	  pkg=./$$(dirname $$f); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    for try in 1 2; do \
	      if $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg >$$log 2>&1; then break; fi; \
	      if [ $$try = 1 ] && grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
	        echo "  engine time-out without a finding (go.dev/issue/75804): retrying"; continue; fi; \
	      cat $$log; exit 1; \
	    done; \
	  done; \
	done

# The integration and E2E suites again, while 2 busy loops per core keep the machine's CPUs
# saturated: tests must wait on real signals, never on timing luck.
test-stress: deps build ## the integration and E2E suites under CPU load (2 busy loops per core)
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image-minimal; fi
	@n=$$((2 * $$(nproc))); echo "test-stress: $$n busy loops"; pids=""; \
	for i in $$(seq $$n); do sh -c 'while :; do :; done' & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null' EXIT; \
	rc=0; set -x; \
	CGO_ENABLED=0 TESTCONTAINERS_RYUK_DISABLED=true $(GO) test -count=1 -timeout 40m $(PKGS) || rc=1; \
	cd $(E2E) && CGO_ENABLED=0 TESTCONTAINERS_RYUK_DISABLED=true S6GATE_IMAGE=$(IMAGE_TAG) S6GATE_MINIMAL_IMAGE=$(MINIMAL_TAG) \
	  $(GO) test -count=1 -timeout 40m ./... || rc=1; \
	exit $$rc

# Every benchmark once, to prove they still run (CI); the figures of one iteration mean little.
# The E2E benchmarks (BenchmarkScale grows a container to 1,000 gateways: minutes) are not
# among them; `go test -short -bench Scale` in e2e/ runs a 10-gateway version.
bench-smoke: build ## run every host benchmark once
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 $(PKGS)

# BenchmarkStatusProcess1000 and BenchmarkReconcileProcess1000 (cmd/s6gate) time the whole
# processes on the host; S6GATE_BENCH_BASELINE=/path/to/an/older/s6gate alternates it with this
# tree's binary in the same run (base-ms-wall, base-ms-cpu).
# BenchmarkScale (10, 100, 1,000 gateways in one container; S6GATE_SCALE_SIZES) takes about 5
# minutes of the E2E part and prints its table; docs/PERFORMANCE.md records one run.
bench: build ## benchmarks (speed and memory targets)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image peer-image && \
	  cd $(E2E) && TESTCONTAINERS_RYUK_DISABLED=true S6GATE_IMAGE=$(IMAGE_TAG) $(GO) test -run '^$$' -bench . -benchtime 1x -count=1 -timeout 60m ./...; fi

lint: ## gofmt, go vet, staticcheck (root and e2e modules)
	@out=$$(gofmt -l cmd pkg internal $(E2E) 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$(GO) vet ./...
	$(STATICCHECK) ./...
	cd $(E2E) && $(GO) vet ./...
	cd $(E2E) && $(STATICCHECK) ./...
	@# Another GOOS must stop at the one clear "Linux only" message, not deep inside a package.
	@out=$$(GOOS=darwin $(GO) build ./... 2>&1); \
	if ! echo "$$out" | grep -q 's6gate_is_Linux_only' || echo "$$out" | grep -v '^#' | grep -qv 's6gate_is_Linux_only'; then \
	  echo "GOOS=darwin go build: unexpected errors:"; echo "$$out"; exit 1; fi

clean: ## remove build output
	rm -rf $(BIN)
