# Coterie's build. Everything it runs is pinned: the Go tools through the
# `tool` directives in go.mod, protoc through Debian's package.

GO        ?= go
BIN       := bin
TOOLBIN   := .bin
PROTO_SRC := $(wildcard protocol/*.proto)
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Packages whose tests start goroutines run under the race detector. The MPC
# engine is left out: its CPU-bound proofs run many times slower under it.
RACE_DIRS := clock enclave callback cluster workspace actors node cmd
RACE_PKGS ?= $(foreach d,$(RACE_DIRS),$(if $(wildcard $(d)),./$(d)/...))

.PHONY: all build test check proto protoc demo bench drill clean mutants

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/coterie ./cmd/coterie

RACE_RE := ^$(shell $(GO) list -m)/($(subst $(eval) ,|,$(RACE_DIRS)))(/|$$)

# Tests that skip themselves under the race detector, because their MPC key
# generation or presigning would take minutes there, and the packages that
# hold them. They run once more without it, alone.
NORACE_TESTS := TestEmptyPoolSignsOnTheSlowPath TestEmptyPoolRace TestPoolRefills TestPoolRefillsNeverDelaySessions \
	TestPairLive TestPairKeygenPresignSign TestRefresh TestRefreshEndToEnd
NORACE_PKGS  := ./actors/ ./node/ ./workspace/

# Every test must run in at least one pass. Each pass saves its go test
# events in TESTLOG; skipcheck then lists the tests skipped in every pass and
# fails on any that .ci/allowed-skips does not name (see internal/skipcheck).
TESTLOG   := $(TOOLBIN)/testlog
SKIPCHECK := $(TOOLBIN)/skipcheck

$(SKIPCHECK): $(wildcard internal/skipcheck/*.go)
	$(GO) build -o $@ ./internal/skipcheck

# Each package runs once: with the race detector when it is in RACE_DIRS.
# Then the tests that skip under it run without, and the SGX build's tests.
# The status console's browser test drives Debian's chromium.
test: $(SKIPCHECK) chromium
	@rm -rf $(TESTLOG) && mkdir -p $(TESTLOG)
	$(SKIPCHECK) run -json $(TESTLOG)/plain.json -- $(GO) test -json -timeout 15m $$($(GO) list ./... | grep -vE '$(RACE_RE)')
	$(SKIPCHECK) run -json $(TESTLOG)/race.json -- $(GO) test -json -race -timeout 15m $(RACE_PKGS)
	$(SKIPCHECK) run -json $(TESTLOG)/norace.json -- $(GO) test -json -timeout 15m \
		-run '^($(subst $(eval) ,|,$(strip $(NORACE_TESTS))))$$' $(NORACE_PKGS)
	CGO_ENABLED=1 $(SKIPCHECK) run -json $(TESTLOG)/sgx.json -- $(GO) test -json -tags ego,ego_mock_eclient ./enclave/sgx/
	$(SKIPCHECK) run -json $(TESTLOG)/nitro.json -- $(GO) test -json -race -tags nitro ./enclave/nitro/... ./enclave/backend/
	$(SKIPCHECK) run -json $(TESTLOG)/gcpcs.json -- $(GO) test -json -race -tags gcpcs ./enclave/gcpcs/... ./enclave/backend/
	$(SKIPCHECK) run -json $(TESTLOG)/deploy-nitro.json -- $(GO) test -json -tags nitro -run TestDeployConfig ./node/
	$(SKIPCHECK) run -json $(TESTLOG)/deploy-gcpcs.json -- $(GO) test -json -tags gcpcs -run TestDeployConfig ./node/
	$(SKIPCHECK) check -allow .ci/allowed-skips $(TESTLOG)/*.json

check: protoc
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>&1); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	CGO_ENABLED=1 $(GO) vet -tags ego,ego_mock_eclient ./enclave/...
	$(GO) vet -tags nitro ./...
	$(GO) tool staticcheck -tags nitro ./enclave/... ./node/... ./cmd/...
	$(GO) vet -tags gcpcs ./...
	$(GO) tool staticcheck -tags gcpcs ./enclave/... ./node/... ./cmd/...
	@$(MAKE) --no-print-directory proto-check

# protoc comes from Debian's protobuf-compiler; the Go plugins are the
# versions pinned in go.mod.
protoc:
	@command -v protoc >/dev/null || { \
		echo "installing protoc from Debian's protobuf-compiler"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq protobuf-compiler libprotobuf-dev >/dev/null; }

# chromium comes from Debian's package, for node's TestConsoleInBrowser
# (chromedp drives it headless); chromedp downloads no browser of its own.
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium for the console's browser test"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

$(TOOLBIN)/protoc-gen-go $(TOOLBIN)/protoc-gen-go-grpc: go.mod
	$(GO) build -o $(TOOLBIN)/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

PROTOC_GO = protoc -I protocol \
	--plugin=protoc-gen-go=$(TOOLBIN)/protoc-gen-go \
	--plugin=protoc-gen-go-grpc=$(TOOLBIN)/protoc-gen-go-grpc \
	--go_opt=paths=source_relative --go-grpc_opt=paths=source_relative

proto: protoc $(TOOLBIN)/protoc-gen-go $(TOOLBIN)/protoc-gen-go-grpc
	$(PROTOC_GO) --go_out=protocol --go-grpc_out=protocol $(PROTO_SRC)

# proto-check regenerates into a scratch directory and fails when the
# committed code differs from what `make proto` would write.
.PHONY: proto-check
proto-check: protoc $(TOOLBIN)/protoc-gen-go $(TOOLBIN)/protoc-gen-go-grpc
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	if [ -n "$(PROTO_SRC)" ]; then $(PROTOC_GO) --go_out=$$tmp --go-grpc_out=$$tmp $(PROTO_SRC); fi; \
	for f in $$(cd $$tmp && ls 2>/dev/null); do \
		cmp -s $$tmp/$$f protocol/$$f || { echo "protocol/$$f is stale: run make proto"; exit 1; }; done; \
	for f in $$(ls protocol/*.pb.go 2>/dev/null); do \
		[ -f $$tmp/$$(basename $$f) ] || { echo "$$f has no .proto source"; exit 1; }; done

# mutants breaks each safety check in turn (the list in .ci/mutants) and
# expects the tests to catch it. It edits source files while it runs and
# takes several minutes, so CI does not run it.
mutants:
	$(GO) run ./internal/mutants -list .ci/mutants

demo: build
	$(BIN)/coterie demo

# Short defaults of the load benchmark and the failover drill; the reports
# (a table, JSON and HTML) go to reports/. `coterie bench --help` and
# `coterie drill --help` teach the rest. BENCH_FLAGS and DRILL_FLAGS add
# flags, e.g. make drill DRILL_FLAGS="--rounds 50".
bench: build
	$(BIN)/coterie bench --rate 0.2 --duration 30s --out reports/bench $(BENCH_FLAGS)

drill: build
	$(BIN)/coterie drill --rounds 5 --out reports/drill $(DRILL_FLAGS)

clean:
	rm -rf $(BIN) $(TOOLBIN)
