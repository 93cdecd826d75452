//go:build tools

// Package coredns pins what hack/addons.sh builds into the cluster DNS
// image: CoreDNS with its default plugin set. A module of its own, so that
// CoreDNS's dependencies never move the control plane's build inputs. The
// build tag keeps this file out of every build.
package coredns

import (
	_ "github.com/coredns/coredns"
)
