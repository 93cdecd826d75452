//go:build tools

// Package kubeproxy pins what hack/addons.sh builds into the kube-proxy
// image: k8s.io/kubernetes v1.37.2's cmd/kube-proxy. A module of its own
// (with cluster/'s replaces of the staging modules), so that kube-proxy's
// dependencies never move the control plane's build inputs; the packages
// both use resolve to the same versions and so share the build cache. The
// build tag keeps this file out of every build.
package kubeproxy

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
