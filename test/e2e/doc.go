// Package e2e holds berth's integration tests: each test runs the real berth
// binary against a private containerd and checks what berth did through CRI
// and through berth's read-only /pods endpoint.
//
// The tests run only when BERTH_E2E is set (see `make test-e2e`); plain
// `go test ./...` skips them. They need root, containerd, runc and the CNI
// plugins, and the local images that hack/images.sh builds.
// BERTH_REPO_ROOT names the repository (default: two levels up), and
// BERTH_E2E_ARTIFACTS, when set, is a directory that receives each test's
// berth log, failed or not.
//
// One containerd serves the whole package; each test starts its own berth
// with its own manifest and root directories, and removes every sandbox when
// it ends. The tests must therefore run one after the other: a berth removes
// the pods it does not own.
package e2e
