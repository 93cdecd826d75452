//go:build tools

// Package kubeadm pins what hack/cluster.sh build builds besides the control
// plane: kubeadm. The build tag keeps this file out of every build.
package kubeadm

import (
	_ "k8s.io/kubernetes/cmd/kubeadm"
)
