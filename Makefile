# s6gate — build, test and benchmark targets. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := bin
CMDS := gateway gw-reconcile gw-render gw-mark with-contenv printcontenv init
GOFLAGS_BUILD := -trimpath -ldflags='-s -w -buildid='
PKGS := ./pkg/... ./internal/... ./cmd/...
# The E2E suite is its own module (e2e/go.mod), so testcontainers-go and the moby client stay
# out of the root module; its go commands run from its directory.
E2E := e2e
STATICCHECK = $(shell $(GO) env GOPATH)/bin/staticcheck

FUZZTIME ?= 10s

.PHONY: help deps build base image up down test test-stress fuzz bench bench-smoke lint clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## static binaries into bin/
	@mkdir -p $(BIN)
	@for c in $(CMDS); do \
	  if [ -d cmd/$$c ]; then CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/$$c ./cmd/$$c || exit 1; fi; \
	done

# What the goals need from Debian's packages (docker/deps.sh): as root it installs what is
# missing and says so; otherwise it stops with one line naming the command to run.
DEPS = $(if $(filter test test-stress,$(MAKECMDGOALS)),test,$(if $(filter up,$(MAKECMDGOALS)),up,base))
deps: ## check (as root: install from Debian's packages) what the goals need
	@GO=$(GO) docker/deps.sh $(DEPS)

base: deps ## local Debian base image with s6 (debootstrap + docker import; reused when present)
	docker/mkbase.sh

image: build base ## the s6gate:latest image
	@b=$${BASE_IMAGE:-s6gate-base:bookworm}; t0=$$SECONDS; echo "image: docker build -t s6gate:latest on $$b"; \
	docker build -q -t s6gate:latest --build-arg BASE_IMAGE=$$b . >/dev/null && \
	docker image ls s6gate:latest --format "image: built {{.Repository}}:{{.Tag}} ({{.Size}}) in $$((SECONDS - t0)) s"

up: deps image ## build everything and start the compose demo, then show gateway status
	docker/up.sh

down: ## stop the compose demo (the volume stays)
	cd docker && docker-compose -p s6gate -f compose.yaml down

# The E2E suite needs the image; it is built when an engine answers. Without an engine the
# E2E tests skip locally and fail under CI=true.
test: deps build ## every test: unit, real-s6 integration, and E2E against the image
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; \
	 else echo "make test: no Docker engine answers; E2E tests will skip (fail under CI=true)"; fi
	@rc=0; set -x; \
	CGO_ENABLED=1 TESTCONTAINERS_RYUK_DISABLED=true $(GO) test -race -count=1 -timeout 30m $(PKGS) || rc=1; \
	cd $(E2E) && CGO_ENABLED=1 TESTCONTAINERS_RYUK_DISABLED=true $(GO) test -race -count=1 -timeout 30m ./... || rc=1; \
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
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; fi
	@n=$$((2 * $$(nproc))); echo "test-stress: $$n busy loops"; pids=""; \
	for i in $$(seq $$n); do sh -c 'while :; do :; done' & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null' EXIT; \
	rc=0; set -x; \
	CGO_ENABLED=0 TESTCONTAINERS_RYUK_DISABLED=true $(GO) test -count=1 -timeout 40m $(PKGS) || rc=1; \
	cd $(E2E) && CGO_ENABLED=0 TESTCONTAINERS_RYUK_DISABLED=true $(GO) test -count=1 -timeout 40m ./... || rc=1; \
	exit $$rc

# Every benchmark once, to prove they still run (CI); the figures of one iteration mean little.
# The E2E benchmarks (BenchmarkScale grows a container to 1,000 gateways: minutes) are not
# among them; `go test -short -bench Scale` in e2e/ runs a 10-gateway version.
bench-smoke: build ## run every host benchmark once
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 $(PKGS)

# BenchmarkScale (10, 100, 1,000 gateways in one container; S6GATE_SCALE_SIZES) takes about 5
# minutes of the E2E part and prints its table; docs/PERFORMANCE.md records one run.
bench: build ## benchmarks (speed and memory targets)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image && \
	  cd $(E2E) && TESTCONTAINERS_RYUK_DISABLED=true $(GO) test -run '^$$' -bench . -benchtime 1x -count=1 -timeout 40m ./...; fi

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
