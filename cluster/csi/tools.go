//go:build tools

// Package csi pins the CSI sidecars that hack/cluster.sh builds, so that
// `go mod tidy` keeps go.sum complete for them.
package csi

import (
	_ "github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner"
)
