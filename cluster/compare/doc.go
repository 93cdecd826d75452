// Package compare runs upstream's own functions and berth's on the same
// inputs, for the rules where the only upstream copy lives inside
// k8s.io/kubernetes, which berth's go.mod must not depend on: pod defaults
// and the static pod source, KubeletConfiguration defaults, the QoS class,
// the pull-secret keyring, the condition types the kubelet owns and the
// pod conditions it computes (Initialized, Ready, ContainersReady), whether
// an exited container restarts (restart policies and rules), and node
// admission (whose parts from k8s.io/component-helpers berth shares, but
// whose assembly, order and messages live in pkg/kubelet/lifecycle). A
// difference fails the test, so a drift from upstream fails CI (`make test`
// runs this module's tests) instead of passing unnoticed.
//
// Why a module of its own, next to cluster/ rather than inside it:
// cluster/go.mod builds the upstream control plane and kubelet that berth is
// tested and benchmarked against, with upstream's own dependency versions.
// Requiring berth there would let berth's newer golang.org/x, gRPC,
// protobuf and Prometheus versions win minimum version selection and change
// what those upstream binaries are built from. Here they may: nothing is
// built from this module but its tests.
//
// How it reaches berth's internal packages: the replace directive points
// github.com/berth-dev/berth at the repository root, and Go's internal rule
// is about import paths, not modules: this module's path,
// github.com/berth-dev/berth/cluster/compare, lies within
// github.com/berth-dev/berth/, so it may import
// github.com/berth-dev/berth/internal/... (as gopls, a module of its own,
// imports golang.org/x/tools/internal/...). No test hook is exported.
package compare
