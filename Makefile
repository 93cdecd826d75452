# berth: a kubelet. Run `make help` for the targets.
#
# Everything runs as root on Debian 12. Generated files go to bin/ and
# _output/ (images, containerd state, registry storage, run state).

SHELL := /bin/bash
GO ?= go

CONTAINERD_STATE ?= $(CURDIR)/_output/containerd
CONTAINERD_SOCK := $(CONTAINERD_STATE)/containerd.sock

# The development control plane (hack/cluster.sh); berth joins it as CLUSTER_NODE.
CLUSTER_STATE ?= $(CURDIR)/_output/cluster/state
CLUSTER_NODE ?= berth-node

# e2e tests find hack/ and _output/images through this; they start their own
# containerd instances with hack/containerd.sh, STATE_DIRs under _output/e2e/.
export BERTH_REPO_ROOT := $(CURDIR)

.PHONY: help all build deps images unit compare fuzz fuzz-short chaos e2e test-e2e test-cluster test run containerd-up containerd-down \
	registry-up registry-down teardown clean bench \
	cluster-build cluster-up cluster-down cluster cluster-status \
	conformance conformance-slow conformance-down test-conformance

help:
	@echo "build            go build -o bin/berth ./cmd/berth"
	@echo "unit             unit tests (go test ./...)"
	@echo "compare          berth's rules against upstream's own code on the same inputs (cluster/compare)"
	@echo "fuzz             every native fuzz target for FUZZTIME each (default 1m; CI runs fuzz-short: 2s each)"
	@echo "chaos            the chaos scenarios against a real control plane and containerd (docs/reliability.md);"
	@echo "                 SCENARIO=<name> runs one, e.g. SCENARIO=BerthKill"
	@echo "test             deps + images + unit and compare tests + e2e tests (BERTH_E2E=1)"
	@echo "test-e2e (e2e)   deps + images + e2e tests only"
	@echo "test-cluster     deps + images + cluster e2e tests (control plane + berth node, BERTH_E2E=1),"
	@echo "                 and the kubeadm join tests (test/kubeadm)"
	@echo "run              start a containerd in _output/containerd and run berth against it"
	@echo "images           build the local test images into _output/images (cached)"
	@echo "deps             install Debian packages the tests need (no-op when present)"
	@echo "containerd-up    start the development containerd ($(CONTAINERD_STATE))"
	@echo "containerd-down  stop it, with its containers, shims and mounts"
	@echo "registry-up/-down  a local registry on 127.0.0.1:5000"
	@echo "teardown         stop every containerd under _output and the registry"
	@echo "cluster-build    build kube-apiserver & co. v1.37.2 into _output/cluster/bin (cached)"
	@echo "cluster-up       start etcd + the upstream control plane ($(CLUSTER_STATE))"
	@echo "cluster          cluster-up, then containerd + berth as node $(CLUSTER_NODE) by kubeadm join; wait until Ready"
	@echo "                 NODES=N: N berth nodes in network namespaces, pod CIDRs, routes, kube-proxy,"
	@echo "                 CoreDNS and metrics-server (hack/multinode.sh)"
	@echo "cluster-down     stop berth, its containerd and the control plane (every node, namespace, route)"
	@echo "cluster-status   show what runs"
	@echo "clean            teardown, then remove bin/ and _output/"
	@echo "bench            berth vs the upstream kubelet, side by side, + Go micro-benchmarks (docs/benchmarks.md);"
	@echo "                 BASELINE=<rev> also runs berth built from <rev> in the same rounds"
	@echo "conformance      upstream's [NodeConformance] specs (e2e.test v1.37.2) against berth; KUBELET=upstream"
	@echo "                 for the reference run; summary in _output/conformance/results (docs/conformance.md)"
	@echo "conformance-slow the [Slow] node conformance specs, likewise"
	@echo "test-conformance the quick subset of the conformance specs that CI runs (test/conformance/quick.txt)"
	@echo "conformance-down stop what an interrupted conformance run left running"

all: build

build:
	$(GO) build -o bin/berth ./cmd/berth

deps:
	@hack/install-deps.sh

images: deps
	@hack/images.sh build

unit:
	$(GO) test ./...

# A module of its own (it depends on k8s.io/kubernetes, berth does not), so
# `go test ./...` at the root does not reach it.
compare:
	cd cluster/compare && $(GO) test ./...

# Go's native fuzzing, one target at a time (hack/fuzz.sh lists them); the
# seed corpora in testdata/fuzz also run as plain unit tests.
FUZZTIME ?= 1m
fuzz:
	@FUZZTIME=$(FUZZTIME) hack/fuzz.sh

# CI's short run: 2 s for each main target (about 40 s with a warm build
# cache on an idle machine).
fuzz-short:
	@FUZZ_SHORT=1 FUZZTIME=2s hack/fuzz.sh

# The e2e package skips itself unless BERTH_E2E=1; until it exists there is
# nothing to run.
e2e: test-e2e
test-e2e: deps images
	@if [[ -d test/e2e ]]; then \
		echo "BERTH_E2E=1 $(GO) test -count=1 -v ./test/e2e/..."; \
		BERTH_E2E=1 $(GO) test -count=1 -v ./test/e2e/...; \
	else \
		echo "e2e: no test/e2e yet, skipping"; \
	fi

# The cluster suite (test/cluster) starts its own control plane in
# _output/cluster-e2e/state on ports of its own, builds the control plane
# binaries first if they are missing (minutes when cold: hence the timeout,
# which go test counts from the binary's start) and stops everything at the
# end; `hack/cluster.sh down _output/cluster-e2e/state` is the safety net.
# The kubeadm suite (test/kubeadm) builds a node with kubeadm join inside
# namespaces of its own (its own control plane and containerd there); -p 1
# runs the suites one after the other, not side by side on two cores.
# The multi-node smoke test (test/multinode) runs two berth nodes in network
# namespaces with kube-proxy, CoreDNS and metrics-server (hack/multinode.sh).
test-cluster: deps images
	BERTH_E2E=1 $(GO) test -count=1 -v -p 1 -timeout 30m ./test/cluster/... ./test/kubeadm/... ./test/multinode/...

test: deps images
	$(GO) test ./...
	@$(MAKE) --no-print-directory fuzz-short
	@$(MAKE) --no-print-directory compare
	@$(MAKE) --no-print-directory test-e2e
	@$(MAKE) --no-print-directory test-cluster
	@$(MAKE) --no-print-directory test-conformance

run: deps containerd-up build
	@echo
	@echo "containerd: $(CONTAINERD_SOCK) (log $(CONTAINERD_STATE)/containerd.log)"
	@echo "  ctr --address $(CONTAINERD_SOCK) -n k8s.io containers ls"
	@echo "  ctr --address $(CONTAINERD_SOCK) -n k8s.io tasks ls"
	@echo "  ctr --address $(CONTAINERD_SOCK) -n k8s.io images ls -q"
	@echo "berth: curl -s 127.0.0.1:10255/pods; static pods from examples/"
	@echo "stop:  Ctrl-C, then make containerd-down"
	@echo
	bin/berth --pod-manifest-path examples \
		--container-runtime-endpoint unix://$(CONTAINERD_SOCK) \
		--root-dir _output/run/root \
		--hostname-override $$(hostname)

containerd-up: deps
	@hack/containerd.sh up $(CONTAINERD_STATE)

containerd-down:
	@hack/containerd.sh down $(CONTAINERD_STATE)

registry-up: deps
	@hack/registry.sh up

registry-down:
	@hack/registry.sh down

# Stops whatever tests or `run` left behind; safe when nothing runs.
teardown:
	@hack/containerd.sh down-all $(CURDIR)/_output
	@hack/registry.sh down

# Removing _output while a containerd still has mounts in it would be unsafe:
# teardown fails in that case and stops make before the rm.
clean: teardown
	rm -rf bin _output

# berth against the upstream kubelet on this machine, with the CRI floor
# (docs/benchmarks.md); under 20 minutes on 2 cores. Its own control plane,
# containerd and ports in _output/bench; BENCH_ARGS go to berthbench.
# BASELINE=<git rev> adds berth as built from that revision as a third agent.
bench: deps images cluster-build
	@BASELINE=$(BASELINE) hack/bench.sh $(BENCH_ARGS)

# Upstream's node conformance specs against a one-node cluster of its own
# in _output/conformance (hack/conformance.sh, docs/conformance.md). The
# first run builds e2e.test: many minutes when the Go build cache is cold.
KUBELET ?= berth
conformance: deps images
	@KUBELET=$(KUBELET) hack/conformance.sh run full

conformance-slow: deps images
	@KUBELET=$(KUBELET) hack/conformance.sh run slow

# The quick subset in CI: specs that pass against berth, so that none of
# them regresses unnoticed.
test-conformance: deps images
	@KUBELET=$(KUBELET) hack/conformance.sh run quick

conformance-down:
	@hack/conformance.sh down

cluster-build:
	@hack/cluster.sh build

# The chaos scenarios (test/cluster/chaos_test.go, docs/reliability.md):
# never in CI. Their own control plane, containerd and berth in
# _output/chaos; CHAOS_PODS, CHAOS_FAULTS and CHAOS_OUTAGE (seconds) tune
# them; the figures are appended to _output/chaos/chaos-results.txt.
SCENARIO ?=
chaos: deps images
	BERTH_E2E=1 BERTH_CHAOS=1 BERTH_CLUSTER_E2E_DIR=$(CURDIR)/_output/chaos \
		$(GO) test -count=1 -v -timeout 180m -run 'TestChaos$(if $(SCENARIO),$(SCENARIO)$$)' ./test/cluster/

cluster-up: deps cluster-build
	@BERTH_NODE_NAME=$(CLUSTER_NODE) hack/cluster.sh up $(CLUSTER_STATE)

# berth runs with its own containerd in $(CLUSTER_STATE)/containerd, so it
# does not share one with `make run`; the node is made by `kubeadm join`
# (TLS bootstrap), in a mount namespace of its own (hack/cluster.sh node-up). The hints are printed even when the
# node does not become Ready: the control plane is usable all the same.
# NODES=N (N > 1): N berth nodes, each in a network namespace of its own
# with its own containerd, pod CIDR and routes, the control plane on a
# bridge, and kube-proxy, CoreDNS and metrics-server (hack/multinode.sh).
NODES ?= 1
ifeq ($(NODES),1)
cluster: deps cluster-up build
	@rc=0; BERTH_NODE_NAME=$(CLUSTER_NODE) BERTH_NODE_JOIN=kubeadm hack/cluster.sh node-up $(CLUSTER_STATE) || rc=$$?; \
	echo; \
	echo "export KUBECONFIG=$(CLUSTER_STATE)/admin.kubeconfig"; \
	echo "kubectl: _output/cluster/bin/kubectl; berth log: $(CLUSTER_STATE)/berth.log"; \
	echo "stop:    make cluster-down"; \
	exit $$rc
else
cluster: deps cluster-build images build
	@rc=0; hack/multinode.sh up $(NODES) $(CLUSTER_STATE) || rc=$$?; \
	echo; \
	echo "export KUBECONFIG=$(CLUSTER_STATE)/admin.kubeconfig"; \
	echo "kubectl: _output/cluster/bin/kubectl; berth logs: $(CLUSTER_STATE)/nodes/*/berth.log"; \
	echo "stop:    make cluster-down"; \
	exit $$rc
endif

# Either kind of cluster: hack/multinode.sh down hands a single node's
# state to hack/cluster.sh down.
cluster-down:
	@hack/multinode.sh down $(CLUSTER_STATE)

cluster-status:
	@hack/cluster.sh status $(CLUSTER_STATE)
