//go:build tools

// Package dratestdriver pins the DRA test driver that hack/cluster.sh
// builds, so that `go mod tidy` keeps go.sum complete for it.
package dratestdriver

import (
	_ "k8s.io/kubernetes/test/e2e/dra/test-driver"
)
