# s6gate — build, test and benchmark targets. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := bin
CMDS := gateway gw-reconcile gw-render gw-mark with-contenv printcontenv init
GOFLAGS_BUILD := -trimpath -ldflags='-s -w -buildid='
PKGS := ./pkg/... ./cmd/...

.PHONY: help build test test-unit bench lint clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## static binaries into bin/
	@mkdir -p $(BIN)
	@for c in $(CMDS); do \
	  if [ -d cmd/$$c ]; then CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/$$c ./cmd/$$c || exit 1; fi; \
	done

test: build ## every test: unit, real-s6 integration (and E2E when an engine answers)
	$(GO) test -count=1 -timeout 20m $(PKGS)

bench: build ## benchmarks (speed and memory targets)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l cmd pkg e2e 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(shell $(GO) env GOPATH)/bin/staticcheck ./...

clean: ## remove build output
	rm -rf $(BIN)
