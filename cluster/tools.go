//go:build tools

// Package cluster pins the upstream commands that hack/cluster.sh builds, so
// that `go mod tidy` keeps go.sum complete for them. The build tag keeps this
// file out of every build.
package cluster

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
