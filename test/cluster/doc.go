// Package cluster holds berth's end-to-end tests against a real control
// plane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// v1.37.2 started by hack/cluster.sh, a private containerd, and berth
// joined to them as node berth-e2e. The tests drive the cluster with
// client-go (admin credentials) and check the runtime side through CRI.
//
// The tests run only when BERTH_E2E is set (see `make test-cluster`); plain
// `go test ./...` skips them. They need root, containerd, runc, the CNI
// plugins, the local images that hack/images.sh builds, and the control
// plane binaries (`make cluster-build`, run by the suite when they are
// missing; minutes when cold).
//
// Everything lives in _output/cluster-e2e/state, hack/cluster.sh's
// STATE_DIR for the suite, laid out as `hack/cluster.sh node-up` lays out
// its own (containerd/, berth.pid, berth.log, node/), so that
// `hack/cluster.sh down _output/cluster-e2e/state` stops all of it. The
// control plane listens on ports found free at the start, so that a
// developer's `make cluster` can run beside it. The state directory is
// removed when every test passed and kept for a look otherwise; the next
// run starts from scratch either way.
//
// One berth serves the whole package. Each test works in a namespace of its
// own and removes it when it ends; a test that stops berth or the apiserver
// starts them again, and the next test starts berth itself if it finds it
// gone. The tests run one after the other.
//
// BERTH_REPO_ROOT names the repository (default: two levels up), and
// BERTH_E2E_ARTIFACTS, when set, is a directory that receives the logs of
// berth and of every control plane component at the end.
package cluster
