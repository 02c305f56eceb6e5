# ctfed: build, test and demo. Run `make help` for the targets.
GO        ?= go
BIN       ?= bin/ctfed
FUZZTIME  ?= 5s
LONGFUZZ  ?= 2m
ARGS      ?=
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help build test test-unit fuzz-smoke fuzz bench dp-audit lint demo clean

help: ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/ctfed
	$(GO) build -o $(BIN) ./cmd/ctfed

test: build test-unit fuzz-smoke ## vet, every test, and 5 s of live fuzzing per fuzz target

test-unit:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

fuzz-smoke:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

fuzz: ## fuzz every target for LONGFUZZ (default 2m) each
	FUZZTIME=$(LONGFUZZ) scripts/fuzz.sh

bench: ## the benchmarks of every target in the issues (figures in docs/benchmarks.md)
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=1x -timeout 60m ./storage/... ./node/... ./privacy/... ./federation/...
	cd bench && $(GO) run ./cmd/compare && $(GO) run ./cmd/rss

dp-audit: ## full-size statistical audits of the privacy mechanisms
	CTFED_DP_AUDIT=1 $(GO) test -count=1 -timeout 60m -run 'Noise|Neighbour|Release|Phantom|Coverage|DP' -v ./privacy/... ./node/... ./storage/...

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

demo: build ## run ctfed end to end on synthetic data (ARGS=--keep to keep it running)
	$(BIN) demo $(ARGS)

clean:
	rm -rf bin
