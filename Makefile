# kk — build, test, demo and benchmark. Everything runs on this machine; test machines are
# systemd-nspawn containers in network namespaces created by e2e/testbed (root needed).
GO       ?= go
N        ?= 3
BED      ?= kkt
E2E_TIMEOUT ?= 75m
KK       := bin/kk
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# NVIDIA's go-nvml (kk node facts) is cgo: its C header marks calls kk never makes deprecated,
# which gcc would print on every cold build.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

# make demo builds only what its cluster needs: one Kubernetes version and the mirror components
# below (the tests' second Kubernetes version, docker, cri-dockerd, kube-vip, the registry are
# left out); its images and bundle go to DEMO_DIR, apart from the tests' /var/tmp/kk-images.
DEMO_K8S        ?= v1.37.2
DEMO_CNI        ?= flannel
DEMO_DIR        ?= /var/tmp/kk-demo
DEMO_COMPONENTS := k8s,etcd,crictl,cni,containerd,runc,coredns,$(DEMO_CNI)

.PHONY: all build test unit integration e2e mirror demo demo-down testbed-up testbed-down bench deps vet clean

all: build

# The Debian packages the demo, the tests and the mirror need (installed when missing: a no-op
# otherwise), then kk's own Go modules, fetched once and quietly.
deps:
	@./e2e/setup-host.sh
	@echo "deps: go mod download (kk's own Go modules; quick once fetched)"
	@$(GO) mod download || { echo "go mod download failed: is the Go module proxy reachable (GOPROXY=$$($(GO) env GOPROXY))?" >&2; exit 1; }

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(KK) ./cmd/kk

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags e2e ./e2e/...

# unit tests, then integration tests on real test machines (needs root, debootstrap, systemd-nspawn)
test: deps vet unit integration

unit:
	$(GO) test -race -count=1 ./...

# Only the packages with integration tests: the others' tests are make unit's, and building
# their test programs again (without -race) would only cost time.
INTEGRATION_PKGS = $(shell grep -rl --include='*_test.go' '^//go:build.*integration' . | xargs -n1 dirname | sort -u)

integration: build mirror
	@$(GO) build -o bin/testlog ./e2e/cmd/testlog
	KK_BIN=$(CURDIR)/$(KK) bin/testlog $(GO) test -json -tags integration -count=1 -p 2 -timeout 40m $(INTEGRATION_PKGS)

# Whole clusters on test machines, from a bundle exported from the local mirror: the HA layout
# (3 etcd + control planes, 2 workers behind haproxy) and an all-in-one machine. Two clusters
# at a time (KK_E2E_LANES=2, e2e/lanes_test.go), longest first: the HA lifecycle and the
# kube-vip platform start together, the smaller layouts follow in the lane that frees first
# (go test's own -parallel starts them in no set order, so it is set above their number);
# make bench runs every test alone (-parallel 1), so the times it records are each cluster's own.
# (A test's time in go test's report includes its wait for a lane; the test logs that wait.)
# E2E_TIMEOUT is go test's -timeout; .ci/run sets it to what is left of the job's time limit.
# e2e/cmd/testlog runs go test and stops reading its output shortly after it exits (a
# machine's runner a test left behind may hold it). The log is go test's; testlog ends it
# with each failed test's last lines before its first failure or its cluster dump, and a line
# of the results and times, where a log cut to its head and tail still shows them.
e2e: build mirror
	@$(GO) build -o bin/testlog ./e2e/cmd/testlog
	KK_E2E_LANES=2 KK_BIN=$(CURDIR)/$(KK) bin/testlog $(GO) test -json -tags e2e -count=1 -p 1 -parallel 8 -timeout $(E2E_TIMEOUT) -run 'TestCreateCluster' ./e2e

# The local upstream mirror (/var/tmp/kk-mirror: release binaries built from their Go modules at
# pinned versions, laid out as the download sites) and the test images (/var/tmp/kk-images: one
# OCI layout). Cached: a warm run takes seconds. One line per component; the go tool's output
# goes to /var/tmp/kk-mirror/.logs.
mirror: deps
	$(GO) run ./e2e/cmd/mirror build
	$(GO) run ./e2e/cmd/images build

testbed-up:
	$(GO) run ./e2e/cmd/testbed up -n $(N) --name $(BED)

testbed-down:
	$(GO) run ./e2e/cmd/testbed down --name $(BED)

# The main job on local machines: an HA cluster (3 control planes with etcd, 2 workers behind
# haproxy) on 5 test machines, from a bundle exported from the local mirror; then a re-run that
# changes nothing.
demo: deps build
	$(GO) run ./e2e/cmd/mirror build --k8s $(DEMO_K8S) --only $(DEMO_COMPONENTS)
	$(GO) run ./e2e/cmd/images build --k8s $(DEMO_K8S) --components $(DEMO_COMPONENTS) --out $(DEMO_DIR)/images
	K8S=$(DEMO_K8S) CNI=$(DEMO_CNI) DEMO_DIR=$(DEMO_DIR) KK_IMAGES_DIR=$(DEMO_DIR)/images ./e2e/demo.sh

demo-down:
	$(GO) run ./e2e/cmd/testbed down --name kkdemo

# kk vs ansible-playbook on N light hosts; writes e2e/bench/results.md
bench: build mirror
	$(GO) run ./e2e/bench -out e2e/bench/results.md -n 10,50,200,500 -ansible-max 200
	$(GO) run ./e2e/bench/push -out e2e/bench/push-results.md
	printf '# kk create cluster on local test machines\n\nWall times of whole runs of `make e2e`'"'"'s tests (bundles from kk create manifest and kk artifact export of the local mirror,\nKubernetes v1.37.2 (all-in-one v1.30.14), test machines on this VM: %s CPUs, load %s). Goals: HA create <= 5 minutes, re-run <= 15%% of it.\n' \
		"$$(nproc)" "$$(cut -d' ' -f1-3 /proc/loadavg)" > e2e/bench/cluster-results.md
	KK_E2E_RESULTS=$(CURDIR)/e2e/bench/cluster-results.md KK_BIN=$(CURDIR)/$(KK) $(GO) test -tags e2e -count=1 -p 1 -parallel 1 -timeout 75m -run 'TestCreateCluster' ./e2e

clean:
	rm -rf bin
