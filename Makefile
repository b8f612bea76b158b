# lvs-node. `make test` and `make lab` install what they need first
# (scripts/install-deps.sh, apt-get as root).
GO        ?= go
export PATH := $(PATH):/usr/local/go/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -s -w -X github.com/lvs-node/lvs-node/cmd/lvs-node/cli.version=$(VERSION) \
             -X github.com/lvs-node/lvs-node/cmd/lvs-node/cli.commit=$(COMMIT)
E2E_RUN   ?= .
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# eBPF objects are built with Debian's clang, pinned here (bookworm: 19.1.7).
CLANG     ?= clang-19
BPF_STRIP ?= llvm-strip-19
BPF_CFLAGS := -idirafter /usr/include/$(shell uname -m)-linux-gnu

NFPM      ?= github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
PKG_ARCHES ?= amd64 arm64

.PHONY: all build deps test unit e2e lab bench bench-toa lint fuzz clean generate check-generate packages

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/lvs-node ./cmd/lvs-node

deps:
	@bash scripts/install-deps.sh

## test: static checks, unit and host-kernel tests, then the lab end-to-end suite.
test: deps
	@bash scripts/leftovers.sh start
	$(MAKE) check-generate lint unit e2e
	@bash scripts/leftovers.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags e2e ./e2e/...

unit:
	$(GO) test -count=1 ./...

## e2e: the lab suite in one VM boot (E2E_RUN=TestSmoke to pick tests).
e2e:
	$(GO) test -tags e2e -count=1 -v -timeout 40m -run '$(E2E_RUN)' ./e2e

## lab: the demo — a client, a director and three real servers in the VM.
lab: deps
	LVS_DEMO=1 $(GO) test -tags e2e -count=1 -v -timeout 20m -run '^TestDemo$$' ./e2e

## bench: side-by-side benchmarks with ipvsadm -R and keepalived in the VM,
## the health checker at 10,000 TCP / 2,000 HTTP checks/s on the host,
## eBPF TOA on the host kernel (connections/s with and without it),
## load feedback (simulation, 10,000 agents) on the host, and full-NAT
## against plain NAT (connections/s) in the VM.
bench: deps bench-toa
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 10m ./healthz
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 10m ./director/feedback
	$(GO) test -tags e2e -count=1 -run '^$$' -bench . -benchtime 1x -timeout 80m ./e2e

bench-toa:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 20m ./toa/

## generate: rebuild the committed eBPF objects (toa/internal/*, director/fullnat/internal/*)
## with the pinned clang.
generate:
	BPF2GO_CC=$(CLANG) BPF2GO_STRIP=$(BPF_STRIP) BPF2GO_CFLAGS='$(BPF_CFLAGS)' $(GO) generate ./toa/... ./director/fullnat/...

## check-generate: fail when regenerating changes a committed eBPF object.
check-generate: generate
	@git diff --exit-code --stat -- toa director/fullnat || { echo "make generate changed committed eBPF objects: commit them"; exit 1; }

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./internal/config
	$(GO) test -run '^$$' -fuzz FuzzParser -fuzztime 30s ./toa/internal/parsertc

## packages: .deb and .rpm for each of PKG_ARCHES in dist/ (nfpm, pinned), then
## the package tests on them. make test builds and checks the amd64 ones itself.
packages: deps
	rm -rf dist
	for arch in $(PKG_ARCHES); do \
	  VERSION='$(VERSION)' COMMIT='$(COMMIT)' LDFLAGS='$(LDFLAGS)' NFPM='$(NFPM)' GO='$(GO)' \
	    bash packaging/build.sh $$arch dist || exit 1; \
	done
	LVS_PACKAGES_DIR=$(CURDIR)/dist $(GO) test -count=1 -run 'Contents|Arm64|Lintian|Verify|Install' ./packaging
	@ls -l dist

clean:
	rm -rf bin dist
