# Lobby. `make run` starts a standalone node with demo desktops;
# `make test` runs every test against real SQLite, PostgreSQL and Xvnc.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
DATA     ?= ./lobby-data
# The whole suite stays well under CI's limit on 2 cores.
TEST_TIMEOUT ?= 20m

.PHONY: all build assets run test test-short test-cluster vet fuzz bench deps deps-test clean

all: build

build: assets
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lobby ./cmd/lobby

deps:
	@scripts/install-deps.sh run

deps-test:
	@scripts/install-deps.sh test
	@scripts/assets.sh

## assets: htmx and noVNC from package-lock.json, embedded by the build.
assets:
	@scripts/assets.sh

## run: a standalone node on embedded SQLite with a demo pool of real desktops.
run: deps build
	./bin/lobby dev --data $(DATA)

vet:
	$(GO) vet ./...
	$(GO) vet -tags cluster ./internal/e2e/
	@test -z "$$(gofmt -l cmd internal)" || { echo "gofmt would change:"; gofmt -l cmd internal; exit 1; }

## test: vet, then every test with -race, with a throwaway PostgreSQL server,
## then the cluster test.
test: deps-test vet
	$(GO) run ./cmd/withpg -- $(GO) test -race -timeout $(TEST_TIMEOUT) ./...
	@$(MAKE) --no-print-directory test-cluster

## test-cluster: three nodes on one PostgreSQL behind HAProxy, two agents
## with real desktops, users signing in and connecting while a node is
## killed (internal/e2e/cluster_test.go, build tag cluster).
test-cluster: deps-test
	$(GO) run ./cmd/withpg -- $(GO) test -tags cluster -run '^TestCluster$$' -count=1 -timeout 10m ./internal/e2e/

## test-short: the same without -race, for a quick local loop.
test-short: deps-test
	$(GO) run ./cmd/withpg -- $(GO) test -timeout $(TEST_TIMEOUT) ./...

## fuzz: fuzz the API's JSON decoding for a while (FUZZTIME=30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./internal/httpjson -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./internal/rfb -run '^$$' -fuzz FuzzServeNone -fuzztime $(FUZZTIME)

## bench: the benchmark harnesses; see BENCHMARKS.md for what each measures.
bench: build deps-test
	$(GO) run ./cmd/withpg -- ./bin/lobby bench all

clean:
	rm -rf bin node_modules internal/web/static/npm
