# kerberos_exporter: build, test and demo targets.
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build test unit-test demo demo-stop lint bench

# The static checker: golangci-lint at a pinned version, built from the Go
# module proxy into GOPATH/bin when that version is not there yet.
GOLANGCI_LINT_VERSION ?= v2.15.0

# Version stamping as Prometheus exporters do it (promu's ldflags): the
# release from VERSION, the commit, branch, builder and build date from the
# checkout, into prometheus/common/version. Overridable for packagers.
OUT        ?= kerberos_exporter
VERSION    ?= $(shell cat VERSION)
REVISION   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH     ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILD_USER ?= $(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)
VERSION_PKG = github.com/prometheus/common/version
LDFLAGS     = -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
              -X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildUser=$(BUILD_USER) \
              -X $(VERSION_PKG).BuildDate=$(BUILD_DATE)

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(OUT) ./cmd/kerberos_exporter

# Every test: installs Debian packages it needs (as root), starts the Samba
# AD test world, then runs unit, integration, alert, dashboard and browser tests.
test:
	bash testenv/install-deps.sh
	bash testenv/samba/world.sh up
	$(GO) vet ./...
	$(MAKE) lint
	$(GO) test -race -count=1 -timeout 60m ./...

# Fast loop without the test world or external programs.
unit-test:
	$(GO) test -short -count=1 ./...

# The whole thing on its embedded default: the test world (Samba AD DC + SQL
# Server stand-ins) and the exporter on :19088.
demo: build
	bash testenv/install-deps.sh
	bash testenv/demo.sh

demo-stop:
	bash testenv/demo.sh stop

lint:
	@bin="$$($(GO) env GOPATH)/bin/golangci-lint"; \
	"$$bin" version 2>/dev/null | grep -q ' $(GOLANGCI_LINT_VERSION:v%=%) ' || \
		$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	echo "$$bin run ./..."; "$$bin" run ./...

bench:
	bash bench/run.sh
