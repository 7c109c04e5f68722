# cradle: build, run and test. See README.md.
GO        ?= go
TAGS      := containers_image_openpgp exclude_graphdriver_btrfs
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/cradle-runtime/cradle/internal/version.Version=$(VERSION)
# make install: everything goes below $(DESTDIR); see hack/install.sh.
DESTDIR   ?=
PREFIX    ?= /usr/local

.PHONY: build run test unit fuzz integration critest critest-vm node-e2e node-e2e-full bench deps test-deps vet clean install uninstall install-test

build:
	$(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o bin/cradle ./cmd/cradle
	@# The PID holder (cmd/cradle-pod-init); without a C compiler the daemon
	@# runs its own binary in its place (internal/podinit), at more memory.
	@if command -v $(CC) >/dev/null 2>&1; then \
		echo "$(CC) -O2 -s -o bin/cradle-pod-init cmd/cradle-pod-init/pod-init.c"; \
		$(CC) -O2 -s -Wall -Werror -o bin/cradle-pod-init cmd/cradle-pod-init/pod-init.c; \
	else \
		echo "no C compiler ($(CC)): bin/cradle-pod-init not built, pid holders run bin/cradle" >&2; \
		rm -f bin/cradle-pod-init; \
	fi
	$(GO) build -o bin/cradle-shim-vm ./cmd/cradle-shim-vm
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o bin/cradle-vm-agent ./cmd/cradle-vm-agent

deps:
	hack/install-deps.sh

# Installs what is missing, builds, writes a default CNI config if none
# exists, and runs the daemon in the foreground with the embedded defaults.
run: deps build
	hack/default-cni.sh
	exec bin/cradle serve

test-deps: deps
	hack/install-test-deps.sh

vet:
	@test -z "$$(gofmt -l cmd internal test)" || { gofmt -l cmd internal test; exit 1; }
	$(GO) vet -tags "$(TAGS)" ./...

unit:
	$(GO) test -tags "$(TAGS)" ./internal/...

# Each Go fuzz target for FUZZTIME (30s); see hack/fuzz.sh.
fuzz:
	hack/fuzz.sh

integration: build
	hack/integration.sh

# critest (cri-tools v1.37.0, built once into ~/.cache/cradle) against a
# daemon of its own; the skipped specs and why: test/critest/skip.txt.
critest: build
	hack/critest.sh

# The same with the vm handler (runc under Debian's containerd shim v2) as
# the default; test/critest/skip-vm.txt adds what that shim cannot serve.
critest-vm: build
	CRITEST_HANDLER=vm hack/critest.sh

# The binary, the systemd unit, and (where none exists) a default
# cradle.toml, crictl.yaml and CNI network; uninstall removes what install
# placed, except a config edited since.
install: build
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" hack/install.sh install

uninstall:
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" hack/install.sh uninstall

# install and uninstall into a temporary DESTDIR, checking the tree.
install-test:
	hack/test-install.sh

# Kubernetes' node conformance suite (test/e2e_node, [NodeConformance]) in
# services mode against a daemon of its own; binaries built once into
# ~/.cache/cradle (hack/install-node-e2e.sh). node-e2e: the parallel subset
# (no [Slow], [Serial], [Flaky], [Disruptive]); node-e2e-full: every
# [NodeConformance] spec. Skips and why: test/node-e2e/skip.txt; results:
# docs/node-e2e.md.
node-e2e: build
	hack/node-e2e.sh

node-e2e-full: build
	NODE_E2E_SET=full hack/node-e2e.sh

# test ends with the node conformance subset: on a fresh machine it first
# builds the kubelet, e2e_node.test and the suite's images (docs/node-e2e.md).
test: test-deps vet unit fuzz install-test integration critest critest-vm node-e2e

# Benchmark against containerd (Debian's package) in the same run: latency
# percentiles and memory per pod, both daemons with their own state; not
# part of `make test`. BENCH_ITERATIONS, BENCH_PODS: see hack/bench.sh and
# docs/benchmarks.md.
bench:
	hack/bench.sh

clean:
	rm -rf bin
