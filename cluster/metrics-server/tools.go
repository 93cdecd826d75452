//go:build tools

// Package metricsserver pins what hack/addons.sh builds into the
// metrics-server image: sigs.k8s.io/metrics-server v0.8.0. A module of its
// own, so that its dependencies never move the control plane's build
// inputs. The build tag keeps this file out of every build.
package metricsserver

import (
	_ "sigs.k8s.io/metrics-server/cmd/metrics-server"
)
